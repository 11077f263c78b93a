"""How `xenaudit merge` scales: 50 and 500 Dom0 report folders of 20 domains each.

Run from the repository root:

    .venv/bin/python benchmarks/merge.py [--repeat N] [--domains 20]

Writes one Dom0 report folder with the real formats, copies it to 500 folders
(each with its own host name and run time in report.json), then merges the
first 50 and all 500 into fresh fleet folders, in turn within each repeat.
Prints the best wall time of each, the 500/50 ratio (linear time gives about
10) and the peak Python memory of one merge of each size, traced separately
(memory that does not grow with the fleet's reports gives a ratio near 1).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.report_fixtures import fleet  # noqa: E402
from xenaudit.fleet.merge import MergeOptions, merge_reports  # noqa: E402
from xenaudit.formats import write_formats  # noqa: E402

SIZES = (50, 500)


def make_inputs(root: Path, count: int, domains: int) -> list[Path]:
    template = root / "template"
    write_formats(fleet(domains, per_host=domains), template, ["all"])
    document = json.loads((template / "report.json").read_text())
    old_host = document["hosts"][0]["name"]
    start = datetime.now(UTC) - timedelta(hours=2)
    folders = []
    for i in range(count):
        folder = root / "in" / f"dom0-{i:04d}"
        shutil.copytree(template, folder)
        host = f"dom0-{i:04d}.example.org"
        for entry in document["hosts"]:
            entry["name"] = host
        for entry in document["domains"]:
            entry["host"] = host
            entry["name"] = entry["name"].split("@")[0] + f"@{i}"
        document["generated_at"] = (start + timedelta(seconds=i)).isoformat()
        (folder / "report.json").write_text(json.dumps(document, indent=2))
        folders.append(folder)
    assert old_host
    return folders


def run(inputs: list[Path], out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one merge (CPU time is immune to other load on the machine)."""
    shutil.rmtree(out, ignore_errors=True)
    started, cpu = time.perf_counter(), time.process_time()
    fleet_report, _ = merge_reports(inputs, out, MergeOptions())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(fleet_report.dom0s) == len(inputs) and not fleet_report.left_out
    return seconds, cpu


def peak_memory(inputs: list[Path], out: Path) -> int:
    shutil.rmtree(out, ignore_errors=True)
    tracemalloc.start()
    try:
        merge_reports(inputs, out, MergeOptions())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repeats per size")
    parser.add_argument("--domains", type=int, default=20, help="domains per Dom0")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="xenaudit-bench-merge-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        inputs = make_inputs(root, max(SIZES), args.domains)
        size = sum(p.stat().st_size for p in inputs[0].rglob("*") if p.is_file())
        print(
            f"{len(inputs)} Dom0 folders of {args.domains} domains ({size // 1024} KiB each) "
            f"written in {time.perf_counter() - started:.1f}s"
        )
        best = {n: float("inf") for n in SIZES}
        best_cpu = {n: float("inf") for n in SIZES}
        for _ in range(args.repeat):
            for n in SIZES:
                wall, cpu = run(inputs[:n], root / f"out-{n}")
                best[n], best_cpu[n] = min(best[n], wall), min(best_cpu[n], cpu)
        memory = {n: peak_memory(inputs[:n], root / f"out-{n}") for n in SIZES}
    small, large = SIZES
    print(f"\nmerge, best of {args.repeat}:")
    for n in SIZES:
        print(
            f"  {n:>4} Dom0s  wall {best[n]:6.2f}s  CPU {best_cpu[n]:6.2f}s  "
            f"({1000 * best_cpu[n] / n:5.1f} ms CPU per Dom0)  "
            f"peak Python memory {memory[n] / 2**20:5.1f} MiB"
        )
    linear = large / small
    print(f"  wall   {large}/{small} = {best[large] / best[small]:.2f}  (linear: {linear:g})")
    cpu_ratio = best_cpu[large] / best_cpu[small]
    print(f"  CPU    {large}/{small} = {cpu_ratio:.2f}  (linear: {linear:g})")
    per_dom0 = (memory[large] - memory[small]) / (large - small)
    print(
        f"  memory {large}/{small} = {memory[large] / memory[small]:.2f}  "
        f"(+{per_dom0 / 1024:.1f} KiB per extra Dom0 for its digest; one report folder is "
        f"{size // 1024} KiB on disk)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
