#!/bin/sh
# The DaemonSet's init container (kubernetes/oci-netdev.yaml): puts this image's oci-netdev onto the
# node, whose root is mounted at /host: the installed tree in /opt/oci-netdev (what the hooks.d file
# and the CNI plugin link name), the plugin link in /opt/cni/bin, the hooks.d file for CRI-O and
# podman, and the policy from /policy (a ConfigMap) when there is one. Running it again replaces
# them; nothing is downloaded.
set -eu
host=${HOST_ROOT:-/host}
prefix=/opt/oci-netdev
mkdir -p "$host/opt/cni/bin" "$host/etc/containers/oci/hooks.d" "$host/etc/oci-netdev"
# A whole new tree, swapped in, so a hook that starts meanwhile finds the old tree or the new one.
rm -rf "$host$prefix.new"
cp -a "$prefix" "$host$prefix.new"
rm -rf "$host$prefix"
mv "$host$prefix.new" "$host$prefix"
ln -sfn "$prefix/lib/oci-netdev/bin/oci-netdev" "$host/opt/cni/bin/oci-netdev"
cp "$prefix/share/containers/oci/hooks.d/oci-netdev.json" "$host/etc/containers/oci/hooks.d/oci-netdev.json.new"
mv "$host/etc/containers/oci/hooks.d/oci-netdev.json.new" "$host/etc/containers/oci/hooks.d/oci-netdev.json"
if [ -f /policy/policy.json ]; then
  cp /policy/policy.json "$host/etc/oci-netdev/policy.json.new"
  chmod 0644 "$host/etc/oci-netdev/policy.json.new"
  mv "$host/etc/oci-netdev/policy.json.new" "$host/etc/oci-netdev/policy.json"
fi
echo "oci-netdev installed on the node: $prefix, /opt/cni/bin/oci-netdev, /etc/containers/oci/hooks.d/oci-netdev.json"
