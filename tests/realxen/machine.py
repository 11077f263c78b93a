"""The real-Xen test machine: Xen 4.17 with a Debian 12 PV Dom0 under QEMU, and its DomUs.

The images come from scripts/realxen/build.sh (cached by content). Each boot runs
on a throw-away qcow2 overlay in a fresh work folder, so every run starts from the
same disk; the host reaches Dom0 only through a forwarded port on 127.0.0.1 (QEMU
user networking with restrict=on: nothing inside can reach out). Host keys are
checked on both hops: Dom0's comes from the image, each DomU prints its freshly
made key on its console, which xenconsoled logs in Dom0.

QEMU runs without KVM (TCG): everything is slow, so every wait here is generous and
every command has a timeout.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.localssh import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "realxen"
BUILD_SCRIPT = SCRIPTS / "build.sh"
FLEET_TSV = SCRIPTS / "fleet.tsv"

#: QEMU guest RAM and Dom0's share of it (MiB): the rest is for the DomUs.
MACHINE_MIB = 2048
DOM0_MIB = 768
#: Where Dom0 keeps what xenaudit needs, as an admin would lay it out.
KNOWN_HOSTS = "/etc/xenaudit/known_hosts"
INVENTORY = "/etc/xenaudit/inventory.toml"
CONSOLE_LOG = "/var/log/xen/console/guest-{name}.log"


class MachineError(RuntimeError):
    """A step on the real-Xen machine failed; the message carries its diagnostics."""


@dataclass(frozen=True)
class Guest:
    name: str
    ip: str
    memory_mib: int
    maxmem_mib: int
    start: str  # "boot", "off" or "lab" (see fleet.tsv)
    role: str

    @property
    def cfg_path(self) -> str:
        if self.start == "lab":
            return f"/var/lib/realxen/lab/{self.name}.cfg"
        return f"/etc/xen/{self.name}.cfg"


def read_fleet() -> dict[str, Guest]:
    fleet: dict[str, Guest] = {}
    for line in FLEET_TSV.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, ip, memory, maxmem, start, role = line.split("\t")
        fleet[name] = Guest(name, ip, int(memory), int(maxmem), start, role)
    return fleet


def build_images(log: Path, timeout_s: float = 1800) -> Path:
    """Run the image build (a no-op on a cache hit); return the images folder."""
    with log.open("wb") as handle:
        done = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=handle,
            stdin=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise MachineError(f"scripts/realxen/build.sh failed (exit {done.returncode}):\n{tail}")
    lines = done.stdout.decode().strip().splitlines()
    images = Path(lines[-1]) if lines else Path()
    if not (images / "complete").is_file():
        raise MachineError(f"build.sh named no complete images folder: {lines[-3:]}")
    return images


class RealXen:
    """One running QEMU with Xen, Dom0 and the fleet's DomUs."""

    def __init__(self, images: Path, workdir: Path) -> None:
        self.images = images
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.serial_log = workdir / "serial.log"
        self.qemu_log = workdir / "qemu.log"
        self.key = workdir / "host_ed25519"
        self.known_hosts = workdir / "known_hosts"
        self.fleet = read_fleet()
        self.timings: dict[str, float] = {}

    # --- QEMU -----------------------------------------------------------------
    def boot(self, timeout_s: float = 900) -> None:
        """Start QEMU and wait until Dom0's sshd answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        key = (self.images / "host_ed25519").read_bytes()
        self.key.write_bytes(key)
        self.key.chmod(0o600)
        overlay = self.workdir / "dom0-overlay.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
             str(self.images / "dom0.img"), str(overlay)],
            check=True, timeout=60,
        )  # fmt: skip
        started = time.monotonic()
        for _attempt in range(5):
            self.port = free_port()
            self._start_qemu(overlay)
            time.sleep(1.5)
            if self.process is not None and self.process.poll() is None:
                break
            # Another process took the port between the probe and QEMU's bind: retry.
            if "forward" not in self.qemu_log.read_text(errors="replace"):
                raise self.error("QEMU exited at once")
        else:
            raise self.error("QEMU could not bind a forwarded port")
        pub = (self.images / "dom0_host_ed25519.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise self.error("QEMU exited during boot")
            probe = self._ssh_argv("true", control=False, connect_timeout=5)
            if subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode == 0:
                self.timings["dom0_ssh_s"] = time.monotonic() - started
                return
            time.sleep(2)
        raise self.error(f"Dom0 sshd did not answer within {timeout_s:.0f} s")

    def _start_qemu(self, overlay: Path) -> None:
        xen_cmdline = (
            f"dom0_mem={DOM0_MIB}M,max:{DOM0_MIB}M dom0_max_vcpus=2 console=com1 "
            "com1=115200,8n1 loglvl=all guest_loglvl=all noreboot bootscrub=0 spec-ctrl=no"
        )
        dom0_cmdline = (
            "console=hvc0 earlyprintk=xen root=/dev/vda rw net.ifnames=0 quiet "
            "mitigations=off init=/usr/local/sbin/realxen-init"
        )
        boot = self.images / "boot"
        # Multiboot: -kernel is Xen, -initrd lists "module cmdline" pairs separated
        # by commas (a comma inside a cmdline is doubled).
        modules = f"{boot / 'vmlinuz'} {dom0_cmdline.replace(',', ',,')},{boot / 'initrd.img'}"
        argv = [
            "qemu-system-x86_64", "-name", "xenaudit-realxen", "-nodefaults",
            "-machine", "pc", "-accel", "tcg,thread=multi", "-cpu", "qemu64",
            "-smp", "2", "-m", str(MACHINE_MIB),
            "-kernel", str(boot / "xen"), "-append", xen_cmdline, "-initrd", modules,
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
            "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:22",
            "-device", "virtio-net-pci,netdev=n0",
            "-chardev", f"file,id=ser0,path={self.serial_log}", "-serial", "chardev:ser0",
            "-display", "none", "-no-reboot",
        ]  # fmt: skip
        with self.qemu_log.open("wb") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        """End QEMU (the overlay is thrown away, so no clean shutdown is needed)."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                ["ssh", "-o", f"ControlPath={self._control_path}", "-O", "exit", "root@127.0.0.1"],
                capture_output=True, timeout=10, check=False,
            )  # fmt: skip
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)

    # --- SSH to Dom0 ----------------------------------------------------------
    @property
    def _control_path(self) -> str:
        return str(self.workdir / "cm")

    def _ssh_argv(
        self, command: str, *, control: bool = True, connect_timeout: int = 30
    ) -> list[str]:
        argv = [
            "ssh", "-p", str(self.port), "-i", str(self.key),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=8",
        ]  # fmt: skip
        if control:
            argv += [
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_path}",
                "-o", "ControlPersist=900",
            ]  # fmt: skip
        return [*argv, "root@127.0.0.1", command]

    def _run_raw(
        self, command: str, timeout_s: float, stdin: bytes | None
    ) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(
                self._ssh_argv(command),
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise self.error(f"Dom0 command timed out after {timeout_s:.0f} s: {command}") from exc

    def _failed(self, command: str, code: int, out: str, err: str) -> MachineError:
        return self.error(
            f"Dom0 command failed (exit {code}): {command}\n"
            f"--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
        )

    def run(
        self,
        command: str,
        *,
        timeout_s: float = 180,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on Dom0 as root."""
        done = self._run_raw(command, timeout_s, stdin)
        result = subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )
        if check and result.returncode != 0:
            raise self._failed(command, result.returncode, result.stdout, result.stderr)
        return result

    def run_bytes(self, command: str, *, timeout_s: float = 180) -> bytes:
        """Run a shell command on Dom0 that must succeed; its stdout as bytes."""
        done = self._run_raw(command, timeout_s, None)
        if done.returncode != 0:
            raise self._failed(
                command, done.returncode, "(binary)", done.stderr.decode("utf-8", "replace")
            )
        return done.stdout

    def put(self, data: bytes, remote: str, mode: str = "0644") -> None:
        """Write `data` to a file on Dom0."""
        quoted = shlex.quote(remote)
        self.run(
            f"mkdir -p $(dirname {quoted}) && cat > {quoted}.new && chmod {mode} {quoted}.new "
            f"&& mv {quoted}.new {quoted}",
            stdin=data,
            timeout_s=300,
        )

    def guest(self, name: str, command: str, *, timeout_s: float = 180, check: bool = True) -> str:
        """Run a command in a DomU over Dom0's bridge (OpenSSH from Dom0, strict host keys)."""
        inner = f"ssh {shlex.quote(name)} {shlex.quote(command)}"
        return self.run(inner, timeout_s=timeout_s, check=check).stdout

    # --- DomUs ----------------------------------------------------------------
    def wait_for_guests(self, names: list[str], timeout_s: float = 900) -> None:
        """Until each DomU has printed rx-ready on its console and answers SSH from Dom0."""
        started = time.monotonic()
        logs = " ".join(shlex.quote(CONSOLE_LOG.format(name=n)) for n in names)
        wait = (
            f"for i in $(seq {int(timeout_s // 2)}); do ok=1; "
            f"for f in {logs}; do grep -q 'rx-ready:' $f 2>/dev/null || ok=0; done; "
            "[ $ok = 1 ] && exit 0; sleep 2; done; exit 1"
        )
        if self.run(wait, timeout_s=timeout_s + 30, check=False).returncode != 0:
            raise self.error(f"DomUs {names} did not come up within {timeout_s:.0f} s")
        self.trust_guests(names)
        for name in names:
            self.guest(name, "true", timeout_s=120)
        self.timings["guests_s"] = time.monotonic() - started

    def trust_guests(self, names: list[str]) -> None:
        """Put each DomU's current host key (from its console log) into Dom0's known_hosts."""
        script = "\n".join(
            [
                "set -e",
                f"mkdir -p $(dirname {KNOWN_HOSTS}); touch {KNOWN_HOSTS}",
                *(
                    f"k=$(sed -n 's/.*rx-hostkey: //p' {CONSOLE_LOG.format(name=n)} | tail -n 1)\n"
                    f'[ -n "$k" ]\n'
                    f"grep -v '^{n} ' {KNOWN_HOSTS} > {KNOWN_HOSTS}.new || true\n"
                    f'echo "{n} $k" >> {KNOWN_HOSTS}.new\n'
                    f"mv {KNOWN_HOSTS}.new {KNOWN_HOSTS}"
                    for n in names
                ),
            ]
        )
        self.run(script)

    # --- diagnostics ----------------------------------------------------------
    def error(self, message: str) -> MachineError:
        return MachineError(f"{message}\n{self.diagnostics()}")

    def diagnostics(self, serial_lines: int = 80) -> str:
        """The serial console's tail and Dom0's `xl dmesg`/`xl list`, as far as they can be had."""
        parts = []
        try:
            serial = self.serial_log.read_text(errors="replace").splitlines()
        except OSError:
            serial = ["(no serial log)"]
        parts.append(f"--- serial log ({self.serial_log}), last {serial_lines} lines")
        parts.extend(serial[-serial_lines:])
        with contextlib.suppress(OSError):
            qemu = self.qemu_log.read_text(errors="replace").strip()
            if qemu:
                parts += ["--- qemu log", qemu[-2000:]]
        if self.process is not None and self.process.poll() is None and self.port:
            for command in ("xl list", "xl dmesg | tail -n 60"):
                try:
                    done = subprocess.run(
                        self._ssh_argv(command, connect_timeout=10),
                        capture_output=True, timeout=40, check=False,
                    )  # fmt: skip
                    text = (done.stdout + done.stderr).decode("utf-8", "replace")
                except subprocess.TimeoutExpired:
                    text = "(timed out)"
                parts += [f"--- Dom0: {command}", text.rstrip()]
        else:
            parts.append("--- QEMU is not running: no xl dmesg")
        return "\n".join(parts)

    def qemu_rss_mib(self) -> int | None:
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
        return None


def environment_problem() -> str | None:
    """Why this machine cannot run the real-Xen suite, or None."""
    if os.geteuid() != 0:
        return "the real-Xen suite needs root (debootstrap, chroot, image build)"
    return None
