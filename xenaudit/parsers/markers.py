"""Find the few lines of a large log that can matter, at memory speed.

Every event header contains one of a handful of fixed strings (kernpatterns.MARKERS).
Locating them is the only work done on every byte of a log, so it decides how fast
a scan is. Two interchangeable finders return the same hits:

* Hyperscan (the ``hyperscan`` package, Intel's multi-pattern matcher) finds all
  markers in one SIMD pass, about four times faster than the fallback;
* the fallback runs ``bytes.find`` once per marker (CPython's two-way search with
  a skip table) and merges the results.

The fallback is used when Hyperscan cannot be imported (no wheel for the platform,
or a CPU without the instructions it needs); results are identical, which the
tests check by running both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from xenaudit.parsers.kernpatterns import MARKERS_BYTES

#: A hit: (offset of the marker in the buffer, index into MARKERS_BYTES).
Hit = tuple[int, int]
Finder = Callable[[Any, int, int], list[Hit]]


def find_with_bytes(buf: Any, begin: int, end: int) -> list[Hit]:
    """Every marker occurrence in buf[begin:end], by ``find`` per marker, sorted."""
    hits: list[Hit] = []
    append = hits.append
    find = buf.find
    for index, marker in enumerate(MARKERS_BYTES):
        at = find(marker, begin, end)
        while at >= 0:
            append((at, index))
            at = find(marker, at + 1, end)
    hits.sort()
    return hits


def _hyperscan_finder() -> Finder | None:
    try:
        import hyperscan
    except Exception:  # not installed, or the CPU lacks what it needs
        return None
    try:
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        database.compile(
            expressions=list(MARKERS_BYTES),
            ids=list(range(len(MARKERS_BYTES))),
            elements=len(MARKERS_BYTES),
            flags=0,
            literal=True,
        )
    except Exception:
        return None
    lengths = [len(m) for m in MARKERS_BYTES]

    def find_with_hyperscan(buf: Any, begin: int, end: int) -> list[Hit]:
        hits: list[Hit] = []
        append = hits.append

        def on_match(index: int, _start: int, stop: int, _flags: int, _ctx: object) -> None:
            append((begin + stop - lengths[index], index))

        view = memoryview(buf)[begin:end]
        try:
            database.scan(view, match_event_handler=on_match)  # type: ignore[type-var]
        finally:
            view.release()
        hits.sort()
        return hits

    return find_with_hyperscan


_FINDER: Finder | None = None


def finder() -> Finder:
    """The fastest finder available here (chosen once per process).

    ``XENAUDIT_MARKER_FINDER=bytes.find`` in the environment forces the fallback,
    so that benchmarks can measure both in one run.
    """
    global _FINDER
    if _FINDER is None:
        forced = os.environ.get("XENAUDIT_MARKER_FINDER") == "bytes.find"
        _FINDER = (None if forced else _hyperscan_finder()) or find_with_bytes
    return _FINDER


def finder_name() -> str:
    """ "hyperscan" or "bytes.find": which finder this process uses (for benchmarks)."""
    return "bytes.find" if finder() is find_with_bytes else "hyperscan"


def find_hits(buf: Any, begin: int = 0, end: int | None = None) -> list[Hit]:
    """Sorted marker hits in buf[begin:end] (bytes or bytearray)."""
    return finder()(buf, begin, len(buf) if end is None else end)
