#!/usr/bin/env bash
# The metadata store benchmark: SQLite and MariaDB side by side.
#
#   bench/metadata/run.sh [--scale S] [--samples N] [--backends "sqlite mysql"] [--keep]
#
# For each backend: creates an empty store through zenml-run's API (so the schema, the types and
# the indexes are the store's own), fills it with generate.py's bulk SQL (scale 1 = 1,000,000
# executions, 3,000,000 artifacts), then times the store API with metadata-bench. MariaDB runs as
# a private server (scripts/services/mariadb.sh on port 13326, data under $ZENML_BENCH_DIR, a 4 GiB
# buffer pool), stopped at the end unless --keep. Not a test: it asserts nothing about speed.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"

SCALE=1
SAMPLES=1000
BACKENDS="sqlite mysql"
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE="$2"; shift 2 ;;
        --samples) SAMPLES="$2"; shift 2 ;;
        --backends) BACKENDS="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        *) echo "usage: $0 [--scale S] [--samples N] [--backends \"sqlite mysql\"] [--keep]" >&2; exit 2 ;;
    esac
done
WORK="${ZENML_BENCH_DIR:-${TMPDIR:-/tmp}/zenml-metadata-bench}"
mkdir -p "$WORK"
EXECUTIONS=$(python3 -c "import sys; e = max(10, int(1_000_000 * float(sys.argv[1])) // 10 * 10); print(e)" "$SCALE")
TAG="$(echo "$SCALE" | tr . _)"

echo "== building metadata-bench (release)" >&2
swift build -c release --scratch-path .build >&2
BENCH="$PWD/.build/release/metadata-bench"

seconds() { python3 -c 'import time; print(time.time())'; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

if [[ " $BACKENDS " == *" sqlite "* ]]; then
    DB="$WORK/sqlite-$TAG.db"
    rm -f "$DB" "$DB-wal" "$DB-shm"
    echo "== SQLite: generating $EXECUTIONS executions into $DB" >&2
    "$BENCH" init "sqlite:$DB" >/dev/null
    start=$(seconds)
    python3 generate.py --dialect sqlite --scale "$SCALE" | sqlite3 -bail "$DB"
    echo "SQLite: generated in $(elapsed "$start" "$(seconds)") s, $(du -h "$DB" | cut -f1)"
    sqlite3 "$DB" "SELECT string_value FROM ExecutionProperty WHERE name = 'cache_key' ORDER BY random() LIMIT 1000" >"$WORK/keys-sqlite"
    echo "SQLite ($EXECUTIONS executions):"
    "$BENCH" measure "sqlite:$DB" "$WORK/keys-sqlite" --executions "$EXECUTIONS" --samples "$SAMPLES"
fi

if [[ " $BACKENDS " == *" mysql "* ]]; then
    export ZENML_MARIADB_PORT=13326 ZENML_MARIADB_DIR="$WORK/mariadb"
    export ZENML_MARIADB_EXTRA_OPTS="--innodb-buffer-pool-size=4G --innodb-log-file-size=1G --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0"
    "$ROOT/scripts/services/mariadb.sh" start >/dev/null
    [ "$KEEP" -eq 1 ] || trap '"$ROOT/scripts/services/mariadb.sh" stop' EXIT
    eval "$("$ROOT/scripts/services/mariadb.sh" env)"
    export ZENML_MARIADB_HOST ZENML_MARIADB_PORT ZENML_MARIADB_USER ZENML_MARIADB_PASSWORD
    export MYSQL_PWD="$ZENML_MARIADB_PASSWORD"
    client=(mariadb --no-defaults -h "$ZENML_MARIADB_HOST" -P "$ZENML_MARIADB_PORT" -u "$ZENML_MARIADB_USER")
    DB="bench_$TAG"
    "${client[@]}" -e "DROP DATABASE IF EXISTS \`$DB\`"
    echo "== MariaDB: generating $EXECUTIONS executions into database $DB" >&2
    "$BENCH" init "mysql:$DB" >/dev/null
    start=$(seconds)
    python3 generate.py --dialect mysql --scale "$SCALE" | "${client[@]}" "$DB"
    size=$("${client[@]}" -N -e "SELECT CONCAT(ROUND(SUM(data_length + index_length) / 1048576), 'M') FROM information_schema.tables WHERE table_schema = '$DB'")
    echo "MariaDB: generated in $(elapsed "$start" "$(seconds)") s, $size"
    "${client[@]}" -N "$DB" -e "SELECT string_value FROM ExecutionProperty WHERE name = 'cache_key' ORDER BY RAND() LIMIT 1000" >"$WORK/keys-mysql"
    # Let InnoDB write back the pages the load dirtied (up to 2 minutes) before timing anything.
    for _ in $(seq 1 120); do
        dirty=$("${client[@]}" -N -e "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'" | cut -f2)
        [ "${dirty:-0}" -lt 1000 ] && break
        sleep 1
    done
    echo "MariaDB ($EXECUTIONS executions):"
    "$BENCH" measure "mysql:$DB" "$WORK/keys-mysql" --executions "$EXECUTIONS" --samples "$SAMPLES"
fi
