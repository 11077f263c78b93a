"""Start-up time of the quick commands, as ratios against ``python -c pass``.

Every command runs as its own process, the way an admin or a script runs it:
through the installed console script (``.venv/bin/xenaudit``) and, for
``--version``, also as ``python -m xenaudit`` (which adds runpy).  The
baseline is the same interpreter running ``-c pass`` (site and the venv's .pth
files included), measured in the same run.  The measurements are interleaved
in rounds so that load from other processes hits all of them alike.  Three
ratios are printed: of median wall times (the one checked against the target),
of the fastest wall times, and of median CPU times (user + system).  On a
quiet machine they agree within a few tenths; on a busy one the wall medians
swing with the load and the CPU ratio is the steadier guide.

CFG is a corpus xl.cfg of 1 KB, LOG a kernel log of 3 KB with one page
allocation failure.

Bytecode is compiled once, by a first untimed run of every command, into a
scratch PYTHONPYCACHEPREFIX: an installed package has its .pyc files (pip
compiles them at install time), while a checkout run with
PYTHONDONTWRITEBYTECODE=1 would compile every module of xenaudit on each start.

A plain argparse program that answers --version is timed too: it shows how
much of every ratio is the standard library's argument parser itself.

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


# The least an argparse command line costs: importing argparse (with re, gettext
# and locale) and shutil (for the terminal width), and answering --version.
ARGPARSE = (
    "import argparse; p = argparse.ArgumentParser(prog='x'); "
    "p.add_argument('--version', action='version', version='x 1'); p.parse_args(['--version'])"
)


def checkout_script(repo: str) -> list[str]:
    """What the console script runs, with the xenaudit of another checkout."""
    code = (
        f"import sys; sys.path.insert(0, {repo!r}); from xenaudit.cli import main; sys.exit(main())"
    )
    return [sys.executable, "-c", code]


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
        ("xenaudit cfg show CFG", [*script, "cfg", "show", str(CFG)]),
        ("xenaudit cfg show --json CFG", [*script, "cfg", "show", "--json", str(CFG)]),
        ("xenaudit logscan LOG", [*script, "logscan", str(LOG)]),
        ("xenaudit logscan --json LOG", [*script, "logscan", "--json", str(LOG)]),
    ]
    return rows


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {errors.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30, help="runs of each command (default 30)")
    ap.add_argument(
        "--repo",
        action="append",
        default=[],
        help="also time the commands with the xenaudit of this checkout (repeatable: "
        "before/after figures in one run)",
    )
    args = ap.parse_args(argv)
    script = console_script()
    if script is None:
        print("no console script beside this interpreter: timing python -m xenaudit only")
        script = [sys.executable, "-m", "xenaudit"]
    metadata = [sys.executable, "-c", "import importlib.metadata"]
    baseline = ("python -c pass", [sys.executable, "-c", "pass"])
    floor = ("python: argparse --version (any argparse CLI)", [sys.executable, "-c", ARGPARSE])
    rows = [
        baseline,
        floor,
        *commands(script),
        ("python -c 'import importlib.metadata'", metadata),
    ]
    for repo in args.repo:
        name = Path(repo).name
        rows += [
            (f"[{name}] {label}", cmd)
            for label, cmd in commands(checkout_script(repo))
            if not label.startswith("python -m")
        ]
    walls: dict[str, list[float]] = {label: [] for label, _ in rows}
    cpus: dict[str, list[float]] = {label: [] for label, _ in rows}
    with tempfile.TemporaryDirectory(prefix="xenaudit-pyc-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for _label, cmd in rows:  # writes the bytecode; not counted
            _run(cmd, env)
        for _ in range(max(1, args.rounds)):
            for label, cmd in rows:
                wall, cpu = _run(cmd, env)
                walls[label].append(wall)
                cpus[label].append(cpu)

    median = statistics.median
    base_wall, base_min, base_cpu = (
        median(walls[baseline[0]]),
        min(walls[baseline[0]]),
        median(cpus[baseline[0]]),
    )
    print(
        f"{len(rows)} commands, {args.rounds} interleaved runs each. Baseline python -c pass: "
        f"wall median {base_wall * 1000:.1f} ms, min {base_min * 1000:.1f} ms, "
        f"CPU median {base_cpu * 1000:.1f} ms.\n"
        "Ratios against it: of the wall-time medians, of the fastest runs and of the CPU-time "
        f"medians.\nTarget: {TARGET}x, on the wall-time medians (see the docstring).\n"
    )
    print(f"{'command':<46} {'wall':>8} {'min':>8} {'CPU':>8} {'wall':>7} {'min':>7} {'CPU':>7}")
    worst = 0.0
    for label, _cmd in rows:
        wall, low, cpu = median(walls[label]), min(walls[label]), median(cpus[label])
        ratios = (wall / base_wall, low / base_min, cpu / base_cpu)
        mark = ""
        if label.startswith(("xenaudit", "python -m", "[")):
            worst = max(worst, ratios[0])
            mark = "" if ratios[0] <= TARGET else "  over target"
        print(
            f"{label:<46} {wall * 1000:6.1f}ms {low * 1000:6.1f}ms {cpu * 1000:6.1f}ms "
            + " ".join(f"{r:6.2f}x" for r in ratios)
            + mark
        )
    text = Path(script[0]).read_text(errors="replace") if script[0] != sys.executable else ""
    uses = [m for m in ("importlib.metadata", "pkg_resources") if m in text]
    print(
        f"\nconsole script {script[0]} imports: {', '.join(uses) or 'neither importlib.metadata'}"
        f"{'' if uses else ' nor pkg_resources'}"
    )
    print(f"slowest command: {worst:.2f}x python -c pass (wall-time medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
