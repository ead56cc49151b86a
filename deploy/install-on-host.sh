#!/bin/sh
# The DaemonSet's init container (kubernetes/oci-netdev.yaml): puts this image's oci-netdev onto the
# node, whose root is mounted at /host: the installed tree in /opt/oci-netdev (the single executable
# with koffi's module beside it, which the hooks.d file names), a copy of the executable as the CNI
# plugin in /opt/cni/bin (a file, as CNI plugins are shipped, with koffi's module beside it), the
# hooks.d file for CRI-O and podman, and the policy from /policy (a ConfigMap) when there is one.
# The node needs no Node.js. Running it again replaces them; nothing is downloaded.
set -eu
host=${HOST_ROOT:-/host}
prefix=/opt/oci-netdev
cni=/opt/cni/bin
koffi=oci-netdev-koffi.node
mkdir -p "$host$cni" "$host/etc/containers/oci/hooks.d" "$host/etc/oci-netdev"
# A whole new tree, swapped in, so a hook that starts meanwhile finds the old tree or the new one.
rm -rf "$host$prefix.new"
cp -a "$prefix" "$host$prefix.new"
rm -rf "$host$prefix"
mv "$host$prefix.new" "$host$prefix"
# Each file renamed into place: a plugin started meanwhile runs the old file or the new one. koffi's
# module first, so a new executable never starts beside an old module.
for f in "$koffi" oci-netdev; do
  cp "$prefix/bin/$f" "$host$cni/$f.new"
  mv "$host$cni/$f.new" "$host$cni/$f"
done
cp "$prefix/share/containers/oci/hooks.d/oci-netdev.json" "$host/etc/containers/oci/hooks.d/oci-netdev.json.new"
mv "$host/etc/containers/oci/hooks.d/oci-netdev.json.new" "$host/etc/containers/oci/hooks.d/oci-netdev.json"
if [ -f /policy/policy.json ]; then
  cp /policy/policy.json "$host/etc/oci-netdev/policy.json.new"
  chmod 0644 "$host/etc/oci-netdev/policy.json.new"
  mv "$host/etc/oci-netdev/policy.json.new" "$host/etc/oci-netdev/policy.json"
fi
echo "oci-netdev installed on the node: $prefix/bin/oci-netdev, $cni/oci-netdev, /etc/containers/oci/hooks.d/oci-netdev.json"
