#!/usr/bin/env bash
# A private OpenStack Swift with the s3api middleware: a real S3-compatible server that verifies
# SigV4 signatures. 127.0.0.1 only, its own data directory, no systemd, no syslog.
#
#   scripts/services/swift-s3.sh start    # installs swift + memcached (apt) if missing; prints the S3 port
#   scripts/services/swift-s3.sh status   # prints the port, exit 0 if up, 3 if not
#   scripts/services/swift-s3.sh stop
#   scripts/services/swift-s3.sh env      # endpoint and credentials (tempauth user test:tester / testing)
#
# Settings: ZENML_SWIFT_PORT (proxy/S3, default 19026); the account/container/object servers use
# ZENML_SWIFT_PORT-2826 .. -2824 (16200-16202 by default) and memcached ZENML_SWIFT_PORT-7814 (11212);
# ZENML_SWIFT_DIR (default ${TMPDIR:-/tmp}/zenml-svc/swift-$PORT).
# What it does not do: conditional PUTs (501), x-amz-checksum-* headers (ignored).
set -euo pipefail
PORT="${ZENML_SWIFT_PORT:-19026}"
OBJECT_PORT=$((PORT - 2826)); CONTAINER_PORT=$((PORT - 2825)); ACCOUNT_PORT=$((PORT - 2824)); MEMCACHED_PORT=$((PORT - 7814))
D="${ZENML_SWIFT_DIR:-${TMPDIR:-/tmp}/zenml-svc/swift-$PORT}"
log() { echo "swift-s3.sh: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

is_up() { curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthcheck" 2>/dev/null; }

install_if_missing() {
    command -v swift-proxy-server >/dev/null && command -v swift-object-server >/dev/null && command -v memcached >/dev/null && return
    log "installing swift, swift-proxy, swift-account, swift-container, swift-object, memcached (apt-get, ~40 s)"
    local packages=(swift swift-proxy swift-account swift-container swift-object memcached)
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2 || {
        as_root apt-get update -qq >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
    } || { log "error: apt-get install ${packages[*]} failed"; exit 1; }
}

configure() {
    mkdir -p "$D/etc" "$D/srv/d1" "$D/log" "$D/run"
    [ -f "$D/etc/object.ring.gz" ] && return
    printf '[swift-hash]\nswift_hash_path_suffix = zenml\nswift_hash_path_prefix = test\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' >"$D/etc/swift.conf"
    local common="[DEFAULT]\ndevices = $D/srv\nmount_check = false\ndisable_fallocate = true\nbind_ip = 127.0.0.1\nworkers = 0\nswift_dir = $D/etc\nlog_address = /dev/null\nlog_facility = LOG_LOCAL0\n"
    printf "$common"'bind_port = %s\n[pipeline:main]\npipeline = account-server\n[app:account-server]\nuse = egg:swift#account\n[account-replicator]\n[account-auditor]\n[account-reaper]\n' "$ACCOUNT_PORT" >"$D/etc/account-server.conf"
    printf "$common"'bind_port = %s\n[pipeline:main]\npipeline = container-server\n[app:container-server]\nuse = egg:swift#container\n[container-replicator]\n[container-updater]\n[container-auditor]\n[container-sync]\n' "$CONTAINER_PORT" >"$D/etc/container-server.conf"
    printf "$common"'bind_port = %s\n[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n[object-replicator]\n[object-updater]\n[object-auditor]\n' "$OBJECT_PORT" >"$D/etc/object-server.conf"
    cat >"$D/etc/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 0
swift_dir = $D/etc
log_address = /dev/null
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
CONF
    for ring in account:$ACCOUNT_PORT container:$CONTAINER_PORT object:$OBJECT_PORT; do
        local name=${ring%%:*} port=${ring##*:}
        swift-ring-builder "$D/etc/$name.builder" create 8 1 1 >/dev/null
        swift-ring-builder "$D/etc/$name.builder" add "r1z1-127.0.0.1:$port/d1" 1 >/dev/null
        swift-ring-builder "$D/etc/$name.builder" rebalance >/dev/null
    done
}

stop() {
    for name in proxy object container account memcached; do
        if [ -f "$D/run/$name.pid" ]; then kill "$(cat "$D/run/$name.pid")" 2>/dev/null || true; rm -f "$D/run/$name.pid"; fi
    done
}

case "${1:-}" in
start)
    if is_up; then echo "$PORT"; exit 0; fi
    install_if_missing
    configure
    stop
    memcached -d -u "$(id -un)" -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 32 -P "$D/run/memcached.pid"
    for name in account container object proxy; do
        nohup "/usr/bin/swift-$name-server" "$D/etc/$name-server.conf" >"$D/log/$name.log" 2>&1 </dev/null &
        echo $! >"$D/run/$name.pid"
    done
    for _ in $(seq 1 300); do
        if is_up; then echo "$PORT"; exit 0; fi
        sleep 0.1
    done
    log "error: Swift did not come up; see $D/log"; exit 1 ;;
status)
    if is_up; then echo "$PORT"; exit 0; fi; exit 3 ;;
stop) stop ;;
env)
    printf 'ZENML_S3_ENDPOINT=http://127.0.0.1:%s\nAWS_ACCESS_KEY_ID=test:tester\nAWS_SECRET_ACCESS_KEY=testing\nAWS_DEFAULT_REGION=us-east-1\n' "$PORT" ;;
*)
    echo "usage: $0 start|status|stop|env" >&2; exit 2 ;;
esac
