"""Time our xl.cfg parser (and memory edit) against libxlutil on the corpus.

Every corpus xl.cfg is parsed N times (default 1,000) with our parser, parsed
and edited (``memory`` set, which re-parses to verify the result) N times, and
parsed N times by libxlutil through ctypes (init + readdata + destroy).

    .venv/bin/python benchmarks/cfg_parse.py [--iterations N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.libxlutil import LibXlutil, available  # noqa: E402
from xenaudit.xlcfg import parse, set_value  # noqa: E402


def corpus_files() -> list[tuple[str, bytes]]:
    root = REPO / "tests" / "corpus"
    rows = (line.split("\t") for line in (root / "MANIFEST.tsv").read_text().splitlines())
    names = sorted(r[0] for r in rows if len(r) > 1 and r[1] == "xlcfg")
    return [(n, (root / n).read_bytes()) for n in names]


def _run(files: list[tuple[str, bytes]], n: int, fn: Callable[[bytes], object]) -> float:
    start = time.perf_counter()
    for _name, data in files:
        for _ in range(n):
            fn(data)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument(
        "--rounds",
        type=int,
        default=20,
        help="interleave the three measurements in this many rounds, so that load"
        " from other processes hits all of them alike",
    )
    args = ap.parse_args(argv)
    files = corpus_files()
    n, rounds = args.iterations, max(1, args.rounds)
    size = sum(len(d) for _, d in files)
    print(f"{len(files)} corpus xl.cfg files, {size} bytes, {n} iterations each\n")

    for _name, data in files:  # every file must parse before timing anything
        parse(data)
    lib = LibXlutil() if available() else None
    if lib is not None:
        for name, data in files:
            if lib.readdata_rc(data, name) != 0:
                raise SystemExit(f"libxlutil rejects {name}")

    def edit(data: bytes) -> object:
        return set_value(parse(data), "memory", 4096)

    names = ("parse", "edit", "xen") if lib is not None else ("parse", "edit")
    functions: dict[str, Callable[[bytes], object]] = {"parse": parse, "edit": edit}
    if lib is not None:
        functions["xen"] = lib.readdata_rc
    per_round = [n // rounds + (1 if r < n % rounds else 0) for r in range(rounds)]
    # per name: seconds per file of each round
    samples: dict[str, list[float]] = {name: [] for name in names}
    for k in per_round:
        if k == 0:
            continue
        for name in names:
            samples[name].append(_run(files, k, functions[name]) / (k * len(files)))

    count = n * len(files)
    labels = {
        "parse": "ours: parse",
        "edit": "ours: parse + set memory",
        "xen": "libxlutil: init+readdata+destroy",
    }
    print(f"{'':<34} {'total':>9}  {'mean':>9}  {'fastest round':>13}")
    for name in names:
        total = sum(t * (k * len(files)) for t, k in zip(samples[name], per_round, strict=False))
        print(
            f"{labels[name]:<34} {total:7.3f} s  {total / count * 1e6:6.1f} us  "
            f"{min(samples[name]) * 1e6:10.1f} us"
        )
    if lib is None:
        print("\nlibxlutil not installed: no comparison")
        return 0
    print("\nratios against libxlutil's parse (mean; fastest round, steadier on a busy machine):")
    for name, label in (("parse", "parse"), ("edit", "parse + checked edit")):
        mean = statistics.mean(samples[name]) / statistics.mean(samples["xen"])
        fastest = min(samples[name]) / min(samples["xen"])
        print(f"  ours {label:<22} {mean:5.1f}x   {fastest:5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
