"""Find the few lines of a large log that can matter, and count lines, at memory speed.

Every event header contains one of a handful of fixed strings (kernpatterns.MARKERS).
Locating them, and counting the newlines before them for line numbers, is the only
work done on every byte of a log, so it decides how fast a scan is. Two
interchangeable implementations return the same results:

* StringZilla (the ``stringzilla`` package: SIMD substring search and byte
  counting) runs each search over one window of the buffer at a time, so that the
  six marker searches read it from the CPU cache rather than from memory; on a
  200 MB log it finds every marker in about a fifth of the time of one
  ``bytes.find`` per marker, and counts newlines four times faster than
  ``bytes.count`` (whose one-byte loop CPython does not vectorise);
* the fallback runs ``bytes.find`` once per marker (CPython's two-way search with
  a skip table), merges the results, and counts with ``bytes.count``.

Small spans always take the fallback: importing the library would cost more than
it saves. Without the wheel, or when ``XENAUDIT_MARKER_FINDER=bytes.find`` is set
(benchmarks measure both in one run), the fallback is used everywhere; the tests
check that both give the same results.
"""

from __future__ import annotations

import os

from xenaudit.parsers.kernpatterns import MARKERS_BYTES

TYPE_CHECKING = False  # typing is not imported at run time (start-up of small scans)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    #: A hit: (offset of the marker in the buffer, index into MARKERS_BYTES).
    Hit = tuple[int, int]
    Finder = Callable[[Any, int, int], list[Hit]]
    Counter = Callable[[Any, int, int], int]

#: Spans shorter than this are searched with the bytes methods.
SMALL = 1 << 18
#: Bytes searched at a time by the SIMD finder: small enough to stay in a core's cache
#: between the six searches, large enough that per-call overhead is negligible.
WINDOW = 1 << 20


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


def count_with_bytes(buf: Any, begin: int, end: int) -> int:
    """Newlines in buf[begin:end]."""
    return int(buf.count(b"\n", begin, end))


def _stringzilla() -> tuple[Finder, Counter] | None:
    try:
        import stringzilla
    except Exception:  # not installed, or no build for this platform
        return None
    find = stringzilla.find
    count = stringzilla.count
    try:  # a build that cannot run here fails at once, not in the middle of a scan
        if find(b"x\nballoon", MARKERS_BYTES[4], 0, 9) != 2 or count(b"\n\n", b"\n", 0, 2) != 2:
            return None
    except Exception:
        return None
    markers = [(index, marker, len(marker) - 1) for index, marker in enumerate(MARKERS_BYTES)]

    def find_with_stringzilla(buf: Any, begin: int, end: int) -> list[Hit]:
        hits: list[Hit] = []
        append = hits.append
        size = len(buf)
        end = min(end, size)
        start = max(0, begin + size if begin < 0 else begin)
        while start < end:
            stop = min(end, start + WINDOW)
            for index, marker, overlap in markers:
                # A marker starting in this window may end in the next one.
                limit = min(end, stop + overlap)
                at = find(buf, marker, start, limit)
                while 0 <= at < stop:
                    append((at, index))
                    at = find(buf, marker, at + 1, limit)
            start = stop
        hits.sort()
        return hits

    def count_with_stringzilla(buf: Any, begin: int, end: int) -> int:
        return int(count(buf, b"\n", begin, end))

    return find_with_stringzilla, count_with_stringzilla


_FAST: tuple[Finder, Counter] | None = None


def _fast() -> tuple[Finder, Counter]:
    """The fastest finder and counter available here (chosen once per process)."""
    global _FAST
    if _FAST is None:
        forced = os.environ.get("XENAUDIT_MARKER_FINDER") == "bytes.find"
        _FAST = (None if forced else _stringzilla()) or (find_with_bytes, count_with_bytes)
    return _FAST


def finder() -> Finder:
    """The fastest marker finder available here."""
    return _fast()[0]


def counter() -> Counter:
    """The fastest newline counter available here."""
    return _fast()[1]


def finder_name() -> str:
    """ "stringzilla" or "bytes.find": which finder this process uses (for benchmarks)."""
    return "bytes.find" if finder() is find_with_bytes else "stringzilla"


def find_hits(buf: Any, begin: int = 0, end: int | None = None) -> list[Hit]:
    """Sorted marker hits in buf[begin:end] (bytes or bytearray)."""
    stop = len(buf) if end is None else end
    if stop - begin < SMALL:
        return find_with_bytes(buf, begin, stop)
    return _fast()[0](buf, begin, stop)


def count_lines(buf: Any, begin: int = 0, end: int | None = None) -> int:
    """Newlines in buf[begin:end] (bytes or bytearray)."""
    stop = len(buf) if end is None else end
    if stop - begin < SMALL:
        return int(buf.count(b"\n", begin, stop))
    return _fast()[1](buf, begin, stop)
