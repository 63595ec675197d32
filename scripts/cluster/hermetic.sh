#!/usr/bin/env bash
# hermetic.sh [--rate RATE] -- CMD...
# Run CMD in a private network namespace that has only `lo` (the host's lo is not
# touched), so multi-rank tests cannot send a packet anywhere else; name lookups
# come from a private hosts file and DNS is off.  With --rate the private lo is
# shaped with tbf (it then limits the SUM of all ranks' traffic).
# Everything disappears with CMD.  Needs root (unshare --net --mount).
set -euo pipefail
rate=""
if [[ ${1:-} == --rate ]]; then rate=${2:?RATE}; shift 2; fi
[[ ${1:-} == -- ]] && shift
(( $# )) || { echo "usage: hermetic.sh [--rate RATE] -- CMD..." >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '127.0.0.1 localhost %s\n::1 localhost6\n' "$(hostname)" > "$dir/hosts"
: > "$dir/resolv.conf"
HERMETIC_DIR=$dir HERMETIC_RATE=$rate unshare --net --mount bash -c '
  set -e
  mount --bind "$HERMETIC_DIR/hosts" /etc/hosts
  mount --bind "$HERMETIC_DIR/resolv.conf" /etc/resolv.conf
  ip link set lo up
  [[ -z $HERMETIC_RATE ]] || tc qdisc add dev lo root tbf rate "$HERMETIC_RATE" burst 512kb latency 50ms
  export GLOO_SOCKET_IFNAME=lo OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  exec "$@"' _ "$@"
