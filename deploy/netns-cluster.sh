#!/usr/bin/env bash
# A small cluster on one machine, for testing aetrain across "hosts": network namespaces
# joined by a bridge, one veth per host, addresses only inside those namespaces. OpenMPI
# starts its remote daemons through plm_rsh_agent = a wrapper around `ip netns exec`
# (instead of ssh), and the ranks talk over TCP only (--mca btl tcp,self).
#
#   deploy/netns-cluster.sh up [HOSTS] [SLOTS]  make hosts 1..HOSTS (default 2 hosts × 2 slots), write the hostfile
#   deploy/netns-cluster.sh mpirun ARGS...      mpirun ARGS on host 1, across every host, over TCP
#   deploy/netns-cluster.sh cut HOST            take HOST's link down (a cable pulled)
#   deploy/netns-cluster.sh heal HOST           bring it back as after a reboot: link up, its processes
#                                               (the cut-off job's leftovers) ended, neighbour caches flushed
#   deploy/netns-cluster.sh pids HOST           the aetrain processes running on HOST
#   deploy/netns-cluster.sh down                remove everything; safe to call any time
#   deploy/netns-cluster.sh run ARGS...         up, mpirun ARGS, down (also when mpirun fails)
#
# mpirun's daemons probe each other every few seconds (oob_tcp_keepalive_*), so a host cut
# off ends the job in about 10 s instead of OpenMPI's default of several minutes.
#
# Cores. Real hosts each have their own cores; these share the machine's. By default each host
# gets its own share (AET_NETNS_CORES=split: host i of H runs on cores i-1, i-1+H, ... of this
# machine, or on core (i-1) mod C when there are more hosts than cores C), so that a rank sees the
# cores its host has. AET_NETNS_CORES=shared lets every host use every core.
# mpirun runs with --bind-to none --mca mpi_yield_when_idle 1: each host's daemon would bind its
# first rank to core 0, so ranks of different hosts shared one core, and Open MPI, which spins
# while it waits unless it knows a node is oversubscribed, then let each message wait for a
# scheduler tick (4 ms at HZ = 250). Yielding costs little here and is what oversubscribed
# hosts (more ranks than the host's cores) need.
#
# Needs root, iproute2 and util-linux (unshare). Names start with $AET_NETNS_PREFIX (default aet); the hosts get
# $AET_NETNS_SUBNET.1, .2, ... (default 10.77.0.0/24, which exists only inside the namespaces).
set -euo pipefail

PREFIX=${AET_NETNS_PREFIX:-aet}
SUBNET=${AET_NETNS_SUBNET:-10.77.0}
STATE=${AET_NETNS_STATE:-/tmp/$PREFIX-netns-cluster}
BRIDGE=${PREFIX}br0
CORES=${AET_NETNS_CORES:-split}

ns() { echo "${PREFIX}-h$1"; }

# The cores host $1 of $2 runs on, as a taskset list.
host_cores() {
  local i=$1 hosts=$2 cpus c list=""
  cpus=$(nproc)
  if [ "$CORES" = shared ]; then echo "0-$((cpus - 1))"; return; fi
  if [ "$hosts" -gt "$cpus" ]; then echo $(( (i - 1) % cpus )); return; fi
  for ((c = i - 1; c < cpus; c += hosts)); do list="$list${list:+,}$c"; done
  echo "$list"
}

up() {
  local hosts=${1:-2} slots=${2:-2} i
  down >/dev/null 2>&1 || true
  mkdir -p "$STATE"
  ip link add "$BRIDGE" type bridge
  ip link set "$BRIDGE" up
  : > "$STATE/hostfile"
  for i in $(seq 1 "$hosts"); do
    ip netns add "$(ns "$i")"
    ip link add "${PREFIX}v$i" type veth peer name "${PREFIX}p$i"
    ip link set "${PREFIX}p$i" netns "$(ns "$i")"
    ip link set "${PREFIX}v$i" master "$BRIDGE" up
    ip netns exec "$(ns "$i")" ip link set lo up
    ip netns exec "$(ns "$i")" ip link set "${PREFIX}p$i" name eth0
    ip netns exec "$(ns "$i")" ip addr add "$SUBNET.$i/24" dev eth0
    ip netns exec "$(ns "$i")" ip link set eth0 up
    echo "$SUBNET.$i slots=$slots" >> "$STATE/hostfile"
    host_cores "$i" "$hosts" > "$STATE/cores.$i"
  done
  echo "$hosts" > "$STATE/hosts"
  # OpenMPI calls the agent as `agent [options] HOST COMMAND...`, COMMAND being a shell line.
  # Each host also gets a hostname of its own (a UTS namespace): OpenMPI tells nodes apart by
  # name, and ranks on "different" hosts with one name confuse its node-local communicators.
  cat > "$STATE/rsh-agent" <<AGENT
#!/bin/sh
while [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
n=\${host##*.}
exec ip netns exec "${PREFIX}-h\$n" taskset -c "\$(cat "$STATE/cores.\$n")" \\
  unshare --uts /bin/sh -c 'hostname "\$0" && exec /bin/sh -c "\$1"' "${PREFIX}-h\$n" "\$*"
AGENT
  chmod +x "$STATE/rsh-agent"
  echo "cluster up: $hosts hosts × $slots slots, hostfile $STATE/hostfile, cores per host: $(cat "$STATE"/cores.* | tr '\n' ' ')"
}

down() {
  local n i
  n=$(cat "$STATE/hosts" 2>/dev/null || echo 8)
  for i in $(seq 1 "$n"); do
    if ip netns pids "$(ns "$i")" >/dev/null 2>&1; then
      ip netns pids "$(ns "$i")" | xargs -r kill -9 2>/dev/null || true
    fi
    ip link del "${PREFIX}v$i" 2>/dev/null || true
    ip netns del "$(ns "$i")" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$STATE"
}

run_mpirun() {
  [ -f "$STATE/hostfile" ] || { echo "netns-cluster: not up (run: $0 up)" >&2; exit 2; }
  local root_env=()
  [ "$(id -u)" = 0 ] && root_env=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
  ip netns exec "$(ns 1)" taskset -c "$(cat "$STATE/cores.1")" unshare --uts /bin/sh -c 'hostname "$0" && exec "$@"' "$(ns 1)" \
    "${root_env[@]}" mpirun --hostfile "$STATE/hostfile" \
    --mca plm_rsh_agent "$STATE/rsh-agent" --bind-to none --mca mpi_yield_when_idle 1 \
    --mca btl tcp,self --mca btl_tcp_if_include "$SUBNET.0/24" --mca oob_tcp_if_include "$SUBNET.0/24" \
    --mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 2 --mca oob_tcp_keepalive_probes 3 \
    "$@"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  mpirun) shift; run_mpirun "$@" ;;
  cut) ip link set "${PREFIX}v$2" down ;;
  heal) ip netns pids "$(ns "$2")" | xargs -r kill -9 2>/dev/null || true
        ip link set "${PREFIX}v$2" up
        n=$(cat "$STATE/hosts")
        for i in $(seq 1 "$n"); do ip netns exec "$(ns "$i")" ip neigh flush all 2>/dev/null || true; done
        sleep 1 ;;
  pids) ip netns pids "$(ns "$2")" | while read -r p; do
          if grep -q aetrain "/proc/$p/cmdline" 2>/dev/null && ! grep -q mpirun "/proc/$p/cmdline"; then echo "$p"; fi
        done ;;
  run) shift; trap down EXIT; up; run_mpirun "$@" ;;
  *) sed -n '2,31p' "$0"; exit 2 ;;
esac
