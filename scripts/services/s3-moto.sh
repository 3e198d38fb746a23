#!/usr/bin/env bash
# A private moto S3 server for tests: 127.0.0.1 only, state in memory.
#
#   scripts/services/s3-moto.sh start    # installs moto[s3] into the services venv if missing; prints the port
#   scripts/services/s3-moto.sh status   # prints the port, exit 0 if up, 3 if not
#   scripts/services/s3-moto.sh stop
#   scripts/services/s3-moto.sh env      # endpoint and (fake) credentials for clients
#
# Settings: ZENML_MOTO_PORT (default 19025), ZENML_MOTO_DIR (default ${TMPDIR:-/tmp}/zenml-svc/moto-$PORT).
# What it does not check: SigV4 signatures (any secret is accepted).
set -euo pipefail
PORT="${ZENML_MOTO_PORT:-19025}"
DIR="${ZENML_MOTO_DIR:-${TMPDIR:-/tmp}/zenml-svc/moto-$PORT}"
PIDFILE="$DIR/server.pid"
HERE="$(cd "$(dirname "$0")" && pwd)"
log() { echo "s3-moto.sh: $*" >&2; }

is_up() {
    [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null \
        && curl -sS -o /dev/null "http://127.0.0.1:$PORT/moto-api/" 2>/dev/null
}

case "${1:-}" in
start)
    if is_up; then echo "$PORT"; exit 0; fi
    VENV="$("$HERE/python-venv.sh")"
    mkdir -p "$DIR"
    # `cd` first and on its own: with `cd && cmd &`, $! would be a subshell, not the server.
    (cd "$DIR"; nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$DIR/server.log" 2>&1 </dev/null & echo $! >"$PIDFILE")
    for _ in $(seq 1 150); do
        if is_up; then echo "$PORT"; exit 0; fi
        sleep 0.1
    done
    log "error: moto did not come up; see $DIR/server.log"; exit 1 ;;
status)
    if is_up; then echo "$PORT"; exit 0; fi; exit 3 ;;
stop)
    if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi ;;
env)
    printf 'ZENML_S3_ENDPOINT=http://127.0.0.1:%s\nAWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\nAWS_DEFAULT_REGION=us-east-1\n' "$PORT" ;;
*)
    echo "usage: $0 start|status|stop|env" >&2; exit 2 ;;
esac
