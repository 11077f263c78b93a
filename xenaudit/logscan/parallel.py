"""Scan one large, plain log file with several processes (for ``xenaudit logscan``).

The file is cut at line starts into one region per worker. Each worker scans
its region with kernlog.ChunkScan, starting WARMUP bytes earlier so that its
state (an open report, a pending kill, the line before a header) is the one
the sequential scan would have there, and running past its end until no report
is open; it keeps only the events whose header line lies in its region. The
parent adds up the regions' line counts to make line numbers absolute. The
result is the sequential result whenever no single report is longer than the
warm-up (a few megabytes; reports are a few hundred lines).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from xenaudit.logscan.blocks import MIN_REGION, read_blocks
from xenaudit.parsers import kernpatterns as kp
from xenaudit.parsers.kernevents import KernelEvent
from xenaudit.parsers.kernlog import ChunkScan, ScanSummary
from xenaudit.parsers.kernscan import HEAD_LINES, Scanner
from xenaudit.parsers.lineprefix import strip_prefix

#: Bytes read before a region so that the scanner's state has settled by its start.
WARMUP = 4 << 20
BLOCK = 1 << 20


@dataclass(frozen=True)
class _Job:
    path: str
    origin: int
    start: int
    stop: int | None
    kernel_release: str | None
    banner_release: str | None


@dataclass(frozen=True)
class _Result:
    events: tuple[KernelEvent, ...]
    line_at_emit: int
    line_at_stop: int
    truncated: bool
    first_line_cut: bool


def default_workers(size: int) -> int:
    """How many processes are worth using for a file of ``size`` bytes."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, size // MIN_REGION, 16))


def can_parallelize() -> bool:
    """Worker processes are forked (cheap, and they inherit the imported code)."""
    import multiprocessing  # only when a large file makes it worth the import

    return "fork" in multiprocessing.get_all_start_methods()


def scan_file_parallel(
    path: str, workers: int, *, kernel_release: str | None = None
) -> tuple[list[KernelEvent], ScanSummary]:
    """Events of a plain (uncompressed) log file, in order, scanned by ``workers`` processes."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        fd = handle.fileno()
        starts = _region_starts(fd, size, workers)
        banner = _banner(fd)
        jobs = []
        for index, start in enumerate(starts):
            stop = starts[index + 1] if index + 1 < len(starts) else None
            origin = 0 if index == 0 else _line_start_at_or_after(fd, max(0, start - WARMUP), start)
            jobs.append(_Job(path, origin, start, stop, kernel_release, banner))
    if len(jobs) == 1:
        results = [_scan_region(jobs[0])]
    else:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        with context.Pool(len(jobs)) as pool:
            results = pool.map(_scan_region, jobs, chunksize=1)
    events: list[KernelEvent] = []
    offset = 0
    for result in results:
        delta = offset - result.line_at_emit
        events.extend(_shift(event, delta) for event in result.events)
        offset += result.line_at_stop - result.line_at_emit
    summary = ScanSummary(
        lines_read=offset,
        truncated=results[0].first_line_cut or results[-1].truncated,
    )
    return events, summary


def _scan_region(job: _Job) -> _Result:
    head = HEAD_LINES if job.origin == 0 else 0
    scanner = Scanner(job.kernel_release, head_lines=head, banner_release=job.banner_release)
    scan = ChunkScan(scanner, origin=job.origin, emit_from=job.start, stop_at=job.stop)
    with open(job.path, "rb", buffering=0) as handle:
        handle.seek(job.origin)
        events = tuple(scan.run(read_blocks(handle, BLOCK)))
    return _Result(
        events=events,
        line_at_emit=scan.line_at_emit or 0,
        line_at_stop=scan.line_at_stop or 0,
        truncated=scan.truncated,
        first_line_cut=scanner.first_line_cut,
    )


def _shift(event: KernelEvent, delta: int) -> KernelEvent:
    if delta == 0:
        return event
    changes: dict[str, object] = {"line": event.line + delta}
    context = getattr(event, "context", None)
    if context:
        changes["context"] = tuple(dataclasses.replace(c, line=c.line + delta) for c in context)
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


def _region_starts(fd: int, size: int, workers: int) -> list[int]:
    starts = [0]
    for index in range(1, workers):
        start = _line_start_at_or_after(fd, size * index // workers, size)
        if starts[-1] < start < size:
            starts.append(start)
    return starts


def _line_start_at_or_after(fd: int, offset: int, limit: int) -> int:
    """The first line start >= offset (offset itself when it follows a newline)."""
    if offset <= 0:
        return 0
    position = offset - 1
    while position < limit:
        block = os.pread(fd, 1 << 16, position)
        if not block:
            break
        newline = block.find(b"\n")
        if newline >= 0:
            return min(position + newline + 1, limit)
        position += len(block)
    return limit


def _banner(fd: int) -> str | None:
    """A "Linux version" banner among the first lines (what worker 0's head read sees)."""
    head = os.pread(fd, 1 << 18, 0)
    for line in head.split(b"\n")[:HEAD_LINES]:
        release = kp.banner_release(strip_prefix(line.decode("utf-8", "replace")).text)
        if release is not None:
            return release
    return None
