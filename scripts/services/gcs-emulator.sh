#!/usr/bin/env bash
# A private Google Cloud Storage emulator (gcp-storage-emulator, JSON API) for tests: 127.0.0.1 only,
# its own data directory.
#
#   scripts/services/gcs-emulator.sh start    # installs it into the services venv if missing; prints the port
#   scripts/services/gcs-emulator.sh status   # prints the port, exit 0 if up, 3 if not
#   scripts/services/gcs-emulator.sh fresh    # stops it, empties its data and starts it again; prints the port
#   scripts/services/gcs-emulator.sh stop
#   scripts/services/gcs-emulator.sh env      # STORAGE_EMULATOR_HOST=... for clients
#
# Settings: ZENML_GCS_PORT (default 19023), ZENML_GCS_DIR (default ${TMPDIR:-/tmp}/zenml-svc/gcs-$PORT).
# What it does not check (see README): generation preconditions, pagination, authentication.
# It rewrites one JSON file listing every object it holds on each write, so it slows down as a test
# run fills it (a team test took 37 s on a fresh server and over 120 s after the rest of the suite):
# tests that upload a lot start from `fresh`.
set -euo pipefail
PORT="${ZENML_GCS_PORT:-19023}"
DIR="${ZENML_GCS_DIR:-${TMPDIR:-/tmp}/zenml-svc/gcs-$PORT}"
PIDFILE="$DIR/server.pid"
HERE="$(cd "$(dirname "$0")" && pwd)"
log() { echo "gcs-emulator.sh: $*" >&2; }

is_up() {
    [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null \
        && curl -fsS -o /dev/null "http://127.0.0.1:$PORT/storage/v1/b?project=test" 2>/dev/null
}

case "${1:-}" in
start)
    if is_up; then echo "$PORT"; exit 0; fi
    VENV="$("$HERE/python-venv.sh")"
    mkdir -p "$DIR/data"
    # `cd` first and on its own: with `cd && cmd &`, $! would be a subshell, not the server.
    (cd "$DIR"; STORAGE_BASE="$DIR/data" nohup "$VENV/bin/gcp-storage-emulator" start --host=127.0.0.1 --port="$PORT" -q \
        >"$DIR/server.log" 2>&1 </dev/null & echo $! >"$PIDFILE")
    for _ in $(seq 1 100); do
        if is_up; then echo "$PORT"; exit 0; fi
        sleep 0.1
    done
    log "error: the emulator did not come up; see $DIR/server.log"; exit 1 ;;
status)
    if is_up; then echo "$PORT"; exit 0; fi; exit 3 ;;
stop)
    if [ -f "$PIDFILE" ]; then
        pid="$(cat "$PIDFILE")"
        kill "$pid" 2>/dev/null || true
        # Wait for it to let go of the port, so that a `start` right after can bind it.
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$PIDFILE"
    fi ;;
fresh)
    "$0" stop
    rm -rf "$DIR"
    exec "$0" start ;;
env)
    echo "STORAGE_EMULATOR_HOST=http://127.0.0.1:$PORT" ;;
*)
    echo "usage: $0 start|fresh|status|stop|env" >&2; exit 2 ;;
esac
