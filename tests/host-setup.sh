#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine for hutch, as root: system packages, the two
# unprivileged test users, and device nodes usable as distros ship them.
# Idempotent: safe to run again.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "host-setup: run as root (it installs packages and creates users)" >&2; exit 1; }

# hutch's helpers; the OCI registry the image tests push to; the peers the
# tests and benchmarks compare with (skopeo, bubblewrap,
# crun, podman with runc, fuse-overlayfs); build and test tools; qemu and
# debootstrap for the systemd guest of the cgroup tests (tests/vm.rs).
PACKAGES=(uidmap fuse3 slirp4netns passt busybox-static
          docker-registry skopeo openssl
          bubblewrap crun podman runc fuse-overlayfs iperf3
          iproute2 procps python3 hyperfine gcc libc6-dev pkg-config libseccomp-dev
          qemu-system-x86 debootstrap e2fsprogs binutils strace)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "host-setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# hutch-sub has subordinate id ranges; hutch-nosub has none (the single-id fallback).
for u in hutch-sub hutch-nosub; do
  id -u "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$u"
done
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  sed -i '/^hutch-nosub:/d' "$f"
  grep -q '^hutch-sub:' "$f" || echo "hutch-sub:200000:65536" >> "$f"
done

# As distros ship them: any user may open the FUSE and TUN devices.
chmod 0666 /dev/fuse
[ -e /dev/net/tun ] && chmod 0666 /dev/net/tun
# Unprivileged user namespaces must be allowed (Debian 12 allows them by default).
if [ -e /proc/sys/kernel/unprivileged_userns_clone ]; then sysctl -qw kernel.unprivileged_userns_clone=1; fi
if [ "$(cat /proc/sys/user/max_user_namespaces)" = 0 ]; then sysctl -qw user.max_user_namespaces=15000; fi
# The systemd guest tests/vm.rs boots (built once, then cached).
bash "$(dirname "$0")/vm/build-guest.sh"
echo "host-setup: ready (users hutch-sub with subordinate ids, hutch-nosub without)"
