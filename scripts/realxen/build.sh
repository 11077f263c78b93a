#!/bin/bash
# Build (or find cached) the images of the real-Xen test machine: Xen 4.17, a Debian 12
# PV Dom0 and the busybox+dropbear initramfs its PV DomUs boot from.
#
# Output is cached by content: the key is a hash of every file beside this script
# plus the Debian mirror and suite, so a second run with the same scripts only
# prints the cached folder. Two stages:
#   base-KEY1/rootfs   debootstrap + apt in a chroot (base.sh; slow, network)
#   images-KEY2/       boot/xen, boot/vmlinuz, boot/initrd.img, dom0.img, SSH keys
# Older keys are removed once a new image is complete. Concurrent runs wait on a lock.
#
# Cache folder: $XENAUDIT_REALXEN_CACHE, else /var/cache/xenaudit-realxen as root,
# else ${XDG_CACHE_HOME:-~/.cache}/xenaudit-realxen.
# The last line on stdout is the images folder; progress goes to stderr.
# usage: build.sh [--key]   (--key prints the content key and exits)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=bookworm
MIRROR=${XENAUDIT_REALXEN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if [ -n "${XENAUDIT_REALXEN_CACHE:-}" ]; then CACHE=$XENAUDIT_REALXEN_CACHE
elif [ "$(id -u)" = 0 ]; then CACHE=/var/cache/xenaudit-realxen
else CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/xenaudit-realxen; fi
T0=$(date +%s)
log() { echo "[realxen build +$(( $(date +%s) - T0 ))s] $*" >&2; }

base_key=$( { echo "$SUITE $MIRROR"; cat "$HERE/base.sh"; } | sha256sum | cut -c1-16)
image_key=$( (echo "$base_key"; cd "$HERE" && for f in $(LC_ALL=C ls); do echo "== $f"; cat "$f"; done) \
  | sha256sum | cut -c1-16)
if [ "${1:-}" = --key ]; then echo "$image_key"; exit 0; fi
IMAGES=$CACHE/images-$image_key
BASE=$CACHE/base-$base_key
if [ -f "$IMAGES/complete" ]; then echo "$IMAGES"; exit 0; fi

[ "$(id -u)" = 0 ] || { echo "realxen build: needs root (debootstrap, chroot)" >&2; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9
if [ -f "$IMAGES/complete" ]; then echo "$IMAGES"; exit 0; fi

# Host tools, only when missing.
need=""
command -v qemu-system-x86_64 >/dev/null || need="$need qemu-system-x86"
command -v qemu-img >/dev/null || need="$need qemu-utils"
command -v debootstrap >/dev/null || need="$need debootstrap"
command -v mkfs.ext4 >/dev/null || need="$need e2fsprogs"
command -v cpio >/dev/null || need="$need cpio"
command -v ssh-keygen >/dev/null || need="$need openssh-client"
command -v gcc >/dev/null || need="$need gcc libc6-dev"
command -v xz >/dev/null || need="$need xz-utils"
command -v zstd >/dev/null || need="$need zstd"
if [ -n "$need" ]; then
  log "installing host packages:$need"
  apt-get update -qq >&2
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2
fi

if [ ! -f "$BASE/complete" ]; then
  log "base root directory (debootstrap $SUITE from $MIRROR, packages in a chroot)"
  rm -rf "$BASE" "$BASE.tmp"
  mkdir -p "$BASE.tmp"
  "$HERE/base.sh" "$BASE.tmp/rootfs" "$MIRROR" "$SUITE" "$BASE.tmp"
  touch "$BASE.tmp/complete"
  mv "$BASE.tmp" "$BASE"
fi

W=$IMAGES.tmp
rm -rf "$W"
mkdir -p "$W/boot"
log "copying the base root directory"
cp -a "$BASE/rootfs" "$W/rootfs"
ROOT=$W/rootfs
KVER=$(ls "$ROOT/lib/modules" | sort -V | tail -1)

# Two keys: the host logs into Dom0 with one; Dom0 (and xenaudit in it) into the
# DomUs with the other.
ssh-keygen -q -t ed25519 -N '' -C realxen-host -f "$W/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C realxen-dom0 -f "$W/dom0_ed25519"

log "configuring Dom0 (kernel $KVER)"
"$HERE/configure-dom0.sh" "$ROOT" "$W" "$KVER"
log "building DomU initramfs"
"$HERE/mk-domu-initrd.sh" "$ROOT" "$W" "$KVER" "$ROOT/var/lib/realxen/domu-initrd.img"
log "building Dom0 initramfs"
"$HERE/mk-dom0-initrd.sh" "$ROOT" "$W" "$KVER" "$W/boot/initrd.img"

# QEMU's multiboot loader needs Xen as an uncompressed ELF.
zcat "$ROOT"/boot/xen-4.17-amd64.gz > "$W/boot/xen"
cp "$ROOT/boot/vmlinuz-$KVER" "$W/boot/vmlinuz"
echo "$KVER" > "$W/boot/KVER"
cp "$ROOT/etc/ssh/ssh_host_ed25519_key.pub" "$W/dom0_host_ed25519.pub"
chroot "$ROOT" dpkg-query -W > "$W/packages.txt"

log "making dom0.img"
mkfs.ext4 -q -F -L dom0root -d "$ROOT" "$W/dom0.img" 3G >&2
rm -rf "$ROOT" "$W/work"
echo "$image_key" > "$W/complete"
mv "$W" "$IMAGES"

# Only the newest key stays (the images are ~1 GB each).
for old in "$CACHE"/images-* "$CACHE"/base-*; do
  case "$old" in "$IMAGES"|"$BASE") ;; *) rm -rf "$old" ;; esac
done
log "done: $IMAGES"
echo "$IMAGES"
