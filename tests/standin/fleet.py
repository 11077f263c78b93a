"""A fleet of stand-in DomUs: real OpenSSH sshd processes serving fake /proc files.

Each guest is `/usr/sbin/sshd` on its own 127.0.0.1 port, started with
`setsid unshare --mount --propagation private` so that, inside its private
mount namespace only, fixture files are bind-mounted over /proc/meminfo,
/proc/buddyinfo, /proc/vmstat, /proc/pressure/memory, /proc/slabinfo,
/proc/sys/vm, /proc/sys/kernel/dmesg_restrict, /usr/bin/dmesg,
/usr/bin/journalctl and /var/log, with a tmpfs for sshd's privilege
separation directory. Logins run the collector's real probe against these
files, so tests exercise the exact bytes a guest would send.

Only single files and /proc/sys/vm are covered, never /proc itself, because
the rest of the namespace needs the real one: sshd writes
/proc/self/oom_score_adj and walks /proc/self/fd, `ps` reads every
/proc/<pid>, the fake dmesg reads /proc/sys/kernel/dmesg_restrict, and
`uname`, `id` and `sh` are the host's. /sys/devices/system is replaced by a
tmpfs holding only the fake balloon driver (xen_memory0), so tools in the
guest do not see the host's CPU and memory-block folders; nothing the probe
or sshd runs looks there. sshd's privilege separation folder /run/sshd is a
private tmpfs (all of /run when the host has no /run/sshd, so nothing is
created on the host).

Processes are tracked by PID: at `stop()` every process in a guest's mount
namespace (sshd, its sessions and anything they left behind, such as a
`sleep 3600` that a test planted in dmesg) is killed, then sshd's process
group. `Fleet` is a context manager and also stops at interpreter exit.

Needs root (mount namespaces, useradd, binding over /proc) and OpenSSH's
sshd and ssh-keygen.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.localssh import free_port
from tests.standin import content
from xenaudit.collector.interface import GuestTarget
from xenaudit.inventory.interface import SshSettings

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
#: Unprivileged login used by tests of non-root collection (created when missing).
PROBE_USER = "xa-standin"
#: How long a guest may take to accept connections before start() gives up.
START_TIMEOUT_S = 15.0


class StandinError(RuntimeError):
    """The stand-in fleet cannot run here (not root, no sshd, a guest died)."""


@dataclass(frozen=True)
class GuestSpec:
    """What one stand-in guest serves. Every field has a sensible 512 MiB DomU default."""

    name: str
    meminfo: str = field(default_factory=content.meminfo)
    buddyinfo: str = field(default_factory=content.buddyinfo)
    vmstat: str = field(default_factory=content.vmstat)
    #: None hides /proc/pressure (a kernel without PSI): the section is "missing".
    pressure_memory: str | None = field(default_factory=content.psi)
    slabinfo: str = field(default_factory=content.slabinfo)
    sysvm: Mapping[str, str] = field(default_factory=content.sysvm)
    #: What the fake dmesg prints (to root, or to anyone when dmesg_restrict is 0).
    kernlog: str = field(default_factory=content.kernlog_page_alloc_failure)
    #: A whole replacement body for /usr/bin/dmesg (a POSIX sh script), e.g. "sleep 3600".
    dmesg_script: str | None = None
    #: A whole replacement body for /usr/bin/journalctl.
    journalctl_script: str | None = None
    #: /var/log/kern.log (mode 0640 root:adm); None leaves it absent.
    kern_log: str | None = None
    dmesg_restrict: int = 1
    #: (target_kb, current_kb) for /sys/devices/system/xen_memory; None: no balloon driver.
    balloon: tuple[int, int] | None = (524_288, 524_288)
    login_user: str = "root"
    #: Extra bind mounts inside the guest: target path -> source path on the host.
    binds: Mapping[str, str] = field(default_factory=dict)


@dataclass
class StandinGuest:
    """A running stand-in guest."""

    spec: GuestSpec
    port: int
    directory: Path
    #: "ssh-ed25519 AAAA..." as in the .pub file.
    host_public_key: str
    #: As `ssh-keygen -l` prints it: "SHA256:...".
    host_key_fingerprint: str
    process: subprocess.Popen[bytes]
    namespace: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_public_key}\n"

    @property
    def log(self) -> str:
        try:
            return (self.directory / "sshd.log").read_text(errors="replace")
        except OSError:
            return ""


class Fleet:
    """Stand-in guests plus the client key and known_hosts that reach them."""

    def __init__(self, root: Path, owns_root: bool) -> None:
        self.root = root
        self._owns_root = owns_root
        self.guests: list[StandinGuest] = []
        self.client_key = root / "client_ed25519"
        self.known_hosts = root / "known_hosts"
        self._stopped = False

    # --- starting --------------------------------------------------------------

    @classmethod
    def start(cls, specs: Iterable[GuestSpec], root: Path | None = None) -> Fleet:
        """Start one sshd per spec and wait until every one accepts connections."""
        check_environment()
        owns_root = root is None
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="xa-standin-"))
        root.mkdir(parents=True, exist_ok=True)
        # The unprivileged login must traverse to its authorized_keys and fake files.
        os.chmod(root, 0o755)
        fleet = cls(root, owns_root)
        _LIVE.add(fleet)
        try:
            _keygen(fleet.client_key, "xenaudit-standin-client")
            _write(root / "start-guest.sh", _START_SCRIPT, 0o755)
            specs = list(specs)
            names = [s.name for s in specs]
            if len(set(names)) != len(names):
                raise StandinError("stand-in guest names must be unique")
            for spec in specs:
                fleet.guests.append(fleet._launch(spec))
            for guest in fleet.guests:
                fleet._wait_ready(guest)
            fleet.write_known_hosts(fleet.known_hosts)
        except BaseException:
            fleet.stop()
            raise
        return fleet

    def _launch(self, spec: GuestSpec) -> StandinGuest:
        if spec.login_user != "root":
            ensure_user(spec.login_user)
        directory = self.root / spec.name
        directory.mkdir(mode=0o755)
        os.chmod(directory, 0o755)
        _write_guest_files(directory, spec, self.client_key.with_suffix(".pub"))
        host_key = directory / "ssh_host_ed25519_key"
        _keygen(host_key, f"standin-{spec.name}")
        public = host_key.with_suffix(".pub").read_text().split()
        fingerprint = _keygen_fingerprint(host_key.with_suffix(".pub"))
        last_error = ""
        for _attempt in range(5):
            port = free_port()
            _write(directory / "sshd_config", _sshd_config(directory, port), 0o644)
            log = open(directory / "sshd.log", "wb")  # noqa: SIM115 - handed to the child
            try:
                process = subprocess.Popen(
                    [
                        "setsid",
                        "unshare",
                        "--mount",
                        "--propagation",
                        "private",
                        "sh",
                        str(self.root / "start-guest.sh"),
                        str(directory),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            finally:
                log.close()
            guest = StandinGuest(
                spec=spec,
                port=port,
                directory=directory,
                host_public_key=f"{public[0]} {public[1]}",
                host_key_fingerprint=fingerprint,
                process=process,
            )
            if _wait_listening(guest, quick=True):
                return guest
            last_error = guest.log
            _kill_guest(guest)
            if "Address already in use" not in last_error:
                break
        raise StandinError(f"stand-in guest {spec.name} did not start:\n{last_error}")

    def _wait_ready(self, guest: StandinGuest) -> None:
        if not _wait_listening(guest, quick=False):
            raise StandinError(
                f"stand-in guest {guest.name} did not accept connections on port "
                f"{guest.port} within {START_TIMEOUT_S:g}s:\n{guest.log}"
            )
        guest.namespace = _namespace_of(guest.process.pid)

    # --- using ------------------------------------------------------------------

    def guest(self, name: str) -> StandinGuest:
        return next(g for g in self.guests if g.name == name)

    def targets(self, host: str = "standin-dom0", **overrides: object) -> list[GuestTarget]:
        """One GuestTarget per guest, reaching it with the fleet's client key."""
        return [self.target(g.name, host, **overrides) for g in self.guests]

    def target(self, name: str, host: str = "standin-dom0", **overrides: object) -> GuestTarget:
        guest = self.guest(name)
        target = GuestTarget(
            domain=name,
            host=host,
            ssh_host="127.0.0.1",
            ssh_port=guest.port,
            ssh_user=guest.spec.login_user,
            identity_file=str(self.client_key),
        )
        return replace(target, **overrides)  # type: ignore[arg-type]

    def settings(self, **overrides: object) -> SshSettings:
        """SshSettings that trust exactly this fleet's host keys and nothing from ~/.ssh."""
        base = SshSettings(
            identity_file=str(self.client_key),
            known_hosts=str(self.known_hosts),
            own_known_hosts=str(self.root / "xenaudit" / "known_hosts"),
            ssh_config=None,
            connect_timeout_s=5.0,
            guest_timeout_s=30.0,
            deadline_s=120.0,
            retries=0,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def write_known_hosts(self, path: Path, guests: Sequence[StandinGuest] | None = None) -> Path:
        lines = [g.known_hosts_line for g in (self.guests if guests is None else guests)]
        _write(path, "".join(lines), 0o644)
        return path

    def make_client_key(self, name: str) -> Path:
        """Another client key, which no guest authorises."""
        path = self.root / f"{name}_ed25519"
        _keygen(path, name)
        return path

    def guest_processes(self, guest: StandinGuest) -> list[int]:
        """PIDs living in the guest's mount namespace (sshd and its sessions)."""
        return _pids_in_namespace(guest.namespace) if guest.namespace else []

    # --- stopping ---------------------------------------------------------------

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for guest in self.guests:
            _kill_guest(guest)
        _LIVE.discard(self)
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


_LIVE: weakref.WeakSet[Fleet] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for fleet in list(_LIVE):
        fleet.stop()


# --- environment -------------------------------------------------------------------


def check_environment() -> None:
    """Fail early, with what to do, when the stand-in fleet cannot work here."""
    if not os.path.exists(SSHD):
        raise StandinError(f"{SSHD} not found: install openssh-server to run sshd tests")
    for tool in (SSH_KEYGEN, "unshare", "setsid", "mount"):
        if shutil.which(tool) is None:
            raise StandinError(f"{tool} not found in PATH")
    if os.geteuid() != 0:
        raise StandinError(
            "stand-in guests need root (mount namespaces, bind mounts over /proc); "
            "run as root or deselect with -m 'not sshd'"
        )


def ensure_user(name: str) -> None:
    """Create a system login with no usable password, unlocked so sshd accepts keys.

    `useradd --system` locks the account ("!"), and sshd without PAM refuses
    locked accounts even for key logins; "*" means "no password" instead.
    """
    exists = True
    try:
        pwd.getpwnam(name)
    except KeyError:
        exists = False
    if not exists:
        command = ["useradd", "--system", "--no-create-home", "--home-dir", "/"]
        command += ["--shell", "/bin/sh", "--password", "*", name]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise StandinError(f"useradd {name} failed: {result.stderr.strip()}")
    if _shadow_password(name).startswith("!"):
        subprocess.run(["usermod", "--password", "*", name], capture_output=True, check=True)


def _shadow_password(name: str) -> str:
    with contextlib.suppress(OSError), open("/etc/shadow", encoding="utf-8") as shadow:
        for line in shadow:
            fields = line.split(":")
            if fields[0] == name and len(fields) > 1:
                return fields[1]
    return ""


def host_has_psi() -> bool:
    """Whether /proc/pressure exists here, so a fake PSI file can be mounted over it."""
    return os.path.exists("/proc/pressure/memory")


# --- guest files -------------------------------------------------------------------


def _write_guest_files(directory: Path, spec: GuestSpec, client_pub: Path) -> None:
    _write(directory / "authorized_keys", client_pub.read_text(), 0o644)
    _write(directory / "meminfo", spec.meminfo, 0o444)
    _write(directory / "buddyinfo", spec.buddyinfo, 0o444)
    _write(directory / "vmstat", spec.vmstat, 0o444)
    if spec.pressure_memory is not None:
        _write(directory / "pressure_memory", spec.pressure_memory, 0o444)
    # /proc/slabinfo is 0400 root on real kernels.
    _write(directory / "slabinfo", spec.slabinfo, 0o400)
    _write(directory / "dmesg_restrict", f"{spec.dmesg_restrict}\n", 0o444)
    sysvm = directory / "sysvm"
    sysvm.mkdir()
    for name, value in spec.sysvm.items():
        _write(sysvm / name, value + "\n", 0o444)
    for name in content.WRITE_ONLY_SYSVM:
        if name not in spec.sysvm:
            _write(sysvm / name, "", 0o200)
    os.chmod(sysvm, 0o555)
    _write(directory / "kernlog.txt", spec.kernlog, 0o444)
    bin_dir = directory / "bin"
    bin_dir.mkdir(mode=0o755)
    log = directory / "kernlog.txt"
    if spec.dmesg_script is not None:
        dmesg = spec.dmesg_script
    elif spec.login_user == "root" or spec.dmesg_restrict == 0:
        # Nobody who logs in is restricted: skip the check, one exec like the real dmesg.
        dmesg = f"exec cat {log}"
    else:
        dmesg = _DEFAULT_DMESG.format(log=log)
    _write(bin_dir / "dmesg", "#!/bin/sh\n" + dmesg + "\n", 0o755)
    journalctl = spec.journalctl_script or _DEFAULT_JOURNALCTL.format(log=directory / "kernlog.txt")
    _write(bin_dir / "journalctl", "#!/bin/sh\n" + journalctl + "\n", 0o755)
    varlog = directory / "varlog"
    varlog.mkdir(mode=0o755)
    if spec.kern_log is not None:
        kern_log = varlog / "kern.log"
        _write(kern_log, spec.kern_log, 0o640)
        with contextlib.suppress(KeyError):
            os.chown(kern_log, 0, grp.getgrnam("adm").gr_gid)
    if spec.balloon is not None:
        xen = directory / "xen_memory0"
        (xen / "info").mkdir(parents=True)
        _write(xen / "target_kb", f"{spec.balloon[0]}\n", 0o444)
        _write(xen / "info" / "current_kb", f"{spec.balloon[1]}\n", 0o444)
    binds = "".join(f"{source}\t{target}\n" for target, source in spec.binds.items())
    _write(directory / "binds.tsv", binds, 0o644)


def _sshd_config(directory: Path, port: int) -> str:
    return (
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {directory}/ssh_host_ed25519_key\n"
        f"PidFile {directory}/sshd.pid\n"
        f"AuthorizedKeysFile {directory}/authorized_keys\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "PrintLastLog no\n"
        "PrintMotd no\n"
        "UseDNS no\n"
        "LogLevel ERROR\n"
    )


# The fake dmesg behaves like util-linux's under kernel.dmesg_restrict.
_DEFAULT_DMESG = """\
if [ "$(id -u)" != 0 ] && [ "$(cat /proc/sys/kernel/dmesg_restrict)" != 0 ]; then
  echo "dmesg: read kernel buffer failed: Operation not permitted" >&2
  exit 1
fi
exec cat {log}"""

# Only root may read the (fake) system journal; others see nothing, as with -q.
_DEFAULT_JOURNALCTL = """\
[ "$(id -u)" = 0 ] || exit 0
exec cat {log}"""

# Runs inside the new mount namespace; every mount here is private to the guest.
_START_SCRIPT = r"""#!/bin/sh
set -e
G=$1
mount --bind "$G/meminfo" /proc/meminfo
mount --bind "$G/buddyinfo" /proc/buddyinfo
mount --bind "$G/vmstat" /proc/vmstat
if [ -d /proc/pressure ]; then
  if [ -f "$G/pressure_memory" ]; then
    mount --bind "$G/pressure_memory" /proc/pressure/memory
  else
    mount -t tmpfs -o mode=0555 tmpfs /proc/pressure
  fi
fi
mount --bind "$G/slabinfo" /proc/slabinfo
mount --bind "$G/sysvm" /proc/sys/vm
mount --bind "$G/dmesg_restrict" /proc/sys/kernel/dmesg_restrict
for tool in dmesg journalctl; do
  if [ -e "/usr/bin/$tool" ]; then mount --bind "$G/bin/$tool" "/usr/bin/$tool"; fi
done
mount --bind "$G/varlog" /var/log
if [ -d "$G/xen_memory0" ]; then
  mount -t tmpfs -o mode=0755 tmpfs /sys/devices/system
  mkdir -p /sys/devices/system/xen_memory/xen_memory0
  mount --bind "$G/xen_memory0" /sys/devices/system/xen_memory/xen_memory0
fi
while IFS="$(printf '\t')" read -r source target; do
  [ -n "$target" ] && mount --bind "$source" "$target"
done < "$G/binds.tsv"
if [ -d /run/sshd ]; then
  mount -t tmpfs -o mode=0755 tmpfs /run/sshd
else
  mount -t tmpfs -o mode=0755 tmpfs /run
  mkdir -m 0755 /run/sshd
fi
exec /usr/sbin/sshd -D -e -f "$G/sshd_config"
"""


# --- processes ---------------------------------------------------------------------


def _wait_listening(guest: StandinGuest, quick: bool) -> bool:
    """Poll the port until it accepts; False when sshd exited (or, not quick, on timeout)."""
    limit = time.monotonic() + (2.0 if quick else START_TIMEOUT_S)
    while time.monotonic() < limit:
        if guest.process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", guest.port), timeout=0.5) as sock:
                sock.recv(1)  # sshd sends its banner; a listener that isn't ours would not
                return True
        except OSError:
            time.sleep(0.02)
    return quick and guest.process.poll() is None


def _namespace_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return ""


def _pids_in_namespace(namespace: str) -> list[int]:
    mine = _namespace_of(os.getpid())
    if not namespace or namespace == mine:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _namespace_of(int(entry)) == namespace:
            pids.append(int(entry))
    return pids


def _kill_guest(guest: StandinGuest) -> None:
    namespace = guest.namespace or _namespace_of(guest.process.pid)
    for pid in _pids_in_namespace(namespace):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(guest.process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        guest.process.wait(timeout=5)


# --- small helpers -----------------------------------------------------------------


def _write(path: Path, text: str, mode: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def _keygen(path: Path, comment: str) -> None:
    result = subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StandinError(f"ssh-keygen failed for {path}: {result.stderr.strip()}")


def _keygen_fingerprint(pub: Path) -> str:
    result = subprocess.run(
        [SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(pub)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()[1]
