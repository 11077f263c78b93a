"""Find the few lines of a large log that can matter, at memory speed.

Every event header contains one of a handful of fixed strings (kernpatterns.MARKERS).
Locating them is the only work done on every byte of a log, so it decides how fast
a scan is. Two interchangeable finders return the same hits:

* Hyperscan (the ``hyperscan`` package, Intel's multi-pattern matcher) finds all
  markers in one SIMD pass, about four times faster than the fallback;
* the fallback runs ``bytes.find`` once per marker (CPython's two-way search with
  a skip table) and merges the results.

The fallback is used when Hyperscan cannot be imported (no wheel for the platform)
or the CPU lacks the instructions it needs (checked in /proc/cpuinfo first, because
Hyperscan dies with SIGILL there rather than raising); results are identical,
which the tests check by running both.
"""

from __future__ import annotations

import os
import platform
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


#: CPU flags Hyperscan's x86 code assumes. Without them it does not raise: it dies with
#: SIGILL in compile (seen in a Dom0 on QEMU's qemu64 CPU, which has SSE3 but no SSSE3),
#: taking the whole audit with it. Old Opteron (K10) hosts lack SSSE3 too.
X86_FLAGS_NEEDED = frozenset({"ssse3", "sse4_1", "sse4_2", "popcnt"})


def cpu_can_run_hyperscan(cpuinfo: str | None, machine: str) -> bool:
    """Whether this CPU has what Hyperscan needs (non-x86 builds check themselves)."""
    if machine.lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    if cpuinfo is None:
        return False
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return set(value.split()) >= X86_FLAGS_NEEDED
    return False


def _read_cpuinfo() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            return handle.read(1 << 20)
    except OSError:
        return None


def _hyperscan_finder() -> Finder | None:
    if not cpu_can_run_hyperscan(_read_cpuinfo(), platform.machine()):
        return None
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
