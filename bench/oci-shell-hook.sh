#!/bin/bash
# The concurrency run's OCI hook for the other two ways of moving devices, so that the same 32
# runc containers compare: the iproute2 shell hook (bench/iproute2-hook.sh) or the CNI
# host-device plugin, driven from createRuntime and poststop as a shell hook would drive them.
#
#   oci-shell-hook.sh iproute2|cni create-runtime|poststop DIR HOSTDEV:CTNAME ...   (OCI state on stdin)
#
# It names the container's netns after the container (ip netns attach), so that poststop, when no
# process holds the netns any more, can still reach the devices inside; poststop removes the name.
# DIR keeps, per container, the iproute2 record or the CNI results that DEL is given back. The
# state is read with sed: runc writes it on one line, and the bench needs no JSON tool.
set -euo pipefail
method=$1 stage=$2 dir=$3
shift 3
state=$(cat)
id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$state")
ns=${id}n
here=$(dirname "$0")
conf() { echo "{\"cniVersion\":\"1.0.0\",\"name\":\"onb\",\"type\":\"host-device\",\"device\":\"$1\"$2}"; }
cni() { CNI_COMMAND=$1 CNI_CONTAINERID=$id CNI_NETNS=/run/netns/$ns CNI_IFNAME=$2 CNI_PATH=/usr/lib/cni /usr/lib/cni/host-device; }

case $stage in
create-runtime)
  ip netns attach "$ns" "$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' <<<"$state")"
  case $method in
  iproute2) "$here/iproute2-hook.sh" attach "$ns" "$dir/$id" - "$@" ;;
  cni)
    for spec in "$@"; do
      IFS=: read -r dev name <<<"$spec"
      conf "$dev" "" | cni ADD "$name" >"$dir/$id.$name"
    done
    ;;
  esac
  ;;
poststop)
  case $method in
  iproute2) "$here/iproute2-hook.sh" detach "$ns" "$dir/$id" ;;
  cni)
    for ((i = $#; i >= 1; i--)); do
      IFS=: read -r dev name <<<"${!i}"
      conf "$dev" ",\"prevResult\":$(cat "$dir/$id.$name")" | cni DEL "$name" >/dev/null
      rm -f "$dir/$id.$name"
    done
    ;;
  esac
  ip netns del "$ns"
  ;;
esac
