#!/bin/sh
# report: summarizes a table (row count, min, max, mean of the value column) in POSIX sh + awk.
#
# A zenml-run step (step contract version 1, see protocol/SPEC.md). The request arrives on
# stdin; json.awk (in this bundle) flattens it into "path<TAB>type<TAB>value" lines, from which the
# few values needed are picked. The summary goes to <outputs.report>/summary.txt, the response
# to stdout, logs to stderr.
set -eu

bundle=${ZENML_BUNDLE_DIR:-$(cd "$(dirname "$0")" && pwd)}
work=$(mktemp -d "${TMPDIR:-/tmp}/report.XXXXXX")

log() { printf 'report: %s\n' "$*" >&2; }

# Prints an error response on stdout, the message on stderr, and exits 1.
fail() {
    log "error: $1"
    # The message only ever contains paths and fixed text; escape \ and " for JSON.
    escaped=$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')
    printf '{"status":"error","message":"%s"}\n' "$escaped"
    exit 1
}

cat > "$work/request.json"
if ! LC_ALL=C awk -f "$bundle/json.awk" "$work/request.json" > "$work/request.tsv"; then
    log "error: the request on stdin is not JSON"
    exit 2
fi

# get PATH: the value at PATH in the request (empty if there is none).
get() {
    awk -F '\t' -v key="$1" '$1 == key { print substr($0, length($1 $2) + 3); exit }' "$work/request.tsv"
}
# type_of PATH: string, number, boolean or null (empty if there is no such value).
type_of() {
    awk -F '\t' -v key="$1" '$1 == key { print $2; exit }' "$work/request.tsv"
}

contract=$(get contract)
if [ "$(type_of contract)" != number ] || [ "$contract" != 1 ]; then
    [ "$(type_of contract)" = string ] && contract="\"$contract\""
    log "error: this step speaks step contract version 1, but the request has contract ${contract:-missing}"
    exit 2
fi

input=$(get inputs.table.0.path)
output=$(get outputs.report.path)
[ -n "$input" ] || fail "the request has no inputs.table[0].path"
[ -n "$output" ] || fail "the request has no outputs.report.path"
[ -f "$input/data.csv" ] || fail "the input table has no data.csv: $input"

log "summarizing $input/data.csv"
# Skips the header; prints "rows min max mean" with fixed formatting (deterministic output).
stats=$(awk -F ',' '
    NR == 1 || $0 == "" { next }
    {
        v = $2 + 0
        if (rows == 0 || v < min) min = v
        if (rows == 0 || v > max) max = v
        sum += v
        rows++
    }
    END { if (rows > 0) printf "%d %.6f %.6f %.6f\n", rows, min, max, sum / rows; else print "0" }
' "$input/data.csv")

read -r rows min max mean <<EOF
$stats
EOF
[ "$rows" -gt 0 ] || fail "the input table has no rows: $input/data.csv"

{
    echo "rows: $rows"
    echo "min: $min"
    echo "max: $max"
    echo "mean: $mean"
} > "$output/summary.txt"
log "rows=$rows min=$min max=$max mean=$mean; wrote $output/summary.txt"

printf '{"status":"ok","outputs":{"report":{"properties":{"rows":%s}}},"metrics":{"mean":%s}}\n' "$rows" "$mean"
