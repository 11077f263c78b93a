"""What happens to the fleet on the real Xen, one step at a time, and what each step saw.

Each step returns the raw outputs of both sides: what xenaudit printed or wrote,
and what Xen itself says (`xl list -l`, `xl info`, xenstore) right beside it, so
the tests compare xenaudit against the hypervisor, never against expectations
written down in advance.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.realxen.install import REPORTS
from tests.realxen.machine import CONSOLE_LOG, INVENTORY, MachineError, RealXen

XS_LINE = re.compile(r'^(?P<path>/\S*) = "(?P<value>.*)"')


def xenstore_values(text: str) -> dict[str, str]:
    """`xenstore-ls -f` output as path -> value (values unescaped only as far as needed)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = XS_LINE.match(line)
        if match:
            values[match["path"]] = match["value"]
    return values


def list_long(text: str) -> dict[str, dict[str, Any]]:
    """`xl list -l` (libxl JSON) by domain name."""
    return {entry["config"]["c_info"]["name"]: entry for entry in json.loads(text)}


def xl_info(text: str) -> dict[str, str]:
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def xl_list_states(text: str) -> dict[str, str]:
    """Name -> the six state flags of `xl list` (e.g. "-b----")."""
    states = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6:
            states[parts[0]] = parts[4]
    return states


@dataclass
class HypervisorTruth:
    """What Xen and its toolstack say, read right beside a xenaudit command."""

    list_text: str
    list_long_text: str
    info_text: str
    xenstore_text: str

    @property
    def domains(self) -> dict[str, dict[str, Any]]:
        return list_long(self.list_long_text)

    @property
    def info(self) -> dict[str, str]:
        return xl_info(self.info_text)

    @property
    def states(self) -> dict[str, str]:
        return xl_list_states(self.list_text)

    @property
    def xenstore(self) -> dict[str, str]:
        return xenstore_values(self.xenstore_text)

    def memory_node(self, domid: int, leaf: str) -> int:
        return int(self.xenstore[f"/local/domain/{domid}/memory/{leaf}"])


def read_truth(machine: RealXen) -> HypervisorTruth:
    sep = "@@xenaudit-realxen@@"
    done = machine.run(
        f"xl list; echo {sep}; xl list -l; echo {sep}; xl info; echo {sep}; "
        "xenstore-ls -f /local/domain"
    )
    parts = done.stdout.split(f"{sep}\n")
    if len(parts) != 4:
        raise MachineError(f"unexpected truth output: {done.stdout[:500]}")
    return HypervisorTruth(*parts)


def wait_stable_free_memory(machine: RealXen, timeout_s: float = 120) -> None:
    """Until `xl info` free_memory stops moving (balloons settled)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        free = machine.run("xl info free_memory").stdout.strip()
        if free == last:
            return
        last = free
        time.sleep(5)


def wait_balloon(machine: RealXen, name: str, mib: int, timeout_s: float = 120) -> None:
    """Until `xl list NAME` shows the domain holding `mib`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = machine.run(f"xl list {shlex.quote(name)} | tail -n 1").stdout.split()
        if len(line) > 2 and line[2] == str(mib):
            return
        time.sleep(3)
    raise machine.error(f"{name} did not reach {mib} MiB within {timeout_s:.0f} s")


def ready_count(machine: RealXen, name: str) -> int:
    log = shlex.quote(CONSOLE_LOG.format(name=name))
    return int(machine.run(f"grep -c 'rx-ready:' {log} 2>/dev/null || true").stdout.strip() or 0)


def create_and_wait(machine: RealXen, cfg: str, name: str, timeout_s: float = 600) -> float:
    """`xl create`, then wait for the guest's console to say it is ready; trust its new key."""
    before = ready_count(machine, name)
    started = time.monotonic()
    machine.run(f"xl create {shlex.quote(cfg)}", timeout_s=300)
    deadline = started + timeout_s
    while ready_count(machine, name) <= before:
        if time.monotonic() > deadline:
            raise machine.error(f"{name} did not print rx-ready within {timeout_s:.0f} s")
        time.sleep(3)
    machine.trust_guests([name])
    machine.guest(name, "true", timeout_s=120)
    return time.monotonic() - started


# --- the first night: drift, squeeze, audit ------------------------------------------


@dataclass
class FirstAudit:
    oom_output: str
    oom_dmesg: str
    hog_pid: str
    audit_rc: int
    audit_output: str
    report: dict[str, Any]
    summary_csv: str
    patch: str
    domains_rc: int
    domains: dict[str, Any]
    truth: HypervisorTruth
    #: `xl list` as xl printed it to xenaudit during the audit (its snapshot).
    audit_xl_list: str = ""
    report_dir: str = f"{REPORTS}/first"

    def report_domain(self, name: str) -> dict[str, Any]:
        return next(d for d in self.report["domains"] if d["name"] == name)

    def listed_domain(self, name: str) -> dict[str, Any]:
        host = self.domains["hosts"][0]
        return next(d for d in host["domains"] if d["name"] == name)


def first_audit(machine: RealXen) -> FirstAudit:
    """drifted: `xl mem-set` away from its cfg. squeezed: target 128 MiB, then a memory
    hog until the kernel OOM-kills it. healthy: a 24 MiB service. Then the nightly audit."""
    machine.run("xl mem-set drifted 192m")
    machine.run("xl mem-set squeezed 128m")
    wait_balloon(machine, "squeezed", 128)
    oom = machine.guest("squeezed", "memhog 300; echo memhog-exit=$?", timeout_s=300, check=False)
    oom_dmesg = machine.guest(
        "squeezed", "dmesg | grep -E 'invoked oom-killer|Out of memory: Killed process'"
    )
    machine.guest("healthy", "(setsid memhog 24 86400 >/dev/null 2>&1 &); sleep 3")
    hog_pid = machine.guest("healthy", "pidof memhog").strip()
    wait_balloon(machine, "drifted", 192)
    wait_stable_free_memory(machine)
    out = f"{REPORTS}/first"
    audit = machine.run(f"xenaudit audit -i {INVENTORY} -o {out}", timeout_s=900, check=False)
    if audit.returncode not in (0, 1, 3):
        raise machine.error(
            f"xenaudit audit failed (exit {audit.returncode}):\n{audit.stdout[-3000:]}\n"
            f"{audit.stderr[-3000:]}"
        )
    domains = machine.run(f"xenaudit domains -i {INVENTORY} --json", check=False)
    truth = read_truth(machine)
    report = machine.run(f"cat {out}/report.json").stdout
    summary = machine.run(f"cat {out}/summary.csv").stdout
    patch = machine.run(f"cat {out}/patches/squeezed.cfg.diff", check=False).stdout
    seen = machine.run(f"cat {out}/snapshots/_hypervisor/*/xl-list.txt").stdout
    return FirstAudit(
        oom_output=oom,
        oom_dmesg=oom_dmesg,
        hog_pid=hog_pid,
        audit_rc=audit.returncode,
        audit_output=audit.stdout + audit.stderr,
        report=json.loads(report),
        summary_csv=summary,
        patch=patch,
        domains_rc=domains.returncode,
        domains=json.loads(domains.stdout),
        truth=truth,
        audit_xl_list=seen,
    )


# --- apply --live, boot the patched cfg, undo -----------------------------------------


@dataclass
class LiveApply:
    cfg_before: bytes
    cfg_after: bytes
    before: dict[str, Any]
    rc: int
    output: str
    truth: HypervisorTruth
    #: What a target beyond the boot-time maximum does: xl's answer and the guest's balloon.
    beyond_boot_max: dict[str, str] = field(default_factory=dict)


def live_apply(machine: RealXen, first: FirstAudit) -> LiveApply:
    cfg = "/etc/xen/squeezed.cfg"
    before_bytes = machine.run_bytes(f"cat {cfg}")
    before = list_long(machine.run("xl list -l squeezed").stdout)["squeezed"]
    # --live reaches the hypervisor the way the inventory says, never report.json.
    done = machine.run(
        f"xenaudit apply {first.report_dir} --domain squeezed --yes --live -i {INVENTORY}",
        timeout_s=600,
        check=False,
    )
    truth = read_truth(machine)
    after_bytes = machine.run_bytes(f"cat {cfg}")
    return LiveApply(before_bytes, after_bytes, before, done.returncode,
                     done.stdout + done.stderr, truth)  # fmt: skip


def probe_beyond_boot_max(machine: RealXen, maxmem_mib: int, memory_mib: int) -> dict[str, str]:
    """Ask xl for a target up to the new (live-raised) maxmem and watch the guest's balloon.

    This is the libxl behaviour the live plan relies on: `xl mem-max` raises
    static-max, so xl accepts the target, but a PV guest cannot populate memory
    beyond what it booted with, so its balloon stops at the boot-time maximum.
    """
    node = "/sys/devices/system/xen_memory/xen_memory0"
    result = machine.run(f"xl mem-set squeezed {maxmem_mib}m", check=False)
    time.sleep(20)
    balloon = machine.guest("squeezed", f"cat {node}/target_kb {node}/info/current_kb").split()
    listed = machine.run("xl list squeezed | tail -n 1").stdout.split()
    machine.run(f"xl mem-set squeezed {memory_mib}m")
    wait_balloon(machine, "squeezed", memory_mib)
    return {
        "rc": str(result.returncode),
        "stderr": result.stderr,
        "guest_target_kb": balloon[0],
        "guest_current_kb": balloon[1],
        "xl_list_mem_mib": listed[2],
    }


@dataclass
class Recreated:
    shutdown_s: float
    create_s: float
    domain: dict[str, Any]
    guest_meminfo: str
    guest_balloon: str


def recreate(machine: RealXen, name: str = "squeezed") -> Recreated:
    """`xl shutdown -w`, wait until the domain is gone, `xl create` from the patched cfg."""
    started = time.monotonic()
    machine.run(f"xl shutdown -w {name}", timeout_s=300)
    # -w returns once the guest has shut down; xl's daemon destroys it a little later.
    deadline = time.monotonic() + 120
    while machine.run(f"xl domid {name}", check=False).returncode == 0:
        if time.monotonic() > deadline:
            raise machine.error(f"{name} was still listed 120 s after xl shutdown -w")
        time.sleep(2)
    shutdown_s = time.monotonic() - started
    create_s = create_and_wait(machine, f"/etc/xen/{name}.cfg", name)
    domain = list_long(machine.run(f"xl list -l {name}").stdout)[name]
    node = "/sys/devices/system/xen_memory/xen_memory0"
    return Recreated(
        shutdown_s=shutdown_s,
        create_s=create_s,
        domain=domain,
        guest_meminfo=machine.guest(name, "cat /proc/meminfo"),
        guest_balloon=machine.guest(name, f"cat {node}/target_kb {node}/info/current_kb"),
    )


@dataclass
class Undone:
    rc: int
    output: str
    cfg: bytes
    leftovers: str


def undo(machine: RealXen, first: FirstAudit) -> Undone:
    done = machine.run(f"xenaudit apply {first.report_dir} --undo --yes", check=False)
    return Undone(
        rc=done.returncode,
        output=done.stdout + done.stderr,
        cfg=machine.run_bytes("cat /etc/xen/squeezed.cfg"),
        leftovers=machine.run("ls /etc/xen").stdout,
    )


# --- judged from Dom0 alone ---------------------------------------------------------

#: An inventory like the nightly one, but every domain judged from the hypervisor side.
DOM0_ONLY_INVENTORY = "/etc/xenaudit/dom0-only.toml"
DOM0_ONLY_STATE = "/var/lib/xenaudit-dom0-only"
#: Where drifted's balloon is moved for this audit (first_audit left it at 192 MiB).
MOVED_TO_MIB = 160


@dataclass
class FromDom0:
    rc: int
    output: str
    report: dict[str, Any]
    truth: HypervisorTruth
    #: Guest files in the snapshots folder (there should be none: nobody logged in).
    guest_files: str

    def report_domain(self, name: str) -> dict[str, Any]:
        return next(d for d in self.report["domains"] if d["name"] == name)


def audit_from_dom0(machine: RealXen) -> FromDom0:
    """The hypervisor-side collector against the real Xen: drifted's balloon is moved
    once more with `xl mem-set` and observed from xenstore and xentop alone."""
    nightly = machine.run(f"cat {INVENTORY}").stdout
    text = nightly.replace(
        'state_dir = "/var/lib/xenaudit"',
        f'state_dir = "{DOM0_ONLY_STATE}"\ncollect = "hypervisor"',
        1,
    )
    if text == nightly:
        raise machine.error(f"{INVENTORY} has no state_dir line to replace")
    machine.put(text.encode(), DOM0_ONLY_INVENTORY, mode="0640")
    machine.run(f"xl mem-set drifted {MOVED_TO_MIB}m")
    wait_balloon(machine, "drifted", MOVED_TO_MIB)
    wait_stable_free_memory(machine)
    out = f"{REPORTS}/from-dom0"
    try:
        audit = machine.run(
            f"xenaudit audit -i {DOM0_ONLY_INVENTORY} -o {out}", timeout_s=900, check=False
        )
        truth = read_truth(machine)
    finally:
        machine.run("xl mem-set drifted 192m")
    report = json.loads(machine.run(f"cat {out}/report.json").stdout)
    files = machine.run(
        f"cd {out}/snapshots && find . -type f ! -path './_*' | sort", check=False
    ).stdout
    return FromDom0(audit.returncode, audit.stdout + audit.stderr, report, truth, files)


# --- a real page allocation failure ---------------------------------------------------


@dataclass
class Burst:
    #: Guest uptime when the last flood (the one that provoked the failure) began.
    uptime_at_start_s: float
    #: udpflood's output of each flood, "; "-joined.
    flood_output: str
    ping_output: str
    dmesg: str
    recovered_after_s: float
    audit_rc: int
    report: dict[str, Any]

    @property
    def failure_lines(self) -> list[str]:
        return [line for line in self.dmesg.splitlines() if "page allocation failure" in line]

    def seconds_to_first_failure(self) -> float | None:
        if not self.failure_lines:
            return None
        stamp = re.match(r"\[\s*(\d+\.\d+)\]", self.failure_lines[0])
        return float(stamp[1]) - self.uptime_at_start_s if stamp else None


#: Flood limits: both bounded, and only inside the emulated machine's own bridge.
FLOOD_SECONDS = 45
FLOOD_DATAGRAMS = 200_000
#: The burst audit's own history, so the nightly story starts with none.
BURST_STATE = "/var/lib/xenaudit-burst"
#: Floods at most, stopping at the first that provokes a failure.
FLOOD_ROUNDS = 3
#: rxhog exits on its own after this long, so the guest's network comes back.
RXHOG_SECONDS = 75


def _flood_once(machine: RealXen, ip: str) -> tuple[float, str, float, str]:
    """One bounded flood; (uptime at its start, udpflood's output, seconds until SSH
    answered again, ping's summary)."""
    machine.guest(
        "burst",
        "kill $(pidof rxhog) 2>/dev/null; "
        f"(setsid rxhog 9999 400 {RXHOG_SECONDS} >/tmp/rxhog.log 2>&1 &); sleep 1; "
        "cat /tmp/rxhog.log",
    )
    uptime = float(machine.guest("burst", "cat /proc/uptime").split()[0])
    flood = machine.run(
        f"(ping -f -s 1200 -w {FLOOD_SECONDS + 5} {ip} > /tmp/ping.log 2>&1 &); "
        f"udpflood {ip} 9999 {FLOOD_SECONDS} {FLOOD_DATAGRAMS}",
        timeout_s=FLOOD_SECONDS + 120,
    ).stdout
    started = time.monotonic()
    deadline = started + 300
    while machine.run("ssh -o ConnectTimeout=10 burst true", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise machine.error("burst did not answer SSH again within 300 s of the flood")
        time.sleep(5)
    recovered = time.monotonic() - started
    ping = machine.run("sleep 6; tail -n 3 /tmp/ping.log", check=False).stdout
    return uptime, flood, recovered, ping


def burst(machine: RealXen, ip: str) -> Burst:
    """A 128 MiB guest with a tiny atomic reserve: a socket that never reads fills memory
    with received datagrams while ICMP echo replies (GFP_ATOMIC, in softirq) need pages.

    Whether a reply finds no page is a race between the flood filling memory and the
    netfront refill (which fails silently, __GFP_NOWARN) starving the guest of the very
    requests that would fail: most floods provoke it, some do not. So the guest gets up
    to FLOOD_ROUNDS identical floods and the first that provokes it counts."""
    create_and_wait(machine, "/var/lib/realxen/lab/burst.cfg", "burst")
    machine.guest(
        "burst",
        "echo 128 > /proc/sys/vm/min_free_kbytes; "
        "echo '100000 100000 100000' > /proc/sys/net/ipv4/udp_mem",
    )
    floods: list[str] = []
    for _ in range(FLOOD_ROUNDS):
        uptime, flood, recovered, ping = _flood_once(machine, ip)
        floods.append(flood.strip())
        dmesg = machine.guest("burst", "dmesg")
        if "page allocation failure" in dmesg:
            break
    out = f"{REPORTS}/burst"
    audit = machine.run(
        f"xenaudit audit -i {INVENTORY} -o {out} --state-dir {BURST_STATE}",
        timeout_s=900,
        check=False,
    )
    report = json.loads(machine.run(f"cat {out}/report.json").stdout)
    return Burst(uptime, "; ".join(floods), ping, dmesg, recovered, audit.returncode, report)


# --- recordings for the fast tests ----------------------------------------------------

GUEST_FILES = {
    "meminfo": "cat /proc/meminfo",
    "buddyinfo": "cat /proc/buddyinfo",
    "vmstat": "cat /proc/vmstat",
    "zoneinfo": "cat /proc/zoneinfo",
    "pressure-memory": "cat /proc/pressure/memory",
    "slabinfo": "cat /proc/slabinfo",
    "sys-vm.txt": "grep -H '' /proc/sys/vm/*",
    "balloon.txt": "grep -H '' /sys/devices/system/xen_memory/xen_memory0/target_kb "
    "/sys/devices/system/xen_memory/xen_memory0/info/current_kb",
    "ps.txt": "ps -o pid,comm,rss,vsz",
    "uname.txt": "uname -a",
    "dmesg.txt": "dmesg",
}

HYPERVISOR_FILES = {
    "list.out": "xl list",
    "list_l.out": "xl list -l",
    "info.out": "xl info",
    "dmesg.out": "xl dmesg",
    "xenstore-ls-local-domain.out": "xenstore-ls /local/domain",
    "xenstore-ls-f.out": "xenstore-ls -f",
    "xentop-b.out": "xentop -b -i 2",
    "dom0-cpuinfo.out": "cat /proc/cpuinfo",
}


RECORDINGS_README = """\
# Recordings of a real Xen 4.17

Captured by the real-Xen suite (tests/realxen, images from scripts/realxen) from
Xen 4.17 with a Debian 12 PV Dom0 and busybox PV DomUs under QEMU; ORIGIN.txt
names the versions and the date. Raw, exactly as the commands printed them.
Refresh: XENAUDIT_REALXEN_RECORD=$PWD/tests/fake_xl/recordings/realxen_4.17
.venv/bin/python -m pytest -m realxen (replaces this folder).

The fleet's state: drifted moved to 192 MiB by `xl mem-set` (cfg 256),
squeezed ballooned to 128 MiB (cfg 192) and OOM-killed under a memory hog,
healthy running a 24 MiB memhog, parked shut off (only its cfg).

Files (commands run on Dom0):
- list.out, list_l.out, info.out, dmesg.out: `xl list`, `xl list -l`, `xl info`,
  `xl dmesg` (named as the fake xl's keys)
- xenstore-ls-local-domain.out: `xenstore-ls /local/domain`
- xenstore-ls-f.out: `xenstore-ls -f`
- xentop-b.out: `xentop -b -i 2`
- dom0-cpuinfo.out: Dom0's /proc/cpuinfo (QEMU's qemu64 CPU: SSE3, no SSSE3)
- etc-xen/: the cfgs in /etc/xen, xl.conf and Debian's xlexample.* files
- guests/NAME/: the DomU's /proc files (meminfo, buddyinfo, vmstat, zoneinfo,
  pressure-memory, slabinfo), `grep -H '' /proc/sys/vm/*` (sys-vm.txt), the
  balloon's target_kb and current_kb, busybox `ps -o pid,comm,rss,vsz`,
  `uname -a` and `dmesg`
- guests/burst/: the same after its page allocation failures (order-0 GFP_ATOMIC)
- audit-snapshots/: the snapshots folder of the `xenaudit audit` run in Dom0
  (replayed with --from-snapshots)
- burst-audit-snapshots/: the snapshots of the audit run after burst's failures
  (recorded only when a flood provoked one)
"""


def capture(
    machine: RealXen, guests: list[str], destination: Path, hypervisor: bool = True
) -> None:
    """Raw outputs of the hypervisor and of each guest's /proc, as files under `destination`."""
    script = ["set -e", "R=$(mktemp -d)"]
    if hypervisor:
        script.append("mkdir -p $R/etc-xen")
        for file_name, command in HYPERVISOR_FILES.items():
            script.append(f"{command} > $R/{file_name}")
        script.append("cp /etc/xen/*.cfg /etc/xen/xl.conf /etc/xen/xlexample.* $R/etc-xen/")
        script.append(
            '{ echo "captured $(date -u +%FT%TZ) by tests/realxen (scripts/realxen images, '
            "QEMU TCG)\"; xl info | grep -E '^(xen_version|xen_commandline|release|version|"
            "total_memory)'; } > $R/ORIGIN.txt"
        )
    guest_script = ["D=$(mktemp -d)"]
    guest_script += [f"{cmd} > $D/{name} 2>/dev/null || true" for name, cmd in GUEST_FILES.items()]
    guest_script += ["tar cf - -C $D .", "rm -rf $D"]
    remote = shlex.quote("; ".join(guest_script))
    for name in guests:
        script.append(f"mkdir -p $R/guests/{name}")
        script.append(f"ssh {name} {remote} | tar xf - -C $R/guests/{name}")
    script += ["tar cf - -C $R .", "rm -rf $R"]
    data = machine.run_bytes("\n".join(script), timeout_s=600)
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(destination, filter="data")
    (destination / "README.md").write_text(RECORDINGS_README)
    for name in guests:
        missing = [f for f in GUEST_FILES if not (destination / "guests" / name / f).is_file()]
        if missing:
            raise machine.error(f"capture from {name} lacks {missing}")


def fetch_folder(machine: RealXen, remote: str, destination: Path) -> None:
    data = machine.run_bytes(f"tar cf - -C {shlex.quote(remote)} .", timeout_s=300)
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(destination, filter="data")
