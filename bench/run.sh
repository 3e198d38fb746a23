#!/usr/bin/env bash
# zenml-run benchmark: zenml-run vs DVC vs Snakemake on generated workloads of trivial sh steps.
# A benchmark, not a test: it reports times, it does not fail on slow results.
#
#   bench/run.sh            full run (chain 100, fan 500, big-input 1 GiB; 3 repetitions)
#   bench/run.sh --quick    smoke check (chain 10, fan 20, big-input 64 MiB; 1 repetition)
#
# Environment (defaults in brackets; --quick changes the starred ones):
#   ZENML_RUN        zenml-run binary [<repo>/.build/release/zenml-run]; skipped if missing
#   BENCH_REPS*      repetitions per measurement [3]
#   BENCH_CHAIN_N*   steps in the chain [100]
#   BENCH_FAN_N*     width of the fan [500]
#   BENCH_BIG_MB*    size of the big input in MiB [1024]
#   BENCH_WORKLOADS  which workloads [chain fan big]
#   BENCH_TOOLS      which tools [zenml dvc snakemake]
#   BENCH_SKIP       tool:workload pairs to skip [full run: "dvc:fan", about 12 min per cold
#                    run; BENCH_SKIP= includes it]
#   BENCH_JOBS       parallelism: snakemake --cores, zenml-run --jobs [2]; dvc repro is sequential
#   BENCH_WORK       scratch folder for workspaces [bench/.work]
#   BENCH_PYTHON     Python (>= 3.11) for the venv [python3]
#   DVC_VERSION, SNAKEMAKE_VERSION   pinned peer versions [3.67.1, 9.27.1]
#
# Output: a Markdown table on stdout and in bench/results/<date>.md (<date>-quick.md for
# --quick; a later run the same day gets -2, -3, ...), with the raw measurements next to it
# (.tsv).  Logs of every run: $BENCH_WORK/logs.
set -uo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
QUICK=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        -h | --help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    REPS=${BENCH_REPS:-1}; CHAIN_N=${BENCH_CHAIN_N:-10}; FAN_N=${BENCH_FAN_N:-20}; BIG_MB=${BENCH_BIG_MB:-64}
else
    REPS=${BENCH_REPS:-3}; CHAIN_N=${BENCH_CHAIN_N:-100}; FAN_N=${BENCH_FAN_N:-500}; BIG_MB=${BENCH_BIG_MB:-1024}
fi
ZENML_RUN=${ZENML_RUN:-$REPO/.build/release/zenml-run}
WORKLOADS=${BENCH_WORKLOADS:-chain fan big}
TOOLS=${BENCH_TOOLS:-zenml dvc snakemake}
# DVC on the 500-wide fan takes about 12 minutes per cold run here (it rewrites dvc.lock
# after every stage), so the full run leaves it out unless BENCH_SKIP says otherwise.
if [ "$QUICK" = 1 ]; then SKIP=${BENCH_SKIP-}; else SKIP=${BENCH_SKIP-dvc:fan}; fi
JOBS=${BENCH_JOBS:-2}
WORK=${BENCH_WORK:-$BENCH/.work}
PYTHON=${BENCH_PYTHON:-python3}
DVC_VERSION=${DVC_VERSION:-3.67.1}
SNAKEMAKE_VERSION=${SNAKEMAKE_VERSION:-9.27.1}
VENV=$BENCH/.venv
DATA=$BENCH/.data
GEN=$BENCH/generate.py

say() { printf '%s\n' "$*" >&2; }
has_tool() { case " $TOOLS " in *" $1 "*) return 0 ;; esac; return 1; }

# ------------------------------------------------------------------ peers: DVC and Snakemake
if has_tool dvc || has_tool snakemake; then
    if [ "$("$VENV/bin/dvc" --version 2>/dev/null)" != "$DVC_VERSION" ] ||
        [ "$("$VENV/bin/snakemake" --version 2>/dev/null)" != "$SNAKEMAKE_VERSION" ]; then
        say "== installing dvc==$DVC_VERSION snakemake==$SNAKEMAKE_VERSION into $VENV"
        if [ ! -x "$VENV/bin/pip" ]; then
            "$PYTHON" -m venv "$VENV" || { say "run.sh: cannot create a venv with $PYTHON"; exit 1; }
        fi
        "$VENV/bin/pip" install -q --disable-pip-version-check \
            "dvc==$DVC_VERSION" "snakemake==$SNAKEMAKE_VERSION" >&2 ||
            { say "run.sh: pip install failed"; exit 1; }
    fi
fi
DVC=$VENV/bin/dvc
SNAKEMAKE=$VENV/bin/snakemake
export DVC_NO_ANALYTICS=1

# ------------------------------------------------------------------ zenml-run
if has_tool zenml && [ ! -x "$ZENML_RUN" ]; then
    say "== zenml-run not found at $ZENML_RUN (set ZENML_RUN): skipping the zenml-run columns"
    TOOLS=$(for t in $TOOLS; do [ "$t" = zenml ] || printf '%s ' "$t"; done)
fi
[ -n "${TOOLS// /}" ] || { say "run.sh: no tool left to measure"; exit 1; }

# ------------------------------------------------------------------ timing helpers
# timed LOG CMD...: runs CMD with output to LOG; sets ELAPSED (seconds, 3 decimals).
timed() {
    local log=$1 t0 t1 rc us
    shift
    t0=$EPOCHREALTIME
    "$@" >"$log" 2>&1
    rc=$?
    t1=$EPOCHREALTIME
    us=$((${t1/./} - ${t0/./}))
    ELAPSED=$(printf '%d.%03d' $((us / 1000000)) $((us % 1000000 / 1000)))
    return $rc
}

# The tools, each run inside its workspace.
prepare_zenml() { (cd "$1" && "$ZENML_RUN" init) >"$1.prepare.log" 2>&1; }
prepare_dvc() {
    (cd "$1" && "$DVC" init --no-scm -q && "$DVC" config core.analytics false &&
        "$DVC" config core.check_update false) >"$1.prepare.log" 2>&1
}
prepare_snakemake() { :; }
run_zenml() (cd "$1" && exec "$ZENML_RUN" run pipeline.yaml --jobs "$JOBS")
run_dvc() (cd "$1" && exec "$DVC" repro)
run_snakemake() (cd "$1" && exec "$SNAKEMAKE" --cores "$JOBS")

# check TOOL WS LOG WORKLOAD SIZE PHASE: did the tool run exactly the steps it had to, and
# is the final output right?  (verify.py, not timed.)
check() {
    "$PYTHON" "$BENCH/verify.py" "$1" "$2" "$3" "$4" "$5" "$6" --zenml-run "$ZENML_RUN" \
        --big-bytes $((BIG_MB * 1024 * 1024)) 2>&1 | sed 's/^/     /' >&2
    return "${PIPESTATUS[0]}"
}

RESULTS=$BENCH/results
mkdir -p "$RESULTS" "$WORK/logs"
STAMP=$(date +%F)
[ "$QUICK" = 1 ] && STAMP=$STAMP-quick
# Another run the same day gets <date>-2.md, <date>-3.md, ... instead of overwriting.
if [ -e "$RESULTS/$STAMP.md" ] || [ -e "$RESULTS/$STAMP.tsv" ]; then
    i=2
    while [ -e "$RESULTS/$STAMP-$i.md" ] || [ -e "$RESULTS/$STAMP-$i.tsv" ]; do i=$((i + 1)); done
    STAMP=$STAMP-$i
fi
RAW=$RESULTS/$STAMP.tsv
REPORT=$RESULTS/$STAMP.md
: >"$RAW"

# record WORKLOAD SIZE STEPS TOOL PHASE REP SECONDS STATUS
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; }

# measure WORKLOAD SIZE STEPS TOOL PHASE REP WS: one timed run, checked and recorded.
measure() {
    local workload=$1 size=$2 steps=$3 tool=$4 phase=$5 rep=$6 ws=$7
    local log=$WORK/logs/$workload-$tool-$phase-$rep.log status=ok
    if ! timed "$log" run_"$tool" "$ws"; then
        status=FAIL
        say "   $tool $phase FAILED after ${ELAPSED}s; last lines of $log:"
        tail -n 15 "$log" | sed 's/^/     | /' >&2
    elif ! check "$tool" "$ws" "$log" "$workload" "$size" "$phase"; then
        status=WRONG
    fi
    say "   $(printf '%-9s %-7s rep %d: %8ss %s' "$tool" "$phase" "$rep" "$ELAPSED" "$([ $status = ok ] || echo "$status")")"
    record "$workload" "$size" "$steps" "$tool" "$phase" "$rep" "$ELAPSED" "$status"
    [ $status = ok ]
}

skipped() { case " $SKIP " in *" $1:$2 "*) return 0 ;; esac; return 1; }

# bench_dag WORKLOAD N STEPS: cold, cached and mid-change runs, REPS times, tools interleaved.
bench_dag() {
    local workload=$1 n=$2 steps=$3 rep tool base ws
    say "== $workload $n ($steps steps), $REPS repetition(s)"
    for rep in $(seq 1 "$REPS"); do
        base=$WORK/$workload/rep$rep
        rm -rf "$base"
        "$PYTHON" "$GEN" "$workload" "$n" "$base" || exit 1
        for tool in $TOOLS; do
            skipped "$tool" "$workload" && continue
            ws=$base/$tool
            prepare_"$tool" "$ws" || { say "   $tool: workspace setup failed, see $ws.prepare.log"; continue; }
            sync
            measure "$workload" "$n" "$steps" "$tool" cold "$rep" "$ws" || continue
            measure "$workload" "$n" "$steps" "$tool" cached "$rep" "$ws" || continue
            # The mid change, the same in all three tools: the middle step's parameter `index`
            # goes from i to i+1000 (chain: step N/2; fan: leaf N/2), so that step's output
            # changes and exactly that step and everything downstream of it must re-run.
            #   zenml-run: its `config: {index: ...}` in pipeline.yaml changes -> new cache key;
            #              downstream steps get a new input digest -> new cache keys.
            #   DVC:       the number in the stage's `cmd` changes -> the stage is out of date;
            #              downstream deps get a new md5 -> those stages re-run.
            #   Snakemake: the job's `params.idx` changes -> the params rerun trigger (on by
            #              default) re-runs it; downstream inputs are newer -> they re-run.
            # Only the pipeline definition file is rewritten (bundles and data untouched).
            "$PYTHON" "$GEN" "$workload" "$n" "$base" --forms "$tool" --change || exit 1
            measure "$workload" "$n" "$steps" "$tool" change "$rep" "$ws" || continue
        done
    done
}

# bench_big: one step over a BIG_MB file; cold run (hashes the file) and cached re-run.
bench_big() {
    local file=$DATA/big-${BIG_MB}M.bin bytes=$((BIG_MB * 1024 * 1024)) rep tool base ws
    mkdir -p "$DATA"
    if [ "$(stat -c %s "$file" 2>/dev/null)" != "$bytes" ]; then
        say "== generating $file ($BIG_MB MiB from /dev/urandom, once)"
        head -c "$bytes" /dev/urandom >"$file.tmp" && mv "$file.tmp" "$file" || exit 1
    fi
    say "== big-input ($BIG_MB MiB), $REPS repetition(s)"
    for rep in $(seq 1 "$REPS"); do
        base=$WORK/big/rep$rep
        rm -rf "$base"
        "$PYTHON" "$GEN" big "$file" "$base" || exit 1
        for tool in $TOOLS; do
            skipped "$tool" big && continue
            ws=$base/$tool
            prepare_"$tool" "$ws" || { say "   $tool: workspace setup failed, see $ws.prepare.log"; continue; }
            measure big "$BIG_MB" 1 "$tool" cold "$rep" "$ws" || continue
            measure big "$BIG_MB" 1 "$tool" cached "$rep" "$ws" || continue
        done
    done
}

for workload in $WORKLOADS; do
    case $workload in
        chain) bench_dag chain "$CHAIN_N" "$CHAIN_N" ;;
        fan) bench_dag fan "$FAN_N" $((FAN_N + 2)) ;;
        big) bench_big ;;
        *) say "run.sh: unknown workload '$workload'"; exit 2 ;;
    esac
done

versions="tools:"
for tool in $TOOLS; do
    case $tool in
        zenml) versions+=" zenml-run ($ZENML_RUN)" ;;
        dvc) versions+=" DVC $("$DVC" --version 2>/dev/null)" ;;
        snakemake) versions+=" Snakemake $("$SNAKEMAKE" --version 2>/dev/null)" ;;
    esac
done
"$PYTHON" "$BENCH/report.py" "$RAW" \
    --title "zenml-run benchmark, $(date '+%F %H:%M')$([ "$QUICK" = 1 ] && echo ' (quick)')" \
    --note "$versions" \
    --note "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)" \
    --note "repetitions: $REPS; parallelism: snakemake --cores $JOBS, zenml-run --jobs $JOBS, dvc repro sequential" \
    ${SKIP:+--note "skipped: $SKIP"} >"$REPORT"
cat "$REPORT"
say ""
say "report: $REPORT (raw: $RAW)"
