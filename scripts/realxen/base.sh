#!/bin/bash
# Stage 1 of the real-Xen images: a Debian 12 root directory with Xen 4.17, its
# toolstack, a kernel, OpenSSH, dropbear and Python. Slow (debootstrap plus apt in a
# chroot, 2-3 minutes) and network-bound, so build.sh caches it under its own key.
# usage: base.sh ROOTDIR MIRROR SUITE LOGDIR
set -euo pipefail
ROOT=$1; MIRROR=$2; SUITE=$3; LOGS=$4

debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOT" "$MIRROR" \
  > "$LOGS/debootstrap.log" 2>&1 || { tail -30 "$LOGS/debootstrap.log" >&2; exit 1; }

cleanup() {
  for m in dev/pts dev sys proc; do
    if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m"; fi
  done
}
trap cleanup EXIT
mount -t proc proc "$ROOT/proc"
mount -t sysfs sys "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"

# No daemon may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod +x "$ROOT/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
chroot "$ROOT" apt-get update -q > "$LOGS/chroot-apt.log" 2>&1
# No initramfs-tools: the Dom0 boots from a tiny busybox initramfs (mk-dom0-initrd.sh),
# Debian's own takes minutes of udev coldplug under software emulation.
DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y --no-install-recommends \
  linux-image-amd64 \
  xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils \
  openssh-server openssh-client dropbear-bin busybox-static \
  python3 python3-venv iproute2 kmod procps iputils-ping \
  >> "$LOGS/chroot-apt.log" 2>&1 || { tail -40 "$LOGS/chroot-apt.log" >&2; exit 1; }
chroot "$ROOT" apt-get clean
rm -f "$ROOT/usr/sbin/policy-rc.d"
rm -rf "$ROOT/var/lib/apt/lists/"*
: > "$ROOT/etc/resolv.conf"
