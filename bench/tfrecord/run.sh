#!/usr/bin/env bash
# The TFRecord benchmark: builds the Swift runner (release), the C runner (-O2) and runs them and the
# Python runner; each writes then reads N examples (default 1,000,000), uncompressed and GZIP, and
# measures CRC32C. Prints a Markdown table with TensorFlow's reference figures (README.md).
#
#   bench/tfrecord/run.sh                 # N=1000000, median of RUNS=3
#   N=100000 RUNS=1 bench/tfrecord/run.sh # a quick look
#
# Needs swift, cc, pkg-config with jansson and zlib (scripts/setup installs them) and python3;
# the Python `crc32c` package is used when installed (pip install crc32c).
set -euo pipefail
cd "$(dirname "$0")"
N=${N:-1000000}
RUNS=${RUNS:-3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zenml-tfrecord-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p build

echo "building the Swift runner (release)..." >&2
swift build -c release --package-path swift --scratch-path swift/.build >&2
SWIFT_BIN="$(swift build -c release --package-path swift --scratch-path swift/.build --show-bin-path)/TFRecordBench"
echo "building the C runner (-O2)..." >&2
# shellcheck disable=SC2046
cc -O2 -std=gnu11 -o build/bench_c c/bench.c ../../protocol/c/zenml_step.c $(pkg-config --cflags --libs jansson zlib) -lpthread -lm

RESULTS=build/results.tsv
: > "$RESULTS"
printf 'bench\trecords\t%s\n' "$N" >> "$RESULTS"
for run in $(seq 1 "$RUNS"); do
    for impl in swift c python; do
        case $impl in
            swift) runner=("$SWIFT_BIN") ;;
            c) runner=(build/bench_c) ;;
            python) runner=(python3 python/bench.py) ;;
        esac
        mkdir -p "$WORK/$impl"
        echo "run $run/$RUNS: $impl" >&2
        "${runner[@]}" write "$WORK/$impl" "$N" >> "$RESULTS"
        "${runner[@]}" read "$WORK/$impl" "$N" >> "$RESULTS"
        "${runner[@]}" crc >> "$RESULTS"
    done
    build/bench_c zlib "$WORK/c" >> "$RESULTS"
    # The three implementations must have written the same bytes, compressed or not.
    for name in data.tfrecord data.tfrecord.gz; do
        digests=$(sha256sum "$WORK"/{swift,c,python}/"$name" | cut -d' ' -f1 | sort -u | wc -l)
        if [ "$digests" != 1 ]; then
            echo "error: Swift, C and Python wrote different $name files:" >&2
            sha256sum "$WORK"/{swift,c,python}/"$name" >&2
            exit 1
        fi
    done
done

echo "Swift, C and Python wrote byte-identical data.tfrecord and data.tfrecord.gz ($N examples)."
echo
python3 report.py "$RESULTS"
echo
echo "Machine: $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), shared; $(date -u +%Y-%m-%d)."
echo "$(swift --version 2>&1 | head -1); $(cc --version | head -1); Python $(python3 -c 'import sys; print(sys.version.split()[0])') with $(python3 -c 'import sys; sys.path.insert(0, "../../protocol/python"); import zenml_step; print(zenml_step.CRC32C_IMPLEMENTATION)') for CRC32C."
