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
from xenaudit.parsers.kernscan import LINE_CAP, Scanner

__all__ = [
    "ChunkScan",
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
    scan = ChunkScan(Scanner(kernel_release))
    yield from scan.run(chunks)
    if summary is not None:
        summary.lines_read = scan.scanner.lines_seen
        summary.truncated = scan.truncated


class ChunkScan:
    """Scan byte blocks, optionally only a region of a larger file.

    With the defaults it scans everything. For a parallel scan each worker gets
    blocks starting at a line start ``origin`` (some way before its region, so its
    state has settled by then), keeps only events whose header lies in
    [emit_from, stop_at), and stops after ``stop_at`` as soon as no report is
    open. Line numbers are then relative to ``origin``; ``line_at_emit`` and
    ``line_at_stop`` (lines before those offsets) let the caller make them absolute.
    """

    def __init__(
        self,
        scanner: Scanner,
        *,
        origin: int = 0,
        emit_from: int = 0,
        stop_at: int | None = None,
    ) -> None:
        self.scanner = scanner
        self.origin = origin
        self.emit_from = emit_from
        self.stop_at = stop_at
        self.line_at_emit: int | None = 0 if emit_from <= origin else None
        self.line_at_stop: int | None = None
        self.truncated = False
        self._lineno = 0
        self._stopped = False

    def run(self, chunks: Iterable[bytes]) -> Iterator[KernelEvent]:
        base = self.origin  # file offset of the first byte not yet scanned (carry included)
        carry = b""
        for chunk in chunks:
            if not chunk:
                continue
            chunk = bytes(chunk)
            begin = 0
            if carry:
                # Finish the line split across blocks without copying the whole block.
                first = chunk.find(b"\n")
                if first < 0:
                    carry += chunk
                    if len(carry) > _CARRY_CAP:
                        base += len(carry) - LINE_CAP  # the dropped middle of a giant line
                        carry = carry[:LINE_CAP]
                    continue
                joined = carry + chunk[: first + 1]
                yield from self._keep(self._block(joined, 0, len(joined), base))
                if self._stopped:
                    return
                base += len(joined)
                begin = first + 1
                carry = b""
            end = chunk.rfind(b"\n") + 1
            if end > begin:
                yield from self._keep(self._block(chunk, begin, end, base - begin))
                if self._stopped:
                    return
                base += end - begin
            else:
                end = begin
            carry = chunk[end:]
            if len(carry) > _CARRY_CAP:
                base += len(carry) - LINE_CAP
                carry = carry[:LINE_CAP]
        if self.line_at_emit is None:
            self.line_at_emit = self._lineno
        events, self.truncated = self.scanner.finish(carry or None, self._lineno)
        yield from self._keep(events)
        if self.line_at_stop is None:
            self.line_at_stop = self.scanner.lines_seen

    def _keep(self, events: Iterable[KernelEvent]) -> Iterator[KernelEvent]:
        """Only the events whose header line is in this scan's region."""
        for event in events:
            if self.line_at_emit is None or event.line <= self.line_at_emit:
                continue  # header before the region: the previous scan reports it
            if self.line_at_stop is not None and event.line > self.line_at_stop:
                continue  # header after the region: the next scan reports it
            yield event

    def _block(self, buf: bytes, begin: int, end: int, base: int) -> Iterator[KernelEvent]:
        """Scan the whole lines buf[begin:end]; buf[0] would be at file offset ``base``."""
        scanner = self.scanner
        markers = MARKERS_BYTES
        find = buf.find
        count = buf.count
        next_hit = [find(m, begin, end) for m in markers]
        regional = self.emit_from > self.origin or self.stop_at is not None
        lineno = self._lineno
        pos = begin
        while pos < end:
            if regional:
                self._mark(buf, pos, pos, base, lineno)
                if self.line_at_stop is not None and not scanner.busy:
                    self._stopped = True
                    break
            if scanner.busy or lineno < scanner.head_lines:
                nl = find(b"\n", pos, end)
                lineno += 1
                yield from scanner.feed(lineno, buf[pos:nl])
                pos = nl + 1
                continue
            hit = -1
            which = 0
            for i, at in enumerate(next_hit):
                if 0 <= at < pos:
                    at = next_hit[i] = find(markers[i], pos, end)
                if at >= 0 and (hit < 0 or at < hit):
                    hit, which = at, i
            start = end if hit < 0 else max(pos, buf.rfind(b"\n", pos, hit) + 1)
            if hit >= 0 and hit + len(markers[which]) - start > LINE_CAP:
                # Beyond the part of the line that is read: not a hit. Look past it.
                next_hit[which] = find(markers[which], hit + 1, end)
                continue
            if regional:
                # Skipping buf[pos:start]: record region offsets that fall inside it.
                stop = self._mark(buf, pos, start, base, lineno)
                if stop is not None:
                    lineno = stop
                    self._stopped = True
                    break
            skipped = count(b"\n", pos, start)
            if skipped:
                prev_start = max(pos, buf.rfind(b"\n", pos, start - 1) + 1)
                scanner.note_prev(buf[prev_start : start - 1])
                lineno += skipped
            if hit < 0:
                pos = end
                break
            nl = find(b"\n", start, end)
            lineno += 1
            yield from scanner.feed(lineno, buf[start:nl])
            pos = nl + 1
        self._lineno = lineno

    def _mark(self, buf: bytes, pos: int, upto: int, base: int, lineno: int) -> int | None:
        """Record the line counts at region offsets lying in buf[pos:upto] (inclusive).

        ``lineno`` lines come before buf[pos]. Returns the line count at the stop
        offset when it lies in the range and the scanner is idle (time to stop).
        """
        emit_rel = self.emit_from - base
        if self.line_at_emit is None and pos <= emit_rel <= upto:
            self.line_at_emit = lineno + buf.count(b"\n", pos, emit_rel)
        if self.stop_at is None or self.line_at_stop is not None:
            return None
        stop_rel = self.stop_at - base
        if pos <= stop_rel <= upto:
            self.line_at_stop = lineno + buf.count(b"\n", pos, stop_rel)
            if not self.scanner.busy:
                return self.line_at_stop
        return None


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
