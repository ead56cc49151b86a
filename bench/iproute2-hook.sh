#!/bin/bash
# The iproute2 baseline: what a shell hook does with one `ip` process per command, as runtimes'
# users write them. Runs in the host network namespace.
#
#   iproute2-hook.sh attach CTNS STATEFILE [MTU] HOSTDEV:CTNAME[:MAC] ...   move into CTNS
#   iproute2-hook.sh detach CTNS STATEFILE                                   move back, restore
#   iproute2-hook.sh create-veth CTNS HOSTEND:CTNAME:CIDR ...
#   iproute2-hook.sh create-macvlan CTNS MASTER NAME:CIDR ...
#   iproute2-hook.sh delete CTNS NAME ...
#
# attach records each device's addresses, MTU, MAC and up state in STATEFILE, moves and renames
# it in one command, copies its global addresses, applies MTU/MAC when given, and sets it up.
# detach puts MTU and MAC back inside the container, moves the device back under its own name,
# re-adds its addresses and restores its up state.
set -euo pipefail
cmd=$1 ct=$2
shift 2

case $cmd in
attach)
  state=$1 mtu=$2
  shift 2
  : >"$state"
  for spec in "$@"; do
    IFS=: read -r dev name mac <<<"$spec"
    link=$(ip -o link show dev "$dev")
    omtu=$(sed -n 's/.* mtu \([0-9]*\) .*/\1/p' <<<"$link")
    omac=$(sed -n 's/.* link\/ether \([0-9a-f:]*\) .*/\1/p' <<<"$link")
    up=0
    [[ $link =~ [\<,]UP[,\>] ]] && up=1
    addrs=$(ip -o addr show dev "$dev" scope global | awk '{printf "%s/%s ", $3, $4}')
    echo "$dev $name $omtu $omac $up $addrs" >>"$state"
    ip link set dev "$dev" netns "$ct" name "$name"
    for a in $addrs; do
      fam=${a%%/*}
      ip -n "$ct" addr add "${a#*/}" dev "$name" $([[ $fam == inet6 ]] && echo nodad)
    done
    if [[ $mtu != - ]]; then
      ip -n "$ct" link set dev "$name" mtu "$mtu" address "$mac" up
    else
      ip -n "$ct" link set dev "$name" up
    fi
  done
  ;;
detach)
  state=$1
  tac "$state" | while read -r dev name omtu omac up addrs; do
    ip -n "$ct" link set dev "$name" down mtu "$omtu" address "$omac"
    ip -n "$ct" link set dev "$name" netns $$ name "$dev"
    for a in $addrs; do
      fam=${a%%/*}
      ip addr add "${a#*/}" dev "$dev" $([[ $fam == inet6 ]] && echo nodad)
    done
    [[ $up == 1 ]] && ip link set dev "$dev" up
  done
  rm -f "$state"
  ;;
create-veth)
  for spec in "$@"; do
    IFS=: read -r host name cidr <<<"$spec"
    ip link add "$host" up type veth peer name "$name" netns "$ct"
    ip -n "$ct" addr add "$cidr" dev "$name"
    ip -n "$ct" link set dev "$name" up
  done
  ;;
create-macvlan)
  master=$1
  shift
  for spec in "$@"; do
    IFS=: read -r name cidr <<<"$spec"
    ip link add "$name" link "$master" netns "$ct" type macvlan mode bridge
    ip -n "$ct" addr add "$cidr" dev "$name"
    ip -n "$ct" link set dev "$name" up
  done
  ;;
delete)
  for name in "$@"; do ip -n "$ct" link del dev "$name"; done
  ;;
*)
  echo "iproute2-hook.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
