"""Kernel-log parsing in the audit path vs ``grep -c``, and a night's CPU vs SSH handshakes.

    python benchmarks/kernlog_audit.py [--size-mib 8] [--repeat 7] [--guests 200]
        [--no-ssh]

In one run, on logs of the per-guest cap (8 MiB by default) written by
benchmarks/kernlog_gen.py, one ordinary (a report every few thousand lines) and
one dense with reports (a storm: reports back to back):

* ``grep -c 'page allocation failure' FILE`` (best of --repeat, as a command);
  the logs: ordinary, a storm of page allocation failure reports ("dense"), and
  a storm with an OOM report every few failures ("dense-oom");
* ``parse_kernlog(text, keep_per_kind=…)`` on the decoded text, as the audit calls
  it for every guest (best of --repeat, in process);

and prints both times and the ratio (grep's time / parse time: 1.0 would be
grep's speed). Then the CPU of a night of --guests guests that each send such a
log, against the CPU of the same number of paramiko SSH handshakes (connect,
host-key check, public-key login, one channel) to a stand-in sshd on loopback
(tests/standin; needs root and OpenSSH's sshd, skip with --no-ssh).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from kernlog_gen import generate  # noqa: E402

from xenaudit.parsers import markers  # noqa: E402
from xenaudit.parsers.kernlog import DEFAULT_KEEP_PER_KIND, parse_kernlog  # noqa: E402
from xenaudit.parsers.markers import finder_name  # noqa: E402


def _grep_time(path: Path, repeat: int, sink: Path) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with sink.open("wb") as out:  # GNU grep stops early when writing to /dev/null
            subprocess.run(["grep", "-c", "page allocation failure", str(path)], stdout=out)
        best = min(best, time.perf_counter() - start)
    return best


def _parse_time(text: str, repeat: int, keep: int) -> tuple[float, float]:
    """Best wall time and best CPU time of one audit-path parse."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        parse_kernlog(text, keep_per_kind=keep)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def _handshake_cpu(count: int) -> float | None:
    """CPU seconds per paramiko handshake + login + channel against a stand-in sshd."""
    try:
        import paramiko

        from tests.standin import Fleet, GuestSpec
    except ImportError:
        return None
    try:
        fleet = Fleet.start([GuestSpec(name="bench-handshake")])
    except Exception as exc:  # not root, no sshd
        print(f"handshake: stand-in sshd unavailable ({exc})")
        return None
    try:
        guest = fleet.guests[0]
        key = paramiko.Ed25519Key.from_private_key_file(str(fleet.client_key))
        samples = []
        for _ in range(count):
            client = paramiko.SSHClient()
            client.load_host_keys(str(fleet.known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            start = time.process_time()
            client.connect(
                "127.0.0.1",
                port=guest.port,
                username=guest.spec.login_user,
                pkey=key,
                allow_agent=False,
                look_for_keys=False,
                timeout=10,
            )
            channel = client.get_transport().open_session()  # type: ignore[union-attr]
            channel.close()
            samples.append(time.process_time() - start)
            client.close()
        samples.sort()
        return samples[len(samples) // 2]
    finally:
        fleet.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--guests", type=int, default=200)
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP_PER_KIND)
    parser.add_argument("--handshakes", type=int, default=15)
    parser.add_argument("--no-ssh", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("grep") is None:
        print("grep not found", file=sys.stderr)
        return 2
    size = int(args.size_mib * (1 << 20))
    print(f"marker finder: {finder_name()}; events kept per kind: {args.keep}")
    work = Path(tempfile.mkdtemp(prefix="xenaudit-bench-"))
    night: dict[str, float] = {}
    try:
        logs = {
            "ordinary": generate(work / "ordinary.log", size),
            # A storm: page allocation failure reports back to back (what grep -c counts).
            "dense": generate(
                work / "dense.log", size, page_alloc_every=2, oom_every=4000, balloon_every=400
            ),
            # The same with an OOM report (and its task list) every few reports.
            "dense-oom": generate(
                work / "dense-oom.log", size, page_alloc_every=2, oom_every=50, balloon_every=40
            ),
        }
        for label, expected in logs.items():
            path = work / f"{label}.log"
            text = path.read_text(encoding="utf-8", errors="replace")
            grep = _grep_time(path, args.repeat, work / "grep.out")
            wall, cpu = _parse_time(text, args.repeat, args.keep)
            native = markers.finder()
            markers._FINDER = markers.find_with_bytes
            try:
                fallback, _ = _parse_time(text, args.repeat, args.keep)
            finally:
                markers._FINDER = native
            log = parse_kernlog(text, keep_per_kind=args.keep)
            found = log.counts.by_kind() if log.counts else {}
            ok = all(found.get(k, 0) == n for k, n in expected.counts.items())
            mb = path.stat().st_size / 1e6
            print(
                f"{label:9s} {mb:5.1f} MB, {sum(expected.counts.values()):5d} events "
                f"({'counted exactly' if ok else 'COUNT MISMATCH'}, {len(log.events)} kept): "
                f"grep -c {grep * 1000:6.1f} ms, parse {wall * 1000:6.1f} ms "
                f"-> {grep / wall:.2f} of grep's speed "
                f"(with bytes.find: {fallback * 1000:.1f} ms, {grep / fallback:.2f})"
            )
            night[label] = cpu * args.guests
            if not ok:
                return 1
        handshake = None if args.no_ssh else _handshake_cpu(args.handshakes)
        for label, seconds in night.items():
            line = f"night of {args.guests} guests x {args.size_mib:g} MiB {label} logs: "
            line += f"parsing {seconds:6.2f} s CPU"
            if handshake is not None:
                total = handshake * args.guests
                line += (
                    f", SSH handshakes {total:6.2f} s CPU ({handshake * 1000:.1f} ms each)"
                    f" -> parsing is {seconds / total:.2f}x the handshakes"
                )
            print(line)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
