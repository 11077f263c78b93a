"""Collection speed on a stand-in fleet: xenaudit vs Ansible vs bare OpenSSH logins.

Starts N stand-in guests (real sshd on 127.0.0.1, see tests/standin) and, in
the same run, measures with the same parallelism:

  floor     OpenSSH's client running `true` on every guest (xargs -P),
            host key checking on: the cost of logins alone;
  xenaudit  SshCollector reading every source of every guest;
  ansible   `ansible all -m raw -a '<the same reads>' -f <forks>`, host key
            checking on against the same known_hosts.

Each is run --repeat times, interleaved, and the medians and their ratios to
the floor are printed. Needs root and OpenSSH's sshd (like the sshd tests).
Installs ansible-core into the running virtualenv with pip when `ansible` is
missing (skip that part with --no-ansible).

    .venv/bin/python benchmarks/fleet.py [--guests 50] [--concurrency 16]
        [--repeat 3] [--no-ansible] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.standin import Fleet, GuestSpec  # noqa: E402
from xenaudit.collector.ssh import SshCollector  # noqa: E402

#: What Ansible runs: the same sources the xenaudit probe reads.
RAW_READS = (
    "uname -r; cat /proc/meminfo /proc/buddyinfo /proc/vmstat /proc/pressure/memory "
    "/proc/slabinfo; grep -H '' /proc/sys/vm/*; "
    "cat /sys/devices/system/xen_memory/xen_memory0/target_kb "
    "/sys/devices/system/xen_memory/xen_memory0/info/current_kb; "
    "ps -eo pid,comm,rss,vsz --sort=-rss | head -n 30; dmesg | tail -c 8388609"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-ansible", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile one xenaudit run")
    args = parser.parse_args(argv)

    ansible = None if args.no_ansible else ensure_ansible()
    specs = [GuestSpec(f"guest{i:03d}") for i in range(args.guests)]
    started = time.perf_counter()
    with Fleet.start(specs) as fleet, tempfile.TemporaryDirectory() as scratch:
        print(f"{args.guests} stand-in guests up in {time.perf_counter() - started:.1f}s")
        work = Path(scratch)
        runs: dict[str, Callable[[], float]] = {
            "floor": lambda: run_floor(fleet, args.concurrency, work),
            "floor-c25519": lambda: run_floor(
                fleet, args.concurrency, work, ["-o", "KexAlgorithms=curve25519-sha256"]
            ),
            "xenaudit": lambda: run_xenaudit(fleet, args.concurrency),
        }
        if ansible is not None:
            runs["ansible"] = lambda: run_ansible(fleet, args.concurrency, ansible, work)
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[CpuSample]] = {name: [] for name in runs}
        for round_no in range(args.repeat):
            for name, run in runs.items():
                before = cpu_sample(fleet)
                seconds = run()
                settle(fleet, work)
                used = cpu_sample(fleet).minus(before)
                cpu[name].append(used)
                times[name].append(seconds)
                print(
                    f"  round {round_no + 1}: {name:<14} {seconds:6.2f}s   CPU: {used}", flush=True
                )
        report(times, cpu, args)
        if args.profile:
            profile_xenaudit(fleet, args.concurrency)
    return 0


def report(
    times: dict[str, list[float]], cpu: dict[str, list[CpuSample]], args: argparse.Namespace
) -> None:
    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu_total = {name: statistics.median(c.client + c.guests for c in cpu[name]) for name in cpu}
    floor = medians["floor"]
    print(
        f"\n{args.guests} guests, {args.concurrency} in parallel, median of {args.repeat} "
        f"(on {os.cpu_count()} CPUs)"
    )
    print(f"  {'':<14} {'wall':>7}  {'vs floor':>8}   {'CPU':>6}  {'vs floor':>8}")
    for name, seconds in medians.items():
        print(
            f"  {name:<14} {seconds:6.2f}s  {seconds / floor:7.2f}x   {cpu_total[name]:5.2f}s"
            f"  {cpu_total[name] / cpu_total['floor']:7.2f}x"
        )
    if "ansible" in medians:
        print(f"  xenaudit / ansible = {medians['xenaudit'] / medians['ansible']:.2f}")


class CpuSample:
    """CPU seconds used on the client side (this process and its finished children) and by
    the guests (each stand-in sshd with every session and probe command it reaped).

    Both are immune to unrelated load on the machine, unlike wall time.
    """

    def __init__(self, client: float, guests: float) -> None:
        self.client, self.guests = client, guests

    def minus(self, other: CpuSample) -> CpuSample:
        return CpuSample(self.client - other.client, self.guests - other.guests)

    def __str__(self) -> str:
        return f"client {self.client:5.2f}s + guests {self.guests:5.2f}s"


def settle(fleet: Fleet, work: Path) -> None:
    """End leftover connections (Ansible's ControlPersist masters) and wait until every
    guest's sshd has reaped its sessions, so their CPU is counted in this round."""
    control_dir = work / "ansible-home" / "cp"
    if control_dir.is_dir():
        for control in control_dir.iterdir():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={control}", "-O", "exit", "unused"],
                capture_output=True,
                check=False,
            )
    limit = time.monotonic() + 30
    while time.monotonic() < limit:
        busy = [g for g in fleet.guests if _children(g.process.pid)]
        if not busy:
            return
        time.sleep(0.05)


def _children(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            return children.read().strip()
    except OSError:
        return ""


def cpu_sample(fleet: Fleet) -> CpuSample:
    times = os.times()
    client = times.user + times.system + times.children_user + times.children_system
    tick = os.sysconf("SC_CLK_TCK")
    guests = 0
    for guest in fleet.guests:
        with open(f"/proc/{guest.process.pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # utime stime cutime cstime are fields 14-17 of proc(5), 12-15 after the comm.
        guests += sum(int(v) for v in fields[11:15])
    return CpuSample(client, guests / tick)


# --- the contenders ------------------------------------------------------------


def run_floor(fleet: Fleet, concurrency: int, work: Path, extra: list[str] | None = None) -> float:
    ports = work / "ports"
    ports.write_text("".join(f"{g.port}\n" for g in fleet.guests))
    ssh = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={fleet.known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-i",
        str(fleet.client_key),
        *(extra or []),
        "-p",
    ]
    command = ["xargs", "-P", str(concurrency), "-I", "{}", *ssh, "{}", "root@127.0.0.1", "true"]
    started = time.perf_counter()
    with open(ports, "rb") as stdin:
        result = subprocess.run(command, stdin=stdin, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"floor run failed: {result.stderr.decode(errors='replace')[-2000:]}")
    return seconds


def run_xenaudit(fleet: Fleet, concurrency: int) -> float:
    collector = SshCollector(
        fleet.settings(concurrency=concurrency), global_known_hosts=None, use_agent=False
    )
    started = time.perf_counter()
    snaps = list(collector.collect(fleet.targets()))
    seconds = time.perf_counter() - started
    bad = [f"{s.domain}: {s.status}: {s.error}" for s in snaps if s.status != "ok"]
    if bad or len(snaps) != len(fleet.guests):
        raise SystemExit("xenaudit run failed:\n" + "\n".join(bad))
    return seconds


def run_ansible(fleet: Fleet, concurrency: int, ansible: str, work: Path) -> float:
    inventory = work / "inventory.ini"
    common = (
        f"-o UserKnownHostsFile={fleet.known_hosts} -o GlobalKnownHostsFile=/dev/null "
        "-o StrictHostKeyChecking=yes"
    )
    lines = ["[guests]"]
    lines += [
        f"{g.name} ansible_host=127.0.0.1 ansible_port={g.port} ansible_user=root"
        for g in fleet.guests
    ]
    lines += [
        "[guests:vars]",
        f"ansible_ssh_private_key_file={fleet.client_key}",
        f"ansible_ssh_common_args='{common}'",
    ]
    inventory.write_text("\n".join(lines) + "\n")
    home = work / "ansible-home"
    shutil.rmtree(home, ignore_errors=True)
    config = work / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = dict(
        os.environ,
        ANSIBLE_HOST_KEY_CHECKING="True",
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        # A fresh control socket folder per run: no connection reuse between rounds.
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(home / "cp"),
        # Ansible's defaults, not whatever ansible.cfg the machine has.
        ANSIBLE_CONFIG=str(config),
    )
    command = [ansible, "all", "-i", str(inventory), "-f", str(concurrency), "-m", "raw"]
    command += ["-a", RAW_READS, "-o"]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    out = result.stdout.decode(errors="replace")
    ok = sum(1 for line in out.splitlines() if "| CHANGED" in line or "| SUCCESS" in line)
    if result.returncode != 0 or ok != len(fleet.guests):
        tail = (out + result.stderr.decode(errors="replace"))[-3000:]
        raise SystemExit(f"ansible run failed ({ok} ok):\n{tail}")
    return seconds


def ensure_ansible() -> str:
    """The `ansible` next to this interpreter, installing ansible-core with pip if needed."""
    candidate = Path(sys.executable).parent / "ansible"
    if not candidate.exists():
        print("installing ansible-core into the virtualenv (pip install ansible-core)...")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "ansible-core"], check=True
        )
    return str(candidate)


def profile_xenaudit(fleet: Fleet, concurrency: int) -> None:
    """Where the collector's own CPU goes, summed over every thread (workers, paramiko's).

    cProfile only watches the thread that enables it, so each new thread
    starts its own profiler (timed with thread CPU time, not wall time).
    """
    profiles: list[cProfile.Profile] = []

    def start_in_thread(*_args: object) -> None:
        sys.setprofile(None)
        profiler = cProfile.Profile(timer=time.thread_time)
        profiles.append(profiler)
        profiler.enable()

    threading.setprofile(start_in_thread)
    main_profiler = cProfile.Profile(timer=time.thread_time)
    main_profiler.enable()
    try:
        run_xenaudit(fleet, concurrency)
    finally:
        main_profiler.disable()
        threading.setprofile(None)
    for profiler in profiles:
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(main_profiler, *profiles, stream=out)
    # Only our code and the libraries doing SSH work; idle waits in the pool are noise.
    stats.sort_stats("tottime").print_stats(r"paramiko|xenaudit|cryptography|nacl|hmac", 20)
    print(f"\nCPU profile of one xenaudit run, {len(profiles) + 1} threads, by own time:")
    print(out.getvalue())


if __name__ == "__main__":
    raise SystemExit(main())
