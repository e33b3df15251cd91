#!/usr/bin/env bash
# Builds the guest the cgroup tests boot (tests/vm.rs): Debian 12 with
# systemd, Debian's kernel, uidmap and busybox, and a user `tester` with
# subordinate ids and lingering, so a systemd user instance runs at boot
# and delegates a cgroup v2 subtree as on a normal login. At boot the guest
# mounts the second disk and runs its guest.sh, writing to the second serial
# port, then powers off. Run as root; the result is cached in $HUTCH_VM_CACHE.
set -euo pipefail
cache=${HUTCH_VM_CACHE:-/var/cache/hutch-vm}
mirror=${HUTCH_VM_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
stamp=$(sha256sum "$here/build-guest.sh" | cut -c1-16)
[ -f "$cache/guest.img" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ] && exit 0

mkdir -p "$cache"
base=$cache/base
if [ ! -x "$base/usr/bin/busctl" ]; then
  rm -rf "$base.new"
  debootstrap --variant=minbase \
    --include=systemd-sysv,dbus,dbus-user-session,libpam-systemd,linux-image-amd64,uidmap,busybox-static,procps \
    bookworm "$base.new" "$mirror" > "$cache/debootstrap.log" 2>&1 \
    || { echo "build-guest: debootstrap failed, see $cache/debootstrap.log" >&2; exit 1; }
  mv "$base.new" "$base"
fi

echo hutchvm > "$base/etc/hostname"
printf '/dev/vda / ext4 rw,relatime 0 1\n' > "$base/etc/fstab"
chroot "$base" id -u tester >/dev/null 2>&1 || chroot "$base" useradd --create-home --uid 1001 --shell /bin/sh tester
echo "tester:100000:65536" > "$base/etc/subuid"
echo "tester:100000:65536" > "$base/etc/subgid"
mkdir -p "$base/var/lib/systemd/linger" && touch "$base/var/lib/systemd/linger/tester"
# Nothing waits for a network or a login prompt on the console.
ln -sf /dev/null "$base/etc/systemd/system/getty@tty1.service"
ln -sf /dev/null "$base/etc/systemd/system/serial-getty@ttyS0.service"
cat > "$base/etc/systemd/system/hutch-vm-test.service" <<'UNIT'
[Unit]
Description=hutch's cgroup tests
After=multi-user.target user@1001.service
Wants=user@1001.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /mnt/hutch && mount -o ro /dev/vdb /mnt/hutch && sh /mnt/hutch/guest.sh > /dev/ttyS1 2>&1; echo "@@ done" > /dev/ttyS1'
ExecStartPost=/bin/systemctl poweroff --no-block
TimeoutStartSec=900

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$base/etc/systemd/system/multi-user.target.wants"
ln -sf ../hutch-vm-test.service "$base/etc/systemd/system/multi-user.target.wants/hutch-vm-test.service"

cp "$base"/boot/vmlinuz-* "$cache/vmlinuz"
cp "$base"/boot/initrd.img-* "$cache/initrd.img"
rm -f "$cache/guest.img.new"
mke2fs -q -t ext4 -L hutchvm -d "$base" "$cache/guest.img.new" 2G
mv "$cache/guest.img.new" "$cache/guest.img"
chmod 0644 "$cache/guest.img" "$cache/vmlinuz" "$cache/initrd.img"
echo "$stamp" > "$cache/stamp"
