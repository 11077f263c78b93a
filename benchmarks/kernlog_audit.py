"""Kernel-log parsing in the audit path vs ``grep -c``, and a night's CPU vs SSH handshakes.

    python benchmarks/kernlog_audit.py [--size-mib 8] [--repeat 7] [--guests 200]
        [--no-ssh] [--repo DIR]

``--repo DIR`` times the parser of another checkout (before/after figures on the
same machine and the same logs).

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

So that the comparison is fair, the rest of what Dom0 spends on such a log is
printed too, measured over the same connection: receiving the 8 MiB through
paramiko (``cat`` of the log on the stand-in: decryption, MAC and paramiko's
packet handling) and the collector's decoding of the bytes into text. The parse
time includes its own encoding of that text back into bytes.
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
if "--repo" in sys.argv[:-1]:  # before xenaudit is imported
    sys.path.insert(0, sys.argv[sys.argv.index("--repo") + 1])

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


def _fallback_time(text: str, repeat: int, keep: int) -> tuple[float, float]:
    """As _parse_time, with the marker finder forced to the bytes.find fallback."""
    if hasattr(markers, "BYTES"):
        native, markers._FAST = markers.backend(), markers.BYTES
        try:
            return _parse_time(text, repeat, keep)
        finally:
            markers._FAST = native
    native, markers._FINDER = markers.finder(), markers.find_with_bytes  # older checkouts
    try:
        return _parse_time(text, repeat, keep)
    finally:
        markers._FINDER = native


def _ssh_cpu(count: int, log_text: str) -> tuple[float, float] | None:
    """Median CPU seconds of a paramiko handshake + login + channel against a stand-in
    sshd, and of receiving ``log_text`` (as the guest's kern.log) over one more channel."""
    try:
        import paramiko

        from tests.standin import Fleet, GuestSpec
    except ImportError:
        return None
    try:
        fleet = Fleet.start([GuestSpec(name="bench-handshake", kern_log=log_text)])
    except Exception as exc:  # not root, no sshd
        print(f"handshake: stand-in sshd unavailable ({exc})")
        return None
    try:
        guest = fleet.guests[0]
        key = paramiko.Ed25519Key.from_private_key_file(str(fleet.client_key))
        handshakes, transfers = [], []
        size = len(log_text.encode("utf-8"))
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
            transport = client.get_transport()
            assert transport is not None
            channel = transport.open_session()
            channel.close()
            handshakes.append(time.process_time() - start)
            start = time.process_time()
            channel = transport.open_session()
            channel.exec_command("cat /var/log/kern.log")
            received = 0
            while chunk := channel.recv(1 << 20):
                received += len(chunk)
            channel.close()
            transfers.append(time.process_time() - start)
            client.close()
            if received != size:
                print(f"transfer: received {received} bytes of {size}")
                return None
        handshakes.sort()
        transfers.sort()
        return handshakes[len(handshakes) // 2], transfers[len(transfers) // 2]
    finally:
        fleet.stop()


def _decode_cpu(raw: bytes, repeat: int) -> float:
    """Best CPU seconds of the collector's decoding of a section into text."""
    from xenaudit.collector.stream import _decode

    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        _decode(raw)
        best = min(best, time.process_time() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--guests", type=int, default=200)
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP_PER_KIND)
    parser.add_argument("--handshakes", type=int, default=15)
    parser.add_argument("--no-ssh", action="store_true")
    parser.add_argument("--repo", help="checkout whose parser is timed (default: this one)")
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
            fallback, _ = _fallback_time(text, args.repeat, args.keep)
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
        ordinary = (work / "ordinary.log").read_bytes()
        decode = _decode_cpu(ordinary, args.repeat)
        ssh = None if args.no_ssh else _ssh_cpu(args.handshakes, ordinary.decode("utf-8"))
        if ssh is not None:
            handshake, transfer = ssh
            print(
                f"per guest: SSH handshake {handshake * 1000:.1f} ms CPU; receiving the "
                f"{args.size_mib:g} MiB log through paramiko {transfer * 1000:.1f} ms; "
                f"decoding it to text (collector) {decode * 1000:.1f} ms"
            )
        for label, seconds in night.items():
            line = f"night of {args.guests} guests x {args.size_mib:g} MiB {label} logs: "
            line += f"parsing {seconds:6.2f} s CPU"
            if ssh is not None:
                total = ssh[0] * args.guests
                collect = (ssh[0] + ssh[1] + decode) * args.guests
                line += (
                    f", SSH handshakes {total:6.2f} s -> {seconds / total:.2f}x the handshakes;"
                    f" collection (handshake, transfer, decode) {collect:6.2f} s"
                    f" -> {seconds / collect:.2f}x"
                )
            print(line)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
