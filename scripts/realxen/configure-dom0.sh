#!/bin/bash
# Configure the Dom0 root directory: hosts, SSH keys, the xen daemons' settings,
# one cfg per DomU in fleet.tsv, the lean init and the vif hotplug script, and a
# venv for xenaudit (the test installs the wheel into it over SSH).
# usage: configure-dom0.sh ROOTDIR WORKDIR KVER
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$1; W=$2; KVER=$3

echo xen-dom0 > "$ROOT/etc/hostname"
{
  printf '127.0.0.1 localhost\n127.0.1.1 xen-dom0\n'
  grep -v '^#' "$HERE/fleet.tsv" | awk -F'\t' '{print $2, $1}'
} > "$ROOT/etc/hosts"
echo 'LABEL=dom0root / ext4 defaults,noatime 0 1' > "$ROOT/etc/fstab"
chroot "$ROOT" sh -c 'echo root:xen | chpasswd'   # serial console only; sshd is key-only

# Fresh host keys for this image (the base stage's are shared by every build).
rm -f "$ROOT"/etc/ssh/ssh_host_*
chroot "$ROOT" ssh-keygen -q -A
install -d -m700 "$ROOT/root/.ssh"
install -m600 "$W/host_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"
install -m600 "$W/dom0_ed25519" "$ROOT/root/.ssh/id_ed25519"
install -m644 "$W/dom0_ed25519.pub" "$ROOT/root/.ssh/id_ed25519.pub"
# Dom0 -> DomU logins check host keys against the file the tests fill from the
# DomUs' consoles (the same one xenaudit's inventory names).
{
  printf 'Host %s\n' "$(grep -v '^#' "$HERE/fleet.tsv" | cut -f1 | tr '\n' ' ')"
  printf '  User root\n  UserKnownHostsFile /etc/xenaudit/known_hosts\n'
  printf '  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 30\n  LogLevel ERROR\n'
} > "$ROOT/root/.ssh/config"
chmod 600 "$ROOT/root/.ssh/config"
cat > "$ROOT/etc/ssh/sshd_config.d/realxen.conf" <<'CONF'
UseDNS no
PasswordAuthentication no
CONF

# DomU console logs: the DomUs print their SSH host key there, out of band.
sed -i '/^XENCONSOLED_ARGS=/d' "$ROOT/etc/default/xen"
echo 'XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console --timestamp=all"' >> "$ROOT/etc/default/xen"
install -m755 "$HERE/vif-realxen" "$ROOT/etc/xen/scripts/vif-realxen"
install -m755 "$HERE/realxen-init" "$ROOT/usr/local/sbin/realxen-init"
install -m755 "$HERE/udpflood.py" "$ROOT/usr/local/bin/udpflood"
mkdir -p "$ROOT/var/log/xen/console" "$ROOT/var/lib/realxen/lab" "$ROOT/etc/xenaudit"

: > "$ROOT/etc/xen/auto.rx"
grep -v '^#' "$HERE/fleet.tsv" | while IFS=$'\t' read -r name ip mem maxmem start role; do
  mac=$(printf '00:16:3e:77:00:%02x' "${ip##*.}")
  dir=/etc/xen
  [ "$start" = lab ] && dir=/var/lib/realxen/lab
  cat > "$ROOT$dir/$name.cfg" <<CFG
# $name: $role
name    = "$name"
type    = "pv"
kernel  = "/boot/vmlinuz-$KVER"
ramdisk = "/var/lib/realxen/domu-initrd.img"
extra   = "console=hvc0 quiet mitigations=off rx_name=$name rx_ip=$ip/24"
memory  = $mem
maxmem  = $maxmem
vcpus   = 1
vif     = [ 'mac=$mac,bridge=xenbr0,script=vif-realxen' ]
on_crash = "preserve"
CFG
  if [ "$start" = boot ]; then echo "$dir/$name.cfg" >> "$ROOT/etc/xen/auto.rx"; fi
done

# xenaudit's venv, made natively here rather than under emulation at test time.
chroot "$ROOT" python3 -m venv /opt/xenaudit
echo "configured Dom0 (kernel $KVER)" >&2
