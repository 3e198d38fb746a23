#!/usr/bin/env bash
# Host overhead of zenml-run per step:
#
#   overhead = (zenml-run time for a chain of N steps, cold)
#              - (time to run the same N step processes directly, sequentially, each fed a
#                 request of the same shape on stdin)
#              ) / N
#
# The direct baseline is a bash loop that starts the same bundle's step.sh N times, each in
# its own scratch folder with a pre-written request (compact JSON, absolute paths, same
# fields the host sends) on stdin and the previous step's output folder as its input: the
# step's own process cost without the host.  The target is under 5 ms per step.
#
# Environment: ZENML_RUN [<repo>/.build/release/zenml-run], OVERHEAD_N [100],
# OVERHEAD_REPS [5], BENCH_JOBS [2] (zenml-run --jobs), BENCH_WORK [bench/.work],
# BENCH_PYTHON [python3].  Also prints the fully cached re-run time per step (host only).
set -uo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
ZENML_RUN=${ZENML_RUN:-$REPO/.build/release/zenml-run}
N=${OVERHEAD_N:-100}
REPS=${OVERHEAD_REPS:-5}
JOBS=${BENCH_JOBS:-2}
WORK=${BENCH_WORK:-$BENCH/.work}/overhead
PYTHON=${BENCH_PYTHON:-python3}

if [ ! -x "$ZENML_RUN" ]; then
    echo "overhead.sh: zenml-run not found at $ZENML_RUN (set ZENML_RUN)" >&2
    exit 1
fi

# elapsed_us T0 T1 (EPOCHREALTIME values) -> microseconds
elapsed_us() { echo $((${2/./} - ${1/./})); }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : int((v[NR/2] + v[NR/2+1]) / 2)}'; }

rm -rf "$WORK"
mkdir -p "$WORK"
"$PYTHON" "$BENCH/generate.py" chain "$N" "$WORK/template" --forms zenml || exit 1
STEP=$WORK/template/zenml/steps/link/step.sh

host=() cached=() direct=()
for rep in $(seq 1 "$REPS"); do
    # zenml-run: a fresh workspace, cold run, then a fully cached re-run.
    ws=$WORK/zenml$rep
    cp -a "$WORK/template/zenml" "$ws"
    (cd "$ws" && "$ZENML_RUN" init) >"$ws.log" 2>&1 || { echo "zenml-run init failed: $ws.log" >&2; exit 1; }
    t0=$EPOCHREALTIME
    (cd "$ws" && exec "$ZENML_RUN" run pipeline.yaml --jobs "$JOBS") >>"$ws.log" 2>&1 ||
        { echo "zenml-run run failed; see $ws.log" >&2; tail -n 15 "$ws.log" >&2; exit 1; }
    t1=$EPOCHREALTIME
    (cd "$ws" && exec "$ZENML_RUN" run pipeline.yaml --jobs "$JOBS") >>"$ws.log" 2>&1 ||
        { echo "zenml-run cached re-run failed; see $ws.log" >&2; exit 1; }
    t2=$EPOCHREALTIME
    host+=("$(elapsed_us "$t0" "$t1")")
    cached+=("$(elapsed_us "$t1" "$t2")")

    # Direct: the same N processes, requests prepared beforehand (not timed).
    dir=$WORK/direct$rep
    "$PYTHON" - "$dir" "$N" "$WORK/template/zenml/steps/link" <<'EOF' || exit 1
import hashlib, json, os, sys
root, n, bundle = sys.argv[1], int(sys.argv[2]), os.path.abspath(sys.argv[3])
def digest(text): return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
for i in range(n):
    for sub in (f"art/{i:04d}", f"scratch/{i:04d}/tmp", "req"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    inputs = {}
    if i > 0:
        inputs["in"] = [{"digest": digest(f"a{i-1}"), "path": os.path.join(root, f"art/{i-1:04d}"),
                         "properties": {}, "type": "Number"}]
    request = {
        "config": {"index": i}, "contract": 1, "inputs": inputs,
        "outputs": {"out": {"path": os.path.join(root, f"art/{i:04d}"), "type": "Number"}},
        "pipeline": {"name": f"chain{n}", "version": digest("spec")},
        "run": {"id": "00000000-0000-0000-0000-000000000000"},
        "scratch": os.path.join(root, f"scratch/{i:04d}"), "seed": 1234567890123,
        "step": {"bundle": "link", "bundle_digest": digest(bundle), "bundle_version": "0.1.0",
                 "cache_key": digest(f"k{i}"), "name": f"l{i:04d}"},
    }
    with open(os.path.join(root, f"req/{i:04d}.json"), "w") as f:
        f.write(json.dumps(request, sort_keys=True, separators=(",", ":")))
EOF
    sync
    t0=$EPOCHREALTIME
    for ((i = 0; i < N; i++)); do
        printf -v k %04d "$i"
        cd "$dir/scratch/$k" || exit 1
        "$STEP" <"$dir/req/$k.json" >"$dir/scratch/$k/response.json" ||
            { echo "direct step $k failed" >&2; exit 1; }
    done
    t1=$EPOCHREALTIME
    cd "$WORK" || exit 1
    direct+=("$(elapsed_us "$t0" "$t1")")
    printf -v k %04d $((N - 1))
    want=$(((N - 1) * N / 2))
    [ "$(cat "$dir/art/$k/data")" = "$want" ] || { echo "direct chain gave a wrong result" >&2; exit 1; }
    printf 'rep %d: zenml-run cold %d ms, cached %d ms; direct %d ms\n' "$rep" \
        $((${host[-1]} / 1000)) $((${cached[-1]} / 1000)) $((${direct[-1]} / 1000)) >&2
done

h=$(median "${host[@]}")
c=$(median "${cached[@]}")
d=$(median "${direct[@]}")
echo "chain of $N steps, medians of $REPS repetitions (zenml-run --jobs $JOBS):"
printf '  zenml-run cold run:          %8.1f ms  (%.2f ms/step)\n' "$(awk -v x="$h" 'BEGIN{print x/1000}')" "$(awk -v x="$h" -v n="$N" 'BEGIN{print x/1000/n}')"
printf '  the same steps run directly: %8.1f ms  (%.2f ms/step)\n' "$(awk -v x="$d" 'BEGIN{print x/1000}')" "$(awk -v x="$d" -v n="$N" 'BEGIN{print x/1000/n}')"
printf '  host overhead per step:      %8.2f ms  (target < 5 ms)\n' "$(awk -v h="$h" -v d="$d" -v n="$N" 'BEGIN{print (h-d)/1000/n}')"
printf '  fully cached re-run:         %8.1f ms  (%.2f ms/step)\n' "$(awk -v x="$c" 'BEGIN{print x/1000}')" "$(awk -v x="$c" -v n="$N" 'BEGIN{print x/1000/n}')"
