#!/bin/bash
# The DomUs' initramfs: static busybox, dropbear (with its libraries, taken from the
# Dom0 root directory), the PV network and block frontends, and two static load
# generators (memhog, rxhog). Each boot makes a fresh SSH host key and prints its
# public half on the console ("rx-hostkey: ..."), which xenconsoled logs in Dom0:
# the tests build xenaudit's known_hosts from there, out of band.
# usage: mk-domu-initrd.sh ROOTDIR WORKDIR KVER OUT.img
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$1; WD=$2; KVER=$3; OUT=$4
W=$WD/domu-initrd
rm -rf "$W"; mkdir -p "$W"/{bin,sbin,etc,dev,proc,sys,tmp,run,root/.ssh,lib/modules,var/log,etc/dropbear,usr/bin,usr/sbin}

cp "$ROOT/bin/busybox" "$W/bin/busybox"
for a in $("$W/bin/busybox" --list); do [ -e "$W/bin/$a" ] || ln -s busybox "$W/bin/$a"; done

for b in /usr/sbin/dropbear /usr/bin/dropbearkey; do
  cp "$ROOT$b" "$W$b"
  for l in $(chroot "$ROOT" ldd "$b" | grep -o '/[^ ]*'); do
    mkdir -p "$W$(dirname "$l")"; cp -L "$ROOT$l" "$W$l"
  done
done
[ -e "$W/lib64" ] || ln -s lib "$W/lib64"

for m in xen-netfront xen-blkfront; do
  f=$(find "$ROOT/lib/modules/$KVER" -name "$m.ko*" | head -1)
  [ -n "$f" ] || continue
  case "$f" in
    *.xz) xz -dc "$f" > "$W/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" > "$W/lib/modules/$m.ko" ;;
    *) cp "$f" "$W/lib/modules/$m.ko" ;;
  esac
done

for tool in memhog rxhog; do
  gcc -O2 -static -o "$W/bin/$tool" "$HERE/$tool.c"
done

# The kernel runs /sbin/poweroff on `xl shutdown` (orderly_poweroff).
printf '#!/bin/sh\nsync\nexec busybox poweroff -f\n' > "$W/sbin/poweroff"
printf '#!/bin/sh\nsync\nexec busybox reboot -f\n' > "$W/sbin/reboot"
chmod +x "$W/sbin/poweroff" "$W/sbin/reboot"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$W/etc/passwd"
printf 'root:*:19000:0:99999:7:::\n' > "$W/etc/shadow"
printf 'root:x:0:\n' > "$W/etc/group"
echo /bin/sh > "$W/etc/shells"
install -m600 "$WD/dom0_ed25519.pub" "$W/root/.ssh/authorized_keys"
chmod 700 "$W/root" "$W/root/.ssh"

cat > "$W/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
name=$(arg rx_name)
hostname "${name:-domu}"
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done
ip link set lo up
ip=$(arg rx_ip)
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
if [ -n "$ip" ]; then ip addr add "$ip" dev eth0; ip link set eth0 up; fi
K=/etc/dropbear/dropbear_ed25519_host_key
dropbearkey -t ed25519 -f "$K" >/dev/null 2>&1
echo "rx-hostkey: $(dropbearkey -y -f "$K" | grep '^ssh-ed25519' | cut -d' ' -f1,2)" > /dev/hvc0
dropbear -r "$K" -E -p 22 2>/var/log/dropbear.log
# Keep the SSH path alive under memory pressure (the load generators ask to be killed first).
for p in $(pidof dropbear); do echo -1000 > /proc/$p/oom_score_adj; done
echo "rx-ready: $(hostname) ip=$ip $(grep MemTotal /proc/meminfo)" > /dev/hvc0
while :; do setsid -c /bin/sh -l </dev/hvc0 >/dev/hvc0 2>&1; sleep 1; done
INIT
chmod +x "$W/init"
(cd "$W" && find . | cpio -H newc -o --quiet | gzip -1) > "$OUT"
rm -rf "$W"
echo "DomU initramfs: $OUT ($(du -h "$OUT" | cut -f1))" >&2
