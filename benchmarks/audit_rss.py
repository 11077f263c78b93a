"""Peak memory of an audit whatever the guests send: hostile 8 MiB logs vs healthy guests.

    python benchmarks/audit_rss.py [--guests 200] [--hostile 20] [--small 4]
        [--log-mib 8]

Builds snapshot folders from the bundled demo fleet's guests, cloned under new
names onto one host (the xl listing, xl.conf and xl info are the demo's): a
healthy fleet, whose guests send their ordinary kernel logs, and the same fleet
in which --hostile guests send the kernel-log cap of page-allocation-failure
reports instead. Each is replayed with ``xenaudit audit --from-snapshots`` in its
own process, and that process's peak RSS (ru_maxrss from wait4) is printed with
the ratio hostile / healthy. The same is done for --small guests of which all
are hostile against as many healthy ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLEET = REPO / "xenaudit" / "demo" / "fleet"
HOST = "xen-demo"
TEMPLATES = ("web-frontend", "db-primary", "cache-node", "monitor", "build-runner")


def _storm(size: int) -> str:
    """Page-allocation-failure reports back to back, as a storming guest prints them."""
    report = (FLEET / "web-frontend" / "kernlog").read_text().splitlines()
    start = next(i for i, line in enumerate(report) if "page allocation failure" in line)
    body = report[start:]
    lines: list[str] = []
    total = 0
    n = 0
    while total < size:
        for line in body:
            stamp, _, text = line.partition("] ")
            line = f"[{100000 + n / 1000:12.6f}] {text}" if stamp.startswith("[") else line
            lines.append(line)
            total += len(line) + 1
        n += 1
    return "\n".join(lines)[:size] + "\n"


def build(root: Path, guests: int, hostile: int, log_bytes: int) -> Path:
    """A snapshots folder with ``guests`` guests, the first ``hostile`` storming."""
    snaps = root / "snapshots"
    hyper = snaps / "_hypervisor" / HOST
    hyper.mkdir(parents=True)
    for name in ("host.json", "xl-info.txt", "xl.conf"):
        shutil.copy(FLEET / "_hypervisor" / HOST / name, hyper / name)
    listing = json.loads((FLEET / "_hypervisor" / HOST / "xl-list-l.json").read_text())
    by_name = {d["config"]["c_info"]["name"]: d for d in listing}
    domains = [d for d in listing if d["domid"] == 0]
    rows = ["Name                                        ID   Mem VCPUs\tState\tTime(s)"]
    rows.append("Domain-0                                     0  2048     2     r-----  812331.2")
    storm = _storm(log_bytes) if hostile else ""
    for index in range(guests):
        template = TEMPLATES[index % len(TEMPLATES)]
        name = f"guest{index:04d}"
        entry = json.loads(json.dumps(by_name[template]))
        entry["domid"] = 100 + index
        entry["config"]["c_info"]["name"] = name
        domains.append(entry)
        mem = entry["config"]["b_info"]["target_memkb"] // 1024
        rows.append(f"{name:<44}{100 + index:>2}{mem:>6}     1     -b----     100.0")
        folder = snaps / name
        shutil.copytree(FLEET / template, folder)
        meta = json.loads((folder / "meta.json").read_text())
        meta["domain"] = name
        (folder / "meta.json").write_text(json.dumps(meta))
        if index < hostile:
            (folder / "kernlog").write_text(storm)
    (hyper / "xl-list-l.json").write_text(json.dumps(domains))
    (hyper / "xl-list.txt").write_text("\n".join(rows) + "\n")
    return snaps


def peak_rss_kib(snaps: Path, out: Path) -> tuple[int, float, int]:
    """Peak RSS (KiB), wall seconds and exit code of one replayed audit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "xenaudit",
        "audit",
        "--from-snapshots",
        str(snaps),
        "-o",
        str(out),
        "-q",
        "--state-dir",
        str(out.parent / (out.name + "-state")),
    ]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss, time.perf_counter() - start, process.returncode


def compare(work: Path, label: str, guests: int, hostile: int, log_bytes: int) -> float:
    healthy = build(work / f"{label}-healthy", guests, 0, log_bytes)
    storming = build(work / f"{label}-hostile", guests, hostile, log_bytes)
    results = {}
    for kind, snaps in (("healthy", healthy), ("hostile", storming)):
        rss, wall, code = peak_rss_kib(snaps, work / f"{label}-{kind}-out")
        results[kind] = rss
        print(
            f"{label}: {guests} guests, {hostile if kind == 'hostile' else 0} sending "
            f"{log_bytes >> 20} MiB storms: peak RSS {rss / 1024:7.1f} MiB, "
            f"{wall:5.1f} s, exit {code}"
        )
    ratio = results["hostile"] / results["healthy"]
    print(f"{label}: peak RSS hostile / healthy = {ratio:.2f}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=200)
    parser.add_argument("--hostile", type=int, default=20)
    parser.add_argument("--small", type=int, default=4)
    parser.add_argument("--log-mib", type=float, default=8.0)
    args = parser.parse_args(argv)
    log_bytes = int(args.log_mib * (1 << 20))
    work = Path(tempfile.mkdtemp(prefix="xenaudit-rss-"))
    try:
        small = compare(work, "small", args.small, args.small, log_bytes)
        fleet = compare(work, "fleet", args.guests, args.hostile, log_bytes)
        return 0 if small <= 1.5 and fleet <= 1.5 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
