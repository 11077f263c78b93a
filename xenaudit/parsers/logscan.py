"""``xenaudit logscan``: find memory events in kernel logs without a whole audit.

    xenaudit logscan FILE... [--json]

Each FILE is a kernel log in any of the usual wrappings (dmesg, kern.log,
journalctl -k, console capture), plain or gzip-compressed (recognised by its
magic bytes, whatever the name); ``-`` reads standard input. Without --json a
readable summary per file; with --json one JSON object per event per line, in
input order. Files are streamed in large binary blocks, so a log of hundreds
of megabytes needs neither much memory nor much time.

Exit status: 0 when every file was read, 2 when any could not be (the others
are still scanned, and the error names the file on stderr).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import stat
import sys
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import IO, Any, BinaryIO

from xenaudit.parsers.interface import (
    BalloonMessage,
    KernelEvent,
    OomInvoked,
    OomKill,
    PageAllocFailure,
)
from xenaudit.parsers.kernlog import ScanSummary, iter_kernlog_chunks
from xenaudit.parsers.logscan_parallel import can_parallelize, default_workers, scan_file_parallel

#: Read size. Large blocks keep per-block overhead negligible next to the scan.
CHUNK_SIZE = 16 << 20
_GZIP_MAGIC = b"\x1f\x8b"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``logscan`` on the main CLI's subparsers (handler in ``func``)."""
    parser = subparsers.add_parser(
        "logscan",
        help="list page allocation failures, OOM kills and balloon messages in kernel logs",
        description="Scan kernel logs (dmesg, kern.log, journalctl -k output; gzip or plain; "
        "'-' for standard input) for page allocation failures, OOM-killer invocations, "
        "OOM kills and Xen balloon driver messages.",
    )
    _add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="log file, or - for stdin")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per event per line (JSON Lines)"
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="processes per large plain file (default: one per CPU, from 24 MB per process; "
        "1 scans sequentially)",
    )


def run(
    args: argparse.Namespace, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """Scan every file named in ``args.files``; the exit code (0, or 2 if any was unreadable)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    status = 0
    jobs = int(getattr(args, "jobs", 0) or 0)
    for name in args.files:
        if not _scan_one(name, bool(args.json), out, err, jobs):
            status = 2
    out.flush()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m xenaudit.parsers.logscan FILE... [--json]``."""
    parser = argparse.ArgumentParser(
        prog="xenaudit logscan",
        description="Scan kernel logs for page allocation failures, OOM kills and "
        "balloon messages.",
    )
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


# --- reading -------------------------------------------------------------------------


def _events(name: str, stream: BinaryIO, jobs: int, summary: ScanSummary) -> Iterator[KernelEvent]:
    """Events of one opened file: in parallel for a large plain file, else streamed."""
    if name != "-" and not isinstance(stream, gzip.GzipFile) and jobs != 1:
        info = os.fstat(stream.fileno())
        workers = jobs if jobs > 1 else default_workers(info.st_size)
        if workers > 1 and stat.S_ISREG(info.st_mode) and can_parallelize():
            events, result = scan_file_parallel(name, workers)
            summary.lines_read, summary.truncated = result.lines_read, result.truncated
            yield from events
            return
    yield from iter_kernlog_chunks(_chunks(stream), name, summary=summary)


def _scan_one(name: str, as_json: bool, out: IO[str], err: IO[str], jobs: int = 0) -> bool:
    """Scan one file, writing its events; False (after a message on err) if it failed."""
    summary = ScanSummary()
    counts: Counter[str] = Counter()
    lines: list[str] = []
    opened = False
    try:
        with _open(name) as stream:
            opened = True
            for event in _events(name, stream, jobs, summary):
                counts[event.kind] += 1
                if as_json:
                    out.write(json.dumps(event_to_json(event, name)))
                    out.write("\n")
                else:
                    lines.append(describe(event))
    except (OSError, EOFError, zlib.error) as exc:
        if opened and not as_json:
            _write_summary(name, summary, counts, lines, out)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"xenaudit logscan: {name}: {reason or type(exc).__name__}", file=err)
        return False
    if not as_json:
        _write_summary(name, summary, counts, lines, out)
    return True


def _open(name: str) -> Any:
    if name == "-":
        return _maybe_gzip(sys.stdin.buffer, close=False)
    return _maybe_gzip(open(name, "rb"), close=True)  # closed by _Closing


def _maybe_gzip(raw: BinaryIO, *, close: bool) -> Any:
    peek = getattr(raw, "peek", None)
    head = peek(2)[:2] if peek is not None else b""
    stream: BinaryIO | gzip.GzipFile = (
        gzip.GzipFile(fileobj=raw, mode="rb") if head == _GZIP_MAGIC else raw
    )
    return _Closing(stream, raw, close)


class _Closing:
    def __init__(self, stream: BinaryIO | gzip.GzipFile, raw: BinaryIO, close: bool) -> None:
        self._stream, self._raw, self._close = stream, raw, close

    def __enter__(self) -> BinaryIO | gzip.GzipFile:
        return self._stream

    def __exit__(self, *exc: object) -> None:
        if self._stream is not self._raw:
            self._stream.close()
        if self._close:
            self._raw.close()


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Large blocks of the file. For gzip, what was decompressed before a damaged or
    cut end is still handed out before the error is raised."""
    if not isinstance(stream, gzip.GzipFile):
        yield from iter(lambda: stream.read(CHUNK_SIZE), b"")
        return
    pending: list[bytes] = []
    size = 0
    while True:
        try:
            piece = stream.read1(CHUNK_SIZE)
        except (OSError, EOFError, zlib.error):
            if pending:
                yield b"".join(pending)
            raise
        if not piece:
            break
        pending.append(piece)
        size += len(piece)
        if size >= CHUNK_SIZE:
            block, pending, size = b"".join(pending), [], 0
            yield block
    if pending:
        yield b"".join(pending)


# --- output ------------------------------------------------------------------------


def event_to_json(event: KernelEvent, file: str) -> dict[str, Any]:
    """The JSON object for one event (the logscan --json contract)."""
    base: dict[str, Any] = {
        "kind": event.kind,
        "file": file,
        "line": event.line,
        "timestamp": event.timestamp,
    }
    if isinstance(event, PageAllocFailure):
        base.update(
            process=event.process,
            order=event.order,
            gfp_mask=event.gfp_mask,
            gfp_flags=list(event.gfp_flags),
            gfp_flags_source=event.gfp_flags_source,
            gfp_era=event.gfp_era,
            atomic=event.is_atomic,
            callbacks_suppressed=event.callbacks_suppressed,
            kernel_version=event.kernel_version,
            buddy_lines=list(event.buddy_lines),
        )
    elif isinstance(event, OomInvoked):
        base.update(
            process=event.process,
            gfp_mask=event.gfp_mask,
            order=event.order,
            oom_score_adj=event.oom_score_adj,
            oom_adj=event.oom_adj,
            gfp_flags=list(event.gfp_flags),
            gfp_flags_source=event.gfp_flags_source,
            constraint=event.constraint,
            memcg=event.memcg,
            kernel_version=event.kernel_version,
        )
    elif isinstance(event, OomKill):
        base.update(
            victim_pid=event.victim_pid,
            victim_process=event.victim_process,
            total_vm_kib=event.total_vm_kib,
            anon_rss_kib=event.anon_rss_kib,
            file_rss_kib=event.file_rss_kib,
            shmem_rss_kib=event.shmem_rss_kib,
            memcg=event.memcg,
            uid=event.uid,
            pgtables_kib=event.pgtables_kib,
            oom_score_adj=event.oom_score_adj,
            score=event.score,
        )
    elif isinstance(event, BalloonMessage):
        base.update(message=event.message)
    return base


def _kib(value: int | None) -> str:
    return "?" if value is None else f"{value} kB"


def describe(event: KernelEvent) -> str:
    """One readable line for an event."""
    where = f"line {event.line}" + (f" [{event.timestamp}]" if event.timestamp else "")
    if isinstance(event, PageAllocFailure):
        flags = "|".join(event.gfp_flags) or "?"
        how = "printed" if event.gfp_flags_source == "printed" else f"decoded as {event.gfp_era}"
        extra = " atomic" if event.is_atomic else ""
        if event.callbacks_suppressed:
            extra += f", {event.callbacks_suppressed} more suppressed before it"
        return (
            f"{where}: page allocation failure in {event.process!r}: order {event.order}, "
            f"mode {event.gfp_mask or '?'} ({flags}, {how}){extra}"
        )
    if isinstance(event, OomInvoked):
        adj = (
            f"oom_score_adj {event.oom_score_adj}"
            if event.oom_score_adj is not None
            else f"oom_adj {event.oom_adj}"
        )
        scope = " (memory cgroup)" if event.memcg else ""
        return (
            f"{where}: OOM killer invoked by {event.process!r}{scope}: gfp_mask "
            f"{event.gfp_mask or '?'}, order {event.order}, {adj}"
        )
    if isinstance(event, OomKill):
        scope = " (memory cgroup limit)" if event.memcg else ""
        return (
            f"{where}: OOM kill{scope} of pid {event.victim_pid} ({event.victim_process}): "
            f"total-vm {_kib(event.total_vm_kib)}, anon-rss {_kib(event.anon_rss_kib)}, "
            f"file-rss {_kib(event.file_rss_kib)}, shmem-rss {_kib(event.shmem_rss_kib)}"
        )
    return f"{where}: Xen balloon: {event.message}"


def _write_summary(
    name: str, summary: ScanSummary, counts: Counter[str], lines: list[str], out: IO[str]
) -> None:
    total = sum(counts.values())
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "no events"
    cut = ", looks truncated" if summary.truncated else ""
    out.write(f"{name}: {summary.lines_read} lines, {total} events ({kinds}){cut}\n")
    for line in lines:
        out.write(f"  {line}\n")


if __name__ == "__main__":
    raise SystemExit(main())
