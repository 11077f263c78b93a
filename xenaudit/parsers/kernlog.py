"""Kernel log parsing: page allocation failures, OOM kills and Xen balloon messages.

Three entry points share one state machine (kernscan.Scanner):

* ``parse_kernlog(text)`` for a section already in memory (str or bytes);
* ``iter_kernlog_events(lines)`` for any iterable of lines, streamed;
* ``iter_kernlog_chunks(chunks)`` for raw byte blocks of a large file. It finds
  candidate lines with ``bytes.find`` on a few marker strings and counts the
  newlines it skips with ``bytes.count``, so Python only ever looks at the few
  lines around events. Results (events, line numbers) are the same as for the
  line-by-line path: the scanner ignores marker-less lines while no report is
  open, and the chunk driver feeds it every line while one is.

Line numbers are 1-based and count ``\\n`` terminators, as grep and wc do; a
lone ``\\r`` inside a line does not start a new line number.

Parsing a log never raises: whatever cannot be understood is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from xenaudit.parsers.interface import KernelEvent, KernelLog
from xenaudit.parsers.kernpatterns import MARKERS_BYTES
from xenaudit.parsers.kernscan import HEAD_LINES, LINE_CAP, Scanner

__all__ = [
    "ScanSummary",
    "iter_kernlog_chunks",
    "iter_kernlog_events",
    "parse_kernlog",
]

#: A line longer than this without a newline keeps only its head while buffering.
_CARRY_CAP = 1 << 20


@dataclass
class ScanSummary:
    """Filled in when a streaming scan ends (the iterator is exhausted)."""

    lines_read: int = 0
    truncated: bool = False


def parse_kernlog(
    text: str | bytes, source: str = "kernlog", *, kernel_release: str | None = None
) -> KernelLog:
    """Parse a whole kernel log. ``kernel_release`` (e.g. from uname -r) helps decode
    hex-only GFP masks when the log itself does not name the kernel version."""
    summary = ScanSummary()
    if isinstance(text, bytes | bytearray):
        events = tuple(
            iter_kernlog_chunks(
                [bytes(text)], source, kernel_release=kernel_release, summary=summary
            )
        )
    else:
        events = tuple(
            iter_kernlog_events(
                _split_keepends(text), source, kernel_release=kernel_release, summary=summary
            )
        )
    return KernelLog(events=events, lines_read=summary.lines_read, truncated=summary.truncated)


def iter_kernlog_events(
    lines: Iterable[str | bytes],
    source: str = "kernlog",
    *,
    kernel_release: str | None = None,
    summary: ScanSummary | None = None,
) -> Iterator[KernelEvent]:
    """Stream events from lines (with or without their terminators), in input order.

    A last line without a terminator is checked for being cut (``summary.truncated``).
    """
    del source  # accepted for symmetry with the other parsers; logs never raise
    scanner = Scanner(kernel_release)
    held: str | bytes | None = None
    lineno = 0
    for line in lines:
        if held is not None:
            lineno += 1
            yield from scanner.feed(lineno, held)
        held = line
    last_partial = None
    if held is not None:
        if _ends_with_newline(held):
            lineno += 1
            yield from scanner.feed(lineno, held)
        else:
            last_partial = held
    events, truncated = scanner.finish(last_partial, lineno)
    yield from events
    if summary is not None:
        summary.lines_read = scanner.lines_seen
        summary.truncated = truncated


def iter_kernlog_chunks(
    chunks: Iterable[bytes],
    source: str = "kernlog",
    *,
    kernel_release: str | None = None,
    summary: ScanSummary | None = None,
) -> Iterator[KernelEvent]:
    """Stream events from consecutive byte blocks of a log (any block size)."""
    del source
    scanner = Scanner(kernel_release)
    lineno = 0
    carry = b""
    for chunk in chunks:
        if not chunk:
            continue
        buf = carry + chunk if carry else bytes(chunk)
        end = buf.rfind(b"\n") + 1
        if end == 0:
            carry = buf if len(buf) <= _CARRY_CAP else buf[:LINE_CAP]
            continue
        lineno = yield from _scan_block(scanner, buf, end, lineno)
        carry = buf[end:]
        if len(carry) > _CARRY_CAP:
            carry = carry[:LINE_CAP]
    events, truncated = scanner.finish(carry or None, lineno)
    yield from events
    if summary is not None:
        summary.lines_read = scanner.lines_seen
        summary.truncated = truncated


def _scan_block(scanner: Scanner, buf: bytes, end: int, lineno: int) -> Iterator[KernelEvent]:
    """Scan buf[:end] (whole lines); returns the line count reached (generator value)."""
    markers = MARKERS_BYTES
    next_hit = [buf.find(m, 0, end) for m in markers]
    pos = 0
    find = buf.find
    count = buf.count
    while pos < end:
        if scanner.busy or lineno < HEAD_LINES:
            nl = find(b"\n", pos, end)
            lineno += 1
            yield from scanner.feed(lineno, buf[pos:nl])
            pos = nl + 1
            continue
        hit = -1
        for i, at in enumerate(next_hit):
            if 0 <= at < pos:
                at = next_hit[i] = find(markers[i], pos, end)
            if at >= 0 and (hit < 0 or at < hit):
                hit = at
        if hit < 0:
            last_start = buf.rfind(b"\n", pos, end - 1) + 1
            lineno += count(b"\n", pos, end)
            scanner.note_prev(buf[max(pos, last_start) : end - 1])
            break
        start = max(pos, buf.rfind(b"\n", pos, hit) + 1)
        if hit - start >= LINE_CAP:
            # Beyond the part of the line that is read: not a hit. Look past it.
            for i, at in enumerate(next_hit):
                if at == hit:
                    next_hit[i] = find(markers[i], hit + 1, end)
            continue
        skipped = count(b"\n", pos, start)
        if skipped:
            prev_start = max(pos, buf.rfind(b"\n", pos, start - 1) + 1)
            scanner.note_prev(buf[prev_start : start - 1])
            lineno += skipped
        nl = find(b"\n", start, end)
        lineno += 1
        yield from scanner.feed(lineno, buf[start:nl])
        pos = nl + 1
    return lineno


def _ends_with_newline(line: str | bytes) -> bool:
    if isinstance(line, str):
        return line.endswith("\n")
    return line.endswith(b"\n")


def _split_keepends(text: str) -> Iterator[str]:
    """Lines of text split on "\\n" only, each keeping its terminator."""
    start = 0
    find = text.find
    while True:
        nl = find("\n", start)
        if nl < 0:
            if start < len(text):
                yield text[start:]
            return
        yield text[start : nl + 1]
        start = nl + 1
