"""How report rendering scales: 100 and 1,000 domains in the same run.

Run from the repository root:

    .venv/bin/python benchmarks/render.py [--repeat N]

Prints, per output, the best time over N repeats for each fleet size and the
ratio between them. Ten times the domains should cost about ten times as much
(a ratio well above 10 means something grew faster than linearly).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.report_fixtures import fleet  # noqa: E402
from xenaudit.formats import write_formats  # noqa: E402
from xenaudit.formats.csv import render_summary  # noqa: E402
from xenaudit.formats.html import make_environment, render_html  # noqa: E402
from xenaudit.formats.json import dumps_report  # noqa: E402
from xenaudit.formats.prometheus import render_metrics  # noqa: E402
from xenaudit.report import AuditReport  # noqa: E402

SIZES = (100, 1000)


def stages(report: AuditReport, scratch: Path) -> dict[str, Callable[[], object]]:
    env = make_environment()
    return {
        "html": lambda: render_html(report, scratch, env),
        "json": lambda: dumps_report(report),
        "csv": lambda: render_summary(report),
        "prom": lambda: render_metrics(report),
        "all files": lambda: write_formats(report, scratch, ["all"]),
    }


def output_size(output: object) -> int:
    if isinstance(output, str | bytes):
        return len(output)
    return sum(p.stat().st_size for p in output)  # type: ignore[attr-defined]


def measure(
    reports: dict[int, AuditReport], repeat: int, scratch: Path
) -> dict[int, dict[str, tuple[float, int]]]:
    """Best seconds and output size per size and stage.

    Sizes are measured in turn inside each repeat, so a busy machine slows both
    alike instead of skewing the ratio.
    """
    plans = {}
    for n, report in reports.items():
        (scratch / str(n)).mkdir()
        plans[n] = stages(report, scratch / str(n))
    best: dict[int, dict[str, tuple[float, int]]] = {n: {} for n in reports}
    for _ in range(repeat):
        for stage in plans[SIZES[0]]:
            for n in reports:
                start = time.perf_counter()
                output = plans[n][stage]()
                seconds = time.perf_counter() - start
                previous = best[n].get(stage, (float("inf"), 0))[0]
                best[n][stage] = (min(previous, seconds), output_size(output))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repeats per measurement")
    args = parser.parse_args(argv)
    reports = {n: fleet(n) for n in SIZES}
    with tempfile.TemporaryDirectory(prefix="xenaudit-bench-") as tmp:
        render_html(reports[SIZES[0]], Path(tmp))  # warm the template cache and imports
        timings = measure(reports, args.repeat, Path(tmp))
    small, large = SIZES
    print(f"{'output':<10} {small:>6} domains {large:>7} domains   ratio   size at {large}")
    worst = 0.0
    for stage in timings[small]:
        t_small, _ = timings[small][stage]
        t_large, size = timings[large][stage]
        ratio = t_large / t_small if t_small > 0 else float("inf")
        worst = max(worst, ratio)
        print(
            f"{stage:<10} {t_small * 1000:>9.1f} ms {t_large * 1000:>11.1f} ms "
            f"{ratio:>7.1f}x {size / 1e6:>9.2f} MB"
        )
    print(f"worst ratio {worst:.1f} for {large // small}x the domains", end="")
    print(" (linear)" if worst <= (large / small) * 1.3 else " (GROWS FASTER THAN LINEAR)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
