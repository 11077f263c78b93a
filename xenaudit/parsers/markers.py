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

Until a large span has made the library worth importing, small spans take the
fallback. Without the wheel, or when ``XENAUDIT_MARKER_FINDER=bytes.find`` is set
(benchmarks measure both in one run), the fallback is used everywhere; the tests
check that both give the same results.
"""

from __future__ import annotations

import os
from functools import partial

from xenaudit.parsers.kernpatterns import MARKERS_BYTES

TYPE_CHECKING = False  # typing is not imported at run time (start-up of small scans)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    #: A hit: (offset of the marker in the buffer, index into MARKERS_BYTES).
    Hit = tuple[int, int]
    Finder = Callable[[Any, int, int], list[Hit]]
    Counter = Callable[[Any, int, int], int]
    Bound = Callable[[int, int], int]

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


class Backend:
    """One way of finding markers and counting newlines."""

    __slots__ = ("bind_count", "count", "find", "name")

    def __init__(
        self, name: str, find: Finder, count: Counter, bind_count: Callable[[Any], Bound]
    ) -> None:
        self.name = name
        self.find = find
        self.count = count
        #: ``bind_count(buf)(begin, end)`` counts like ``count(buf, begin, end)``, as a
        #: C-level partial: loops that count many ranges of one buffer pay no Python frame.
        self.bind_count = bind_count


BYTES = Backend(
    "bytes.find", find_with_bytes, count_with_bytes, lambda buf: partial(buf.count, b"\n")
)


def _stringzilla() -> Backend | None:
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

    return Backend(
        "stringzilla",
        find_with_stringzilla,
        count_with_stringzilla,
        lambda buf: partial(count, buf, b"\n"),
    )


_FAST: Backend | None = None


def backend() -> Backend:
    """The fastest implementation available here (chosen once per process).

    ``XENAUDIT_MARKER_FINDER=bytes.find`` in the environment forces the fallback.
    """
    global _FAST
    if _FAST is None:
        forced = os.environ.get("XENAUDIT_MARKER_FINDER") == "bytes.find"
        _FAST = (None if forced else _stringzilla()) or BYTES
    return _FAST


def finder() -> Finder:
    """The fastest marker finder available here."""
    return backend().find


def counter() -> Counter:
    """The fastest newline counter available here."""
    return backend().count


def finder_name() -> str:
    """ "stringzilla" or "bytes.find": which finder this process uses (for benchmarks)."""
    return backend().name


def _for(span: int) -> Backend:
    """The fast backend for a large span or once loaded; else the bytes methods."""
    if _FAST is not None:
        return _FAST
    return BYTES if span < SMALL else backend()


def find_hits(buf: Any, begin: int = 0, end: int | None = None) -> list[Hit]:
    """Sorted marker hits in buf[begin:end] (bytes or bytearray)."""
    stop = len(buf) if end is None else end
    return _for(stop - begin).find(buf, begin, stop)


def count_lines(buf: Any, begin: int = 0, end: int | None = None) -> int:
    """Newlines in buf[begin:end] (bytes or bytearray)."""
    stop = len(buf) if end is None else end
    return _for(stop - begin).count(buf, begin, stop)


def line_counter(buf: Any, span: int | None = None) -> Bound:
    """``count(begin, end)``: newlines in buf[begin:end], for loops over many ranges of
    one buffer; ``span`` is how much of it they will cover (all of it by default)."""
    return _for(len(buf) if span is None else span).bind_count(buf)
