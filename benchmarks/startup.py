"""Start-up time of the quick commands, as ratios against ``python -c pass``.

Every command runs as its own process, the way an admin or a script runs it:
through the installed console script (``.venv/bin/xenaudit``) and, for
``--version``, also as ``python -m xenaudit`` (which adds runpy).  The
baseline is the same interpreter running ``-c pass`` (site and the venv's .pth
files included), measured in the same run.  The measurements are interleaved
in rounds so that load from other processes hits all of them alike; the
ratio is taken on medians.

Bytecode is compiled once, by a first untimed run of every command, into a
scratch PYTHONPYCACHEPREFIX: an installed package has its .pyc files (pip
compiles them at install time), while a checkout run with
PYTHONDONTWRITEBYTECODE=1 would compile every module of xenaudit on each start.

A console script that imported ``importlib.metadata`` (as the entry-point
wrappers of older setuptools did) would pay for it on every command; the
script is inspected and the cost of that import is printed for comparison.

    .venv/bin/python benchmarks/startup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 2.5
CFG = REPO / "tests" / "corpus" / "xlcfg_xen_xlexample.hvm"
LOG = REPO / "tests" / "corpus" / "pagealloc_2.6.32-358.el6_redhat_swapper_order1.log"


def console_script() -> list[str] | None:
    """The console script next to this interpreter, or None when not installed."""
    script = Path(sys.executable).parent / "xenaudit"
    return [str(script)] if script.is_file() else None


def commands(script: list[str]) -> list[tuple[str, list[str]]]:
    module = [sys.executable, "-m", "xenaudit"]
    rows: list[tuple[str, list[str]]] = [
        ("xenaudit --version", [*script, "--version"]),
        ("python -m xenaudit --version", [*module, "--version"]),
        ("xenaudit --help", [*script, "--help"]),
    ]
    for name in ("audit", "domains", "logscan", "cfg", "apply"):
        rows.append((f"xenaudit {name} --help", [*script, name, "--help"]))
    for name in ("show", "set", "lint"):
        rows.append((f"xenaudit cfg {name} --help", [*script, "cfg", name, "--help"]))
    rows += [
        (f"xenaudit cfg show {CFG.name}", [*script, "cfg", "show", str(CFG)]),
        (f"xenaudit cfg show --json {CFG.name}", [*script, "cfg", "show", "--json", str(CFG)]),
        (f"xenaudit logscan {LOG.name}", [*script, "logscan", str(LOG)]),
        (f"xenaudit logscan --json {LOG.name}", [*script, "logscan", "--json", str(LOG)]),
    ]
    return rows


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace')}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30, help="runs of each command (default 30)")
    args = ap.parse_args(argv)
    script = console_script()
    if script is None:
        print("no console script beside this interpreter: timing python -m xenaudit only")
        script = [sys.executable, "-m", "xenaudit"]
    metadata = [sys.executable, "-c", "import importlib.metadata"]
    baseline = ("python -c pass", [sys.executable, "-c", "pass"])
    rows = [baseline, *commands(script), ("python -c 'import importlib.metadata'", metadata)]
    samples: dict[str, list[float]] = {label: [] for label, _ in rows}
    with tempfile.TemporaryDirectory(prefix="xenaudit-pyc-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for _label, cmd in rows:  # writes the bytecode; not counted
            _time(cmd, env)
        for _ in range(max(1, args.rounds)):
            for label, cmd in rows:
                samples[label].append(_time(cmd, env))

    base = statistics.median(samples[baseline[0]])
    print(
        f"{len(samples)} commands, {args.rounds} interleaved runs each; ratio = median / "
        f"median of python -c pass ({base * 1000:.1f} ms); target {TARGET}x\n"
    )
    print(f"{'command':<58} {'median':>9} {'min':>8} {'ratio':>7}")
    worst = 0.0
    for label, _cmd in rows:
        median = statistics.median(samples[label])
        ratio = median / base
        mark = ""
        if label.startswith(("xenaudit", "python -m")):
            worst = max(worst, ratio)
            mark = "" if ratio <= TARGET else "  over target"
        print(
            f"{label:<58} {median * 1000:7.1f}ms {min(samples[label]) * 1000:6.1f}ms "
            f"{ratio:6.2f}x{mark}"
        )
    text = Path(script[0]).read_text(errors="replace") if script[0] != sys.executable else ""
    uses = [m for m in ("importlib.metadata", "pkg_resources") if m in text]
    print(
        f"\nconsole script {script[0]} imports: {', '.join(uses) or 'neither importlib.metadata'}"
        f"{'' if uses else ' nor pkg_resources'}"
    )
    print(f"slowest command: {worst:.2f}x python -c pass")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
