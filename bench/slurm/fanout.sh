#!/usr/bin/env bash
# A fan-out of N independent steps (default 200) through the Slurm backend on this machine's
# single-node Slurm, against the same pipeline run locally. Reports, per job, the host's own
# cost (sbatch submission; polling is asleep) separately from Slurm's scheduling latency (submit
# to RUNNING) and the job's time on the node.
#
#   bench/slurm/fanout.sh [N]        # needs a built zenml-run (swift build -c release) and sudo/root for Slurm
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-200}"
BIN="${ZENML_RUN:-$PWD/.build/release/zenml-run}"
[ -x "$BIN" ] || BIN="$PWD/.build/debug/zenml-run"
export SLURM_CONF="$(scripts/services/slurm.sh start)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/zenml-slurm-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/bundles/tick"
cat > "$WORK/bundles/tick/step.yaml" <<'YAML'
name: tick
version: 1.0.0
entrypoint: run.sh
outputs: {out: Text}
config: {properties: {n: {type: integer}}}
YAML
cat > "$WORK/bundles/tick/run.sh" <<'SH'
#!/bin/sh
req=$(cat)
out=$(printf '%s' "$req" | sed -n 's/.*"outputs":{"out":{"path":"\([^"]*\)".*/\1/p')
printf '%s' "$req" | sed -n 's/.*"n":\([0-9]*\).*/\1/p' > "$out/n.txt"
echo '{"status":"ok"}'
SH
chmod +x "$WORK/bundles/tick/run.sh"
{ echo "name: fanout"; echo "steps:"; for i in $(seq 1 "$N"); do echo "  s$i: {uses: ./bundles/tick, config: {n: $i}}"; done; } > "$WORK/pipeline.yaml"

run() {  # backend -> wall seconds
    local start end
    start=$(date +%s.%N)
    "$BIN" run "$WORK/pipeline.yaml" --workspace "$WORK/$1" --backend "$1" --jobs 64 --no-cache --json > "$WORK/$1.json"
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
mkdir -p "$WORK/local" "$WORK/slurm"
"$BIN" init --workspace "$WORK/local" >/dev/null; "$BIN" init --workspace "$WORK/slurm" >/dev/null
local_wall=$(run local)
slurm_wall=$(run slurm)
run_id=$(python3 -c "import json; print(json.load(open('$WORK/slurm.json'))['run']['run_id'])")
"$BIN" runs show "$run_id" --workspace "$WORK/slurm" --json > "$WORK/show.json"
python3 - "$WORK/show.json" "$N" "$local_wall" "$slurm_wall" <<'PY'
import json, statistics, sys
show, n, local_wall, slurm_wall = json.load(open(sys.argv[1])), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
details = [e["backend"] for e in show["run"]["executions"] if isinstance(e.get("backend"), dict)]
def mean(key): return statistics.mean(d.get(key, 0) for d in details)
print(f"{n} independent steps, 2 cores, --jobs 64")
print(f"local backend   wall {local_wall:7.2f} s   {1000 * local_wall / n:6.1f} ms per step")
print(f"slurm backend   wall {slurm_wall:7.2f} s   {1000 * slurm_wall / n:6.1f} ms per step")
print(f"  host: sbatch submission        mean {1000 * mean('submit_seconds'):7.1f} ms per job")
print(f"  slurm: submit -> RUNNING       mean {1000 * mean('queue_wait_seconds'):7.1f} ms per job (includes waiting for a free core)")
print(f"  node: RUNNING -> done (seen)   mean {1000 * mean('run_seconds'):7.1f} ms per job")
PY
