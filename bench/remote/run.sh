#!/usr/bin/env bash
# Publish and fetch a 1 GiB artifact and a 10,000-file artifact against local S3 servers (Swift's
# s3api, moto) and the GCS emulator, side by side with the AWS CLI (`aws s3 cp --recursive`) on the
# same S3 servers. Prints a Markdown table; see README.md for the figures and how to read them.
#
#   bench/remote/run.sh            # all servers
#   SERVERS="swift" ARTIFACTS="big" bench/remote/run.sh
#   BENCH_BIN=/path/to/remote-store-bench bench/remote/run.sh   # another build (say, before a change)
# The servers' ports come from scripts/services/* settings (ZENML_SWIFT_PORT, ZENML_MOTO_PORT,
# ZENML_GCS_PORT): give private ones when other sessions use the default servers.
# Each cell: wall time, rate, and the client's CPU (user+system seconds, from /usr/bin/time);
# the load average (1 min) is printed before each row.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SERVERS="${SERVERS:-swift moto gcs}"
ARTIFACTS="${ARTIFACTS:-big many}"
WORK="${BENCH_DIR:-${TMPDIR:-/tmp}/zenml-bench-remote}"
AWS="${AWS_CLI:-$(command -v aws || true)}"
cd "$REPO"
if [ -n "${BENCH_BIN:-}" ]; then
    BENCH="$BENCH_BIN"
else
    swift build -c release --product remote-store-bench >&2
    BENCH="$REPO/.build/release/remote-store-bench"
fi

mkdir -p "$WORK"
if [ ! -f "$WORK/big/blob.bin" ]; then
    mkdir -p "$WORK/big" && head -c $((1 << 30)) /dev/urandom >"$WORK/big/blob.bin"
fi
if [ ! -d "$WORK/many/d99" ]; then
    mkdir -p "$WORK/many"
    python3 - "$WORK/many" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.makedirs(f"{root}/d{d}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d}/f{f}.bin", "wb") as out:
            out.write(os.urandom(4096))
PY
fi

now() { date +%s.%N; }
rate() { python3 -c "import sys; b,f,s=map(float,sys.argv[1:4]); print(f'{s:.1f} s, {b/s/1e6:.0f} MB/s, {f/s:.0f} files/s, CPU {sys.argv[4]} s')" "$@"; }
load() { cut -d' ' -f1 /proc/loadavg; }
# Runs a command, keeping its stdout; its user+system CPU seconds go to $WORK/cpu.
timed() { /usr/bin/time -f "%U %S" -o "$WORK/cpu.raw" "$@"; python3 -c "import sys; u,s=open(sys.argv[1]).read().split()[-2:]; print(f'{float(u)+float(s):.1f}')" "$WORK/cpu.raw" >"$WORK/cpu"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

echo "| server | artifact | tool | load | publish | fetch |"
echo "|---|---|---|---|---|---|"
for server in $SERVERS; do
    case $server in
    swift) port=$(scripts/services/swift-s3.sh start); endpoint="http://127.0.0.1:$port"; scheme=s3
           export AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 ;;
    moto)  port=$(scripts/services/s3-moto.sh start); endpoint="http://127.0.0.1:$port"; scheme=s3
           export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 ;;
    gcs)   port=$(scripts/services/gcs-emulator.sh start); endpoint="http://127.0.0.1:$port"; scheme=gs ;;
    esac
    bucket="bench-$(date +%s)-$RANDOM"
    if [ $scheme = s3 ]; then
        "$AWS" --endpoint-url "$endpoint" s3api create-bucket --bucket "$bucket" >/dev/null
    else
        curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$bucket\"}" "$endpoint/storage/v1/b?project=bench"
    fi
    for artifact in $ARTIFACTS; do
        files=$(find "$WORK/$artifact" -type f | wc -l); bytes=$(du -sb "$WORK/$artifact" | cut -f1)
        rm -rf "$WORK/cache-pub" "$WORK/cache-fetch"
        before=$(load)
        published=$(timed "$BENCH" publish "$scheme://$bucket/zenml-$artifact" "$WORK/$artifact" --endpoint "$endpoint" --cache "$WORK/cache-pub"); pubcpu=$(cat "$WORK/cpu")
        digest=$(field "$published" digest)
        fetched=$(timed "$BENCH" fetch "$scheme://$bucket/zenml-$artifact" "$WORK/unused" --endpoint "$endpoint" --cache "$WORK/cache-fetch" --digest "$digest"); fetchcpu=$(cat "$WORK/cpu")
        echo "| $server | $artifact ($files files, $((bytes >> 20)) MiB) | zenml-run | $before | $(rate "$bytes" "$files" "$(field "$published" seconds)" "$pubcpu") | $(rate "$bytes" "$files" "$(field "$fetched" seconds)" "$fetchcpu") |"
        rm -rf "$WORK/cache-pub" "$WORK/cache-fetch"
        if [ $scheme = s3 ] && [ -n "$AWS" ]; then
            before=$(load)
            start=$(now); timed "$AWS" --endpoint-url "$endpoint" s3 cp --recursive --only-show-errors "$WORK/$artifact" "s3://$bucket/aws-$artifact"; up=$(python3 -c "print($(now)-$start)"); upcpu=$(cat "$WORK/cpu")
            rm -rf "$WORK/aws-down"
            start=$(now); timed "$AWS" --endpoint-url "$endpoint" s3 cp --recursive --only-show-errors "s3://$bucket/aws-$artifact" "$WORK/aws-down"; down=$(python3 -c "print($(now)-$start)"); downcpu=$(cat "$WORK/cpu")
            rm -rf "$WORK/aws-down"
            echo "| $server | $artifact | aws s3 cp | $before | $(rate "$bytes" "$files" "$up" "$upcpu") | $(rate "$bytes" "$files" "$down" "$downcpu") |"
        fi
    done
done
