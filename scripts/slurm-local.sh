#!/usr/bin/env bash
# A one-node Slurm on this machine, for tests: `source scripts/slurm-local.sh start DIR` starts
# munge, slurmctld and slurmd with every file in DIR (exporting SLURM_CONF); `scripts/slurm-local.sh
# stop DIR` stops them. Needs root and Debian's slurm-wlm and munge. Start fails with a message
# (exit 1) when Slurm cannot start here; it never leaves daemons behind on failure.
set -euo pipefail

action=${1:?usage: slurm-local.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: slurm-local.sh start|stop DIR}")

stop() {
    # Every daemon started here names a file in DIR on its command line (the script's own
    # arguments do not).
    pkill -f -- "$dir/slurm.conf" 2>/dev/null || true
    pkill -f -- "$dir/munge/munged.pid" 2>/dev/null || true
    for _ in $(seq 50); do
        pgrep -f -- "$dir/(slurm.conf|munge/munged.pid)" >/dev/null || return 0
        sleep 0.1
    done
    pkill -9 -f -- "$dir/(slurm.conf|munge/munged.pid)" 2>/dev/null || true
}

fail() {
    echo "slurm-local: $*" >&2
    for log in "$dir"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -5 "$log" >&2; }; done
    stop
    exit 1
}

if [ "$action" = stop ]; then
    stop
    exit 0
fi
[ "$action" = start ] || { echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2; }
for tool in munged slurmctld slurmd sbatch squeue sinfo; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (Debian: slurm-wlm munge)"
done
[ "$(id -u)" = 0 ] || fail "needs root (the daemons run as root here)"
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 755 "$dir"  # munged (user munge) writes its log and pid file below it
chown munge: "$dir/munge" 2>/dev/null || fail "no munge user (Debian's munge package makes it)"
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge: /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge: /run/munge
runuser -u munge -- munged --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
    || pgrep -x munged >/dev/null || fail "munged did not start"

host=$(hostname -s)
mem_mb=$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)
cpus=$(nproc)
port=$((17000 + RANDOM % 1000))
cat > "$dir/slurm.conf" <<CONF
ClusterName=landscape-test
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start"
for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
        echo "slurm-local: one node ($host, $cpus CPUs) idle; SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.2
done
fail "the node did not become idle within 20 s"
