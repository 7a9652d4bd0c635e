#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, without systemd, for the tests (and for trying
# deploy/slurm/aetrain.sbatch by hand). Needs root and Debian's slurmctld, slurmd,
# slurm-client and munge (deploy/test.sh installs them).
#
#   deploy/slurm-cluster.sh up [DIR]     start munged (unless running), slurmctld, slurmd; wait
#                                        until the node is idle; print the SLURM_CONF to export
#   deploy/slurm-cluster.sh down [DIR]   stop what `up` started, by PID
#
# DIR (default ${TMPDIR:-/tmp}/aetrain-slurm) holds slurm.conf, the state and spool
# directories, the daemons' logs and PID files. The node is `hostname -s` at 127.0.0.1 with
# this machine's CPUs; processes are tracked by process group (proctrack/pgid), MPI plugin
# none unless srun says --mpi=...; jobs are remembered for an hour after they end
# (MinJobAge), so `scontrol show job` reports their exit code without a database; a requeued
# job may start again after 10 s (cred_expire; Slurm's default is 120 s).
set -euo pipefail

command=${1:-}
dir=${2:-${TMPDIR:-/tmp}/aetrain-slurm}

fail() { echo "error: $*" >&2; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Starts a daemon with no descriptors but 0-2, its output going to its log. A daemon that kept
# one the caller handed down would hold it open for good: Foundation's Process, for one, waits
# for every copy of a descriptor it gives its child to close before it sees the child's end.
daemon() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec "$@" </dev/null >/dev/null 2>&1
  )
}

start_munge() {
  if pgrep -x munged >/dev/null; then return; fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    if [ -x /usr/sbin/mungekey ]; then /usr/sbin/mungekey --create --keyfile /etc/munge/munge.key
    else /usr/sbin/create-munge-key -f; fi
    chown munge:munge /etc/munge/munge.key
    chmod 0600 /etc/munge/munge.key
  fi
  daemon runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
  [ -f /run/munge/munged.pid ] || fail "munged did not start"
  cp /run/munge/munged.pid "$dir/munged.pid"   # ours: `down` stops it
}

write_config() {
  local node cpus
  node=$(hostname -s)
  cpus=$(nproc --all)
  cat >"$dir/slurm.conf" <<EOF
ClusterName=aetrain
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
SlurmctldPort=${AETRAIN_SLURMCTLD_PORT:-6817}
SlurmdPort=${AETRAIN_SLURMD_PORT:-6818}
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=3600
KillWait=30
SchedulerParameters=sched_interval=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
  [ "$(id -u)" = 0 ] || fail "the Slurm daemons need root"
  alive "$dir/slurmctld.pid" && fail "a cluster already runs from $dir (deploy/slurm-cluster.sh down $dir)"
  mkdir -p "$dir/state" "$dir/spool"
  local started=$SECONDS
  start_munge
  write_config
  export SLURM_CONF=$dir/slurm.conf
  daemon /usr/sbin/slurmctld -f "$SLURM_CONF"
  daemon /usr/sbin/slurmd -f "$SLURM_CONF"
  for _ in $(seq 300); do
    if sinfo -h -o '%t' 2>/dev/null | grep -qx idle; then
      echo "slurm: node $(hostname -s) idle after $((SECONDS - started)) s"
      echo "export SLURM_CONF=$SLURM_CONF"
      return
    fi
    sleep 0.1
  done
  tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  fail "the node did not become idle within 30 s"
}

down() {
  local name pid
  for name in slurmd slurmctld munged; do
    alive "$dir/$name.pid" || continue
    pid=$(cat "$dir/$name.pid")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  done
  rm -f "$dir/munged.pid"
}

case "$command" in
  up) up ;;
  down) down ;;
  *) fail "usage: deploy/slurm-cluster.sh up|down [DIR]" ;;
esac
