"""Benchmark ``xenaudit logscan --json`` against ``grep -c`` on a large kern.log.

    python benchmarks/logscan.py [--size-mb 200] [--repeat 3] [--keep DIR] [--repo DIR]

Builds a realistic log (benchmarks/kernlog_gen.py) in a temporary directory,
warms the page cache, then times, in the same run and on the same file:

* ``grep -c 'page allocation failure' FILE > out`` (fixed-string search, the
  floor for "find the lines that matter"; its output goes to a file because GNU
  grep stops at the first match when writing to /dev/null);
* ``python -m xenaudit.logscan --json FILE > /dev/null``, with its
  default parallelism and with ``-j 1``, and the installed ``xenaudit logscan``
  when it exists (same scan, plus the main CLI's start-up);

and prints, best of --repeat runs, each one's wall time and CPU time (user +
system of the process and its children) with the ratios against grep's: of the
wall times, and of the CPU times (the steadier of the two on a shared machine,
and the fair one for the parallel default, which uses every core). It also
checks that logscan reported exactly the events the generator planted.
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
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from kernlog_gen import generate  # noqa: E402

_FINDER_PROBE = "from xenaudit.parsers.markers import finder_name as f; print(f())"


def _installed_cli() -> str | None:
    """The installed ``xenaudit`` entry point, when there is one that knows logscan."""
    installed = Path(sys.executable).with_name("xenaudit")
    if not installed.exists():
        return None
    probe = subprocess.run([str(installed), "logscan", "--help"], capture_output=True, check=False)
    return str(installed) if probe.returncode == 0 else None


def _best_time(
    command: list[str], repeat: int, env: dict[str, str], sink_path: str
) -> tuple[float, float, int]:
    """Best wall and best CPU time over ``repeat`` runs with stdout sent to ``sink_path``.

    GNU grep notices when its output is /dev/null and stops at the first match,
    so grep must write to a real file to do the whole job.
    """
    best = best_cpu = float("inf")
    code = 0
    for _ in range(repeat):
        start = time.perf_counter()
        with open(sink_path, "wb") as sink:
            proc = subprocess.Popen(command, stdout=sink, env=env)
            _pid, status, usage = os.wait4(proc.pid, 0)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, usage.ru_utime + usage.ru_stime)
        code = os.waitstatus_to_exitcode(status)
    return best, best_cpu, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=200.0, help="log size (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; best is kept")
    parser.add_argument("--keep", type=Path, help="write the log here and keep it")
    parser.add_argument(
        "--repo",
        type=Path,
        default=REPO,
        help="time the xenaudit of this checkout (e.g. an older one, for before/after "
        "figures on the same machine and file); default: this one",
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="xenaudit-bench-"))
    try:
        target = args.keep or workdir / "kern.log"
        target.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        expected = generate(target, int(args.size_mb * 1_000_000))
        size = target.stat().st_size
        print(
            f"generated {target} : {size / 1e6:.1f} MB, {expected.lines} lines, "
            f"events {dict(sorted(expected.counts.items()))} "
            f"in {time.perf_counter() - started:.1f}s"
        )
        with target.open("rb") as warm:  # page cache, so both tools read from memory
            while warm.read(1 << 24):
                pass

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.repo), env.get("PYTHONPATH")]))
        env.setdefault("LC_ALL", "C")

        module = [sys.executable, "-m", "xenaudit.logscan"]
        command = [*module, "--json", str(target)]
        check = subprocess.run(command, capture_output=True, env=env, check=False)
        found = Counter(json.loads(line)["kind"] for line in check.stdout.splitlines())
        ok = dict(found) == expected.counts
        print(f"logscan found {dict(sorted(found.items()))}: {'as planted' if ok else 'MISMATCH'}")
        finder = subprocess.run(
            [sys.executable, "-c", _FINDER_PROBE],
            capture_output=True,
            env=env,
            text=True,
            check=False,
        ).stdout.strip()
        print(f"marker finder: {finder or 'bytes.find (before markers.py)'}")
        start_cpu = _best_time([sys.executable, "-c", "pass"], 5, env, os.devnull)[1]
        print(f"python -c pass: {start_cpu:.3f}s CPU (start-up alone)")

        grep = shutil.which("grep")
        if grep is None:
            print("grep not found", file=sys.stderr)
            return 2
        grep_out = str(workdir / "grep.out")
        grep_cmd = [grep, "-c", "page allocation failure", str(target)]
        markers = ["page allocation failure", "invoked oom-killer", "Killed process", "balloon"]
        grep_all = [grep, "-c", "-F", *(arg for m in markers for arg in ("-e", m)), str(target)]
        runs = [
            ("grep -c 'page allocation failure'", grep_cmd, grep_out),
            ("grep -c -F (the 4 logscan markers)", grep_all, grep_out),
            ("python -m ...logscan --json", command, os.devnull),
            (
                "python -m ...logscan --json -j 1",
                [*module, "--json", "-j", "1", str(target)],
                os.devnull,
            ),
        ]
        fallback_env = dict(env, XENAUDIT_MARKER_FINDER="bytes.find")
        runs.append(
            (
                "python -m ...logscan --json (bytes.find)",
                command,
                os.devnull,
            )
        )
        installed = _installed_cli() if args.repo == REPO else None
        if installed is not None:
            # Same scan, plus the start-up of the whole CLI (every subcommand's imports).
            cli = [installed, "logscan", "--json", str(target)]
            runs.append(("xenaudit logscan --json", cli, os.devnull))
        mb = size / 1e6
        times: dict[str, tuple[float, float]] = {}
        code = 0
        for label, argv, sink in runs:
            run_env = fallback_env if "(bytes.find)" in label else env
            elapsed, cpu, status = _best_time(argv, args.repeat, run_env, sink)
            times[label] = (elapsed, cpu)
            code = code or (status if "logscan" in label else 0)
            print(f"{label:40s}: wall {elapsed:6.3f}s ({mb / elapsed:7.1f} MB/s), CPU {cpu:6.3f}s")
        grep_wall, grep_cpu = times[runs[0][0]]
        for label, _, _ in runs[2:]:
            wall, cpu = times[label]
            print(
                f"ratio {label} / grep -c: {grep_wall / wall:.2f} of grep's throughput "
                f"(wall), {grep_cpu / cpu:.2f} (CPU)"
            )
        return 0 if ok and code == 0 else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
