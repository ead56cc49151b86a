#!/usr/bin/env bash
# make demo: oci-netdev moves a host NIC into a runc container as eth1, with its MTU and addresses,
# and puts it back when the container exits.
# The "host" is a throwaway netns (runc runs under nsenter --net, which keeps the mount namespace,
# so the hook's netns pin stays visible), and the NIC is one end of a veth pair made for the demo:
# no real device is touched. Needs root, runc, busybox-static and `make build`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
oci_netdev=$repo/bin/oci-netdev
id=ondt-demo-$$                      # the tests' name family, so the leak check would see leftovers
simhost=$id
work=/run/oci-netdev-demo-$$
bundle=$work/bundle
state=$work/state
runc_root=$work/runc

in_host() { nsenter --net="/run/netns/$simhost" -- "$@"; }
step() { printf '\n== %s\n' "$*"; }

cleanup() {
  set +e
  [ -d "$runc_root" ] && in_host runc --root "$runc_root" delete --force "$id" 2>/dev/null
  # Pins the hook left behind if something failed; newest first.
  awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | tac | xargs -r -n1 umount --lazy
  rm -rf "$work"
  ip netns del "$simhost" 2>/dev/null
}
trap cleanup EXIT

# What oci-netdev promises to restore: name, flags (up/down), MAC, MTU and global addresses.
fingerprint() {
  ip -n "$simhost" -br link show dev demo0 | awk '{ print $1, $3, $4 }'
  ip -n "$simhost" -o link show dev demo0 | grep -o 'mtu [0-9]*'
  ip -n "$simhost" -o addr show dev demo0 scope global | awk '{ print $3, $4, $5, $6 }'
}

step "Simulated host: netns $simhost, where demo0 (a veth end) stands in for a NIC"
ip netns add "$simhost"
ip -n "$simhost" link add demo0 mtu 1400 type veth peer name demo0-peer
ip -n "$simhost" link set demo0 up
ip -n "$simhost" link set demo0-peer up
ip -n "$simhost" addr add 192.0.2.10/24 broadcast + dev demo0
ip -n "$simhost" addr add 2001:db8::10/64 dev demo0
for _ in $(seq 30); do # let IPv6 duplicate address detection finish, for a stable picture
  [ -z "$(ip -n "$simhost" -6 addr show dev demo0 tentative)" ] && break
  sleep 0.1
done
ip -n "$simhost" addr show dev demo0
before=$(fingerprint)

step "Bundle $bundle: busybox, declaring \"linux\": {\"netDevices\": {\"demo0\": {\"name\": \"eth1\"}}}"
mkdir -p "$bundle/rootfs/bin" "$state"
cp /bin/busybox "$bundle/rootfs/bin/"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
runc spec --bundle "$bundle"
node -e '
  const fs = require("fs"), file = process.argv[1], config = JSON.parse(fs.readFileSync(file, "utf8"));
  config.process.terminal = false;
  config.process.args = ["sh", "-c", "ip addr show eth1 && ip link show eth1"];
  config.linux.netDevices = { demo0: { name: "eth1" } };
  fs.writeFileSync(file, JSON.stringify(config, null, 2) + "\n");
' "$bundle/config.json"
"$oci_netdev" --state-dir "$state" inject "$bundle"

step "runc run, in the simulated host; the container prints eth1"
in_host runc --root "$runc_root" run --bundle "$bundle" "$id" </dev/null

step "Back on the simulated host after the container exited"
ip -n "$simhost" addr show dev demo0
if [ "$before" = "$(fingerprint)" ]; then
  echo "demo0 is back with its name, state, MAC, MTU and addresses"
else
  echo "demo0 is not as it was:"
  diff <(echo "$before") <(fingerprint) || true
  exit 1
fi
