#!/usr/bin/env bash
# Idempotent machine set-up so runc 1.1.5, crun 1.8.1 and podman 4.3.1 (on crun) run busybox
# containers as root on the test machines (Debian 12, hybrid cgroup v1 with a tmpfs at
# /sys/fs/cgroup). runc needs nothing.
set -euo pipefail

# crun refuses a hybrid layout whose cgroup v2 hierarchy still holds controllers ("cgroups in
# hybrid mode not supported, drop all controllers from cgroupv2"). Here that is hugetlb alone:
# mounting it as a v1 hierarchy takes it out of v2. podman runs crun, so it needs this too.
if [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] && ! mountpoint -q /sys/fs/cgroup/hugetlb &&
  grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
  mkdir -p /sys/fs/cgroup/hugetlb
  mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
  echo "setup-runtimes: mounted the hugetlb cgroup v1 hierarchy for crun"
fi

# Other findings that need no set-up, kept here for whoever debugs a runtime next:
# - crun 1.8.1 refuses config.json with ociVersion >= 1.2.0 ("unknown version specified");
#   test bundles say 1.0.2-dev, as `runc spec` does.
# - podman's --rootfs is a flag without a value: the rootfs dir is the first positional argument,
#   so every option (--ulimit ...) must come before it, or podman takes them as the command.
# - podman needs --ulimit nofile=1024:1024 --ulimit nproc=1024:1024: by default it asks for
#   1048576 open files, above this machine's hard limit, and root lacks CAP_SYS_RESOURCE here.
