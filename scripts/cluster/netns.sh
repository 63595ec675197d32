#!/usr/bin/env bash
# Emulated cluster of Pi-class nodes on one machine: one network namespace per
# rank, each joined by a veth pair to a bridge that lives in a namespace of its
# own (the root namespace is never touched), with a tbf rate limit on both ends
# of every link (this kernel has no netem, so latency is not modelled).
#
#   netns.sh up   PREFIX N [RATE]   e.g. netns.sh up adlc1 4 100mbit
#   netns.sh down PREFIX N
#   netns.sh exec PREFIX K CMD...   run CMD in rank K's namespace with private /etc/hosts, empty resolv.conf
#
# Rank k lives in namespace PREFIX-r$k, device eth0, address 10.77.0.(k+1)/24.
# The addresses exist only inside these namespaces, so nothing can leave the box.
set -euo pipefail
cmd=${1:?usage: netns.sh up|down|exec PREFIX N [RATE]}
prefix=${2:?PREFIX}
sw="$prefix-sw"
statedir="/run/adlcodec-netns/$prefix"

down() {
  local n=$1
  for ((k = 0; k < n; k++)); do ip netns del "$prefix-r$k" 2>/dev/null || true; done
  ip netns del "$sw" 2>/dev/null || true
  rm -rf "$statedir"
}

case $cmd in
up)
  n=${3:?N}; rate=${4:-}
  (( n >= 1 && n <= 200 )) || { echo "netns.sh: N must be 1..200" >&2; exit 2; }
  # If any step fails, leave nothing half-built behind.
  trap 'down '"$n" ERR
  mkdir -p "$statedir"
  { echo "127.0.0.1 localhost"; for ((k = 0; k < n; k++)); do echo "10.77.0.$((k + 1)) $prefix-r$k"; done; } > "$statedir/hosts"
  : > "$statedir/resolv.conf"
  ip netns add "$sw"
  ip -n "$sw" link set lo up
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  for ((k = 0; k < n; k++)); do
    ns="$prefix-r$k"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "p$k" netns "$sw" type veth peer name eth0 netns "$ns"
    ip -n "$sw" link set "p$k" master br0
    ip -n "$sw" link set "p$k" up
    ip -n "$ns" addr add "10.77.0.$((k + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    if [[ -n $rate ]]; then
      # full duplex: the node's uplink (eth0 egress) and the switch port's downlink (p$k egress)
      ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 32kb latency 50ms
      ip netns exec "$sw" tc qdisc add dev "p$k" root tbf rate "$rate" burst 32kb latency 50ms
    fi
  done
  ;;
down)
  down "${3:?N}"
  ;;
exec)
  k=${3:?K}; shift 3
  [[ -f $statedir/hosts ]] || { echo "netns.sh: cluster $prefix is not up" >&2; exit 2; }
  # Own mount namespace: hostname lookups are answered from our hosts file, DNS is off.
  exec ip netns exec "$prefix-r$k" unshare --mount sh -c \
    'mount --bind "$0/hosts" /etc/hosts && mount --bind "$0/resolv.conf" /etc/resolv.conf && exec "$@"' \
    "$statedir" "$@"
  ;;
*)
  echo "netns.sh: unknown command $cmd" >&2; exit 2 ;;
esac
