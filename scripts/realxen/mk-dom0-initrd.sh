#!/bin/bash
# The Dom0's initramfs: static busybox plus the modules that mount the virtio root
# disk, nothing else (Debian's, with udev coldplug, is slow under emulation).
# usage: mk-dom0-initrd.sh ROOTDIR WORKDIR KVER OUT.img
set -euo pipefail
ROOT=$1; W=$2/dom0-initrd; KVER=$3; OUT=$4
MD=$ROOT/lib/modules/$KVER
rm -rf "$W"; mkdir -p "$W"/{bin,dev,proc,sys,run,newroot,lib/modules}
cp "$ROOT/bin/busybox" "$W/bin/busybox"
for a in $("$W/bin/busybox" --list); do [ -e "$W/bin/$a" ] || ln -s busybox "$W/bin/$a"; done
# No modprobe in here: insmod in the dependency order modules.dep gives.
ORDER=()
add() {
  local p=$1 d
  for d in "${ORDER[@]}"; do [ "$d" = "$p" ] && return; done
  for d in $(grep -E "^$p:" "$MD/modules.dep" | cut -d: -f2); do add "$d"; done
  ORDER+=("$p")
}
for m in virtio_pci virtio_blk crc32c_generic ext4; do
  f=$(grep -oE "^[^:]*/$m\.ko(\.[a-z]+)?:" "$MD/modules.dep" | tr -d :) || true
  [ -n "$f" ] || { echo "module $m not found (built in?)" >&2; continue; }
  add "$f"
done
n=0
for f in "${ORDER[@]}"; do
  n=$((n+1)); m=$(basename "$f"); m=${m%%.ko*}
  dst=$(printf '%s/lib/modules/%02d-%s.ko' "$W" "$n" "$m")
  case "$f" in *.xz) xz -dc "$MD/$f" > "$dst";; *.zst) zstd -qdc "$MD/$f" > "$dst";; *) cp "$MD/$f" "$dst";; esac
done
cat > "$W/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in /lib/modules/*.ko; do insmod $m 2>/dev/null; done
root=/dev/vda; init=/sbin/init; rw=ro
for a in $(cat /proc/cmdline); do
  case $a in root=*) root=${a#root=};; init=*) init=${a#init=};; rw) rw=rw;; esac
done
for i in $(seq 1 600); do [ -b "$root" ] && break; sleep 0.1; done
mount -t ext4 -o $rw "$root" /newroot || { echo "cannot mount $root"; exec sh; }
mount -t tmpfs -o mode=755 tmpfs /newroot/run
mount --move /dev /newroot/dev; mount --move /sys /newroot/sys; mount --move /proc /newroot/proc
exec switch_root /newroot "$init"
INIT
chmod +x "$W/init"
(cd "$W" && find . | cpio -H newc -o --quiet | gzip -1) > "$OUT"
rm -rf "$W"
echo "Dom0 initramfs: $OUT ($(du -h "$OUT" | cut -f1), $n modules)" >&2
