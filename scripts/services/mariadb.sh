#!/usr/bin/env bash
# A private MariaDB server for tests: 127.0.0.1 only, its own data directory, no systemd.
#
#   scripts/services/mariadb.sh start    # installs mariadb-server if missing, starts it; prints the port
#   scripts/services/mariadb.sh status   # prints the port and exits 0 if it is up, exits 3 if not
#   scripts/services/mariadb.sh stop     # clean shutdown (SIGTERM to the server's pid); no-op if down
#   scripts/services/mariadb.sh env      # prints shell assignments for clients (port, socket, user, ...)
#
# Idempotent: `start` on a running server only prints its port. Stdout carries only the port (or the
# `env` lines), so `port=$(scripts/services/mariadb.sh start)` works; progress goes to stderr.
#
# Settings (environment):
#   ZENML_MARIADB_PORT  TCP port on 127.0.0.1            (default 13306)
#   ZENML_MARIADB_DIR   data dir, socket, pid file, logs (default ${TMPDIR:-/tmp}/zenml-svc/mariadb-$PORT)
#   ZENML_MARIADB_EXTRA_OPTS  more mariadbd options, space-separated (e.g. a bigger buffer pool for a benchmark)
#
# The server gets a user for tests, `zenml` with password `zenml-test-pw` (mysql_native_password,
# as ML Metadata's client expects), allowed everything from 127.0.0.1 and the socket. Root is only
# reachable through the unix socket as the OS root user. This is a throwaway test server: do not
# point it at data you care about.
set -euo pipefail

PORT="${ZENML_MARIADB_PORT:-13306}"
DIR="${ZENML_MARIADB_DIR:-${TMPDIR:-/tmp}/zenml-svc/mariadb-$PORT}"
DATA="$DIR/data"
SOCKET="$DIR/mysqld.sock"
PIDFILE="$DIR/mysqld.pid"
TEST_USER=zenml
TEST_PASSWORD=zenml-test-pw
# Small InnoDB log files (a quick first start); a buffer pool big enough for the metadata benchmark.
SERVER_OPTS=(--innodb-log-file-size=32M --innodb-buffer-pool-size=256M --skip-name-resolve
             --character-set-server=utf8mb4 --collation-server=utf8mb4_bin --max-connections=300)
# shellcheck disable=SC2206  # word splitting of the extra options is intended
SERVER_OPTS+=(${ZENML_MARIADB_EXTRA_OPTS:-})

log() { echo "mariadb.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs a command as root (directly, or through sudo when we are not root).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_if_missing() {
    command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1 \
        && command -v mariadb-admin >/dev/null 2>&1 && command -v mariadb >/dev/null 2>&1 && return
    log "installing mariadb-server and mariadb-client (apt-get, ~30-50 s the first time)"
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        die "mariadb-server is not installed and we are neither root nor have sudo; install it: apt-get install mariadb-server mariadb-client"
    fi
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >&2; then
        as_root apt-get update -qq >&2 || die "apt-get update failed (no network?); install mariadb-server and mariadb-client by hand"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >&2 \
            || die "apt-get install mariadb-server mariadb-client failed; see the output above"
    fi
}

# The server's pid, if our pid file names a live (not zombie) mariadbd.
server_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid state
    pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
    [ -n "$pid" ] || return 1
    state="$(ps -o stat= -p "$pid" 2>/dev/null)" || return 1
    case "$state" in Z*|"") return 1 ;; esac
    echo "$pid"
}

ping_server() { mariadb-admin --no-defaults --socket="$SOCKET" -uroot ping >/dev/null 2>&1; }

is_up() { server_pid >/dev/null && ping_server; }

root_sql() { mariadb --no-defaults --socket="$SOCKET" -uroot "$@"; }

start() {
    if is_up; then echo "$PORT"; return; fi
    install_if_missing
    mkdir -p "$DIR"
    local user_opt=()
    [ "$(id -u)" -eq 0 ] && user_opt=(--user=root)   # mariadbd refuses to run as root otherwise
    if [ ! -d "$DATA/mysql" ]; then
        log "initialising $DATA"
        rm -rf "$DATA"
        local auth=normal
        [ "$(id -u)" -eq 0 ] && auth=socket
        mariadb-install-db --no-defaults "${user_opt[@]}" --datadir="$DATA" \
            --auth-root-authentication-method="$auth" --skip-test-db "${SERVER_OPTS[@]}" >"$DIR/install.log" 2>&1 \
            || { cat "$DIR/install.log" >&2; die "mariadb-install-db failed (log: $DIR/install.log)"; }
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        die "port $PORT on 127.0.0.1 is taken by another process; choose another with ZENML_MARIADB_PORT"
    fi
    log "starting mariadbd on 127.0.0.1:$PORT (data in $DATA)"
    # cd first, and exec the server from the background subshell, so that $! is mariadbd
    # (services.md, section 6). Descriptors above 2 are closed first: a caller's pipe that the
    # server inherited would never see end-of-file (a test reading this script's output would hang).
    cd "$DIR"
    (
        for fd in /proc/self/fd/*; do
            fd="${fd##*/}"
            if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec nohup mariadbd --no-defaults "${user_opt[@]}" --datadir="$DATA" --socket="$SOCKET" --pid-file="$PIDFILE" \
            --port="$PORT" --bind-address=127.0.0.1 --log-error="$DIR/error.log" "${SERVER_OPTS[@]}" \
            >"$DIR/stdout.log" 2>&1 </dev/null
    ) &
    local pid=$! waited=0
    until ping_server; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -20 "$DIR/error.log" >&2 || true
            die "mariadbd exited during start-up (log: $DIR/error.log)"
        fi
        sleep 0.1
        waited=$((waited + 1))
        [ "$waited" -lt 600 ] || die "mariadbd did not answer within 60 s (log: $DIR/error.log)"
    done
    root_sql <<SQL || die "could not create the test user"
CREATE USER IF NOT EXISTS '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASSWORD';
CREATE USER IF NOT EXISTS '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'localhost';
SQL
    echo "$PORT"
}

stop() {
    local pid
    if ! pid="$(server_pid)"; then log "not running"; return; fi
    log "stopping mariadbd (pid $pid)"
    kill "$pid"
    local waited=0
    while server_pid >/dev/null; do
        sleep 0.1
        waited=$((waited + 1))
        if [ "$waited" -ge 600 ]; then log "mariadbd did not stop within 60 s; killing it"; kill -9 "$pid" 2>/dev/null || true; break; fi
    done
}

status() {
    if is_up; then echo "$PORT"; else log "not running (port $PORT, dir $DIR)"; exit 3; fi
}

env_lines() {
    echo "ZENML_MARIADB_HOST=127.0.0.1"
    echo "ZENML_MARIADB_PORT=$PORT"
    echo "ZENML_MARIADB_SOCKET=$SOCKET"
    echo "ZENML_MARIADB_USER=$TEST_USER"
    echo "ZENML_MARIADB_PASSWORD=$TEST_PASSWORD"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) env_lines ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
