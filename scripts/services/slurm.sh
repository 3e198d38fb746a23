#!/usr/bin/env bash
# A private single-node Slurm cluster for tests: munge, slurmctld and slurmd on 127.0.0.1, no
# systemd, no cgroups, no accounting database.
#
#   scripts/services/slurm.sh start   # installs slurm-wlm and munge if missing, starts them; prints SLURM_CONF
#   scripts/services/slurm.sh status  # prints SLURM_CONF and exits 0 if the node is up, 3 if not
#   scripts/services/slurm.sh stop    # cancels every job, stops the daemons; no-op if down
#
# Clients (sbatch, squeue, scancel, and zenml-run --backend slurm) need `export SLURM_CONF=...`
# with the path `start` prints. Settings (environment):
#   ZENML_SLURM_DIR  state, spool, logs, munge socket (default ${TMPDIR:-/tmp}/zenml-svc/slurm)
#   ZENML_SLURM_PORT slurmctld's port; slurmd uses the next one (default 16817)
#
# Why these settings (see ../shared/notes/services.md where they were worked out):
# batch_sched_delay=0 starts a job ~1 s after submission instead of ~3 s; kill_invalid_depend
# cancels jobs whose dependency failed instead of leaving them pending; proctrack/linuxproc and
# task/none need no cgroups; MinJobAge=600 keeps finished jobs visible to `scontrol show job`.
set -euo pipefail

DIR="${ZENML_SLURM_DIR:-${TMPDIR:-/tmp}/zenml-svc/slurm}"
PORT="${ZENML_SLURM_PORT:-16817}"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"

log() { echo "slurm.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_if_missing() {
    command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 && return
    log "installing slurm-wlm and munge (apt-get, ~15 s)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2; then
        as_root apt-get update -qq >&2 || die "apt-get update failed; install slurm-wlm and munge by hand"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2 \
            || die "apt-get install slurm-wlm munge failed"
    fi
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() { alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|alloc'; }

write_conf() {
    local cpus memory
    cpus=$(nproc)
    memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
    cat > "$CONF" <<CONF
ClusterName=zenml
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MinJobAge=600
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
    if up; then echo "$CONF"; return; fi
    install_if_missing
    mkdir -p "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/log"
    chmod 755 "$DIR" "$DIR/munge"
    if ! alive "$DIR/munge/munged.pid"; then
        [ -f "$DIR/munge/munge.key" ] || { dd if=/dev/urandom bs=1 count=1024 of="$DIR/munge/munge.key" 2>/dev/null; chmod 400 "$DIR/munge/munge.key"; }
        munged --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
            --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" || die "munged did not start; see $DIR/log/munged.log"
    fi
    write_conf
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF" || die "slurmctld did not start; see $DIR/log/slurmctld.log"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF" -N localhost || die "slurmd did not start; see $DIR/log/slurmd.log"
    for _ in $(seq 1 100); do
        if up; then echo "$CONF"; return; fi
        # A node left DOWN by an earlier stop comes back with a resume.
        scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
        sleep 0.1
    done
    die "the Slurm node did not come up; see $DIR/log/slurmctld.log and slurmd.log"
}

stop() {
    if alive "$DIR/slurmctld.pid"; then squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true; fi
    for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/munge/munged.pid"; do
        if alive "$pidfile"; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
}

case "${1:-}" in
    start) start ;;
    status) if up; then echo "$CONF"; else exit 3; fi ;;
    stop) stop ;;
    *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac
