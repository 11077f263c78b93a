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
import os
import stat
import sys
import zlib
from collections import Counter

from xenaudit.printable import printable
from xenaudit.wording import plural

# The kernel-log parser is imported when a file is scanned, so that
# `xenaudit logscan --help` starts at once.
TYPE_CHECKING = False  # nor is typing imported at run time
if TYPE_CHECKING:
    import gzip
    from collections.abc import Iterator, Sequence
    from typing import IO, Any, BinaryIO

    from xenaudit.parsers.kernevents import KernelEvent
    from xenaudit.parsers.kernlog import ScanSummary

#: Read size: large enough that per-block overhead is negligible next to the scan,
#: small enough that the block is still in the CPU cache when its newlines are counted
#: after the marker search (measured: 1 MiB blocks scan faster than 16 MiB ones).
CHUNK_SIZE = 1 << 20
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
    """Standalone entry point: ``python -m xenaudit.logscan FILE... [--json]``."""
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


def _events(name: str, stream: Any, jobs: int, summary: ScanSummary) -> Iterator[KernelEvent]:
    """Events of one opened file: in parallel for a large plain file, else streamed.

    A log pasted from mail (quoting, quoted-printable) is read whole, restored, and
    its events are marked reconstructed.
    """
    from xenaudit.logscan import mail
    from xenaudit.parsers.kernlog import iter_kernlog_chunks

    peek = getattr(stream, "peek", None)
    head = peek(mail.SNIFF_BYTES)[: mail.SNIFF_BYTES] if peek is not None else b""
    if head and mail.looks_like_mail(head):
        import dataclasses

        from xenaudit.parsers.kernlog import iter_kernlog_events

        data = stream.read(mail.MAX_MAIL_BYTES + 1)
        if len(data) <= mail.MAX_MAIL_BYTES:
            text = mail.unmail(data)
            lines = (line + "\n" for line in text.split("\n"))
            for event in iter_kernlog_events(lines, name, summary=summary):
                yield dataclasses.replace(event, reconstructed=True)
            return
        stream = _Prefixed(data, stream)
    workers = _workers(name, stream, jobs)
    if workers > 1:
        from xenaudit.logscan.parallel import scan_file_parallel

        events, result = scan_file_parallel(name, workers)
        summary.lines_read, summary.truncated = result.lines_read, result.truncated
        yield from events
        return
    yield from iter_kernlog_chunks(_chunks(stream), name, summary=summary)


def _workers(name: str, stream: Any, jobs: int) -> int:
    """Processes for a file: several only for a large plain regular file (or -j N).
    The parallel scanner and multiprocessing are imported only then."""
    if name == "-" or jobs == 1 or _is_gzip(stream) or isinstance(stream, _Prefixed):
        return 1
    from xenaudit.logscan.blocks import MIN_REGION

    info = os.fstat(stream.fileno())
    if not stat.S_ISREG(info.st_mode) or (jobs < 1 and info.st_size < 2 * MIN_REGION):
        return 1
    from xenaudit.logscan.parallel import can_parallelize, default_workers

    workers = jobs if jobs > 1 else default_workers(info.st_size)
    return workers if workers > 1 and can_parallelize() else 1


class _Prefixed:
    """A stream whose first bytes were already read (a large file that looked like mail)."""

    def __init__(self, first: bytes, rest: Any) -> None:
        self._first: bytes | None = first
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return bytes(self._rest.read(size))


def _is_gzip(stream: object) -> bool:
    """Whether ``stream`` decompresses (gzip is only imported for such files)."""
    gzip = sys.modules.get("gzip")
    return gzip is not None and isinstance(stream, gzip.GzipFile)


def _scan_one(name: str, as_json: bool, out: IO[str], err: IO[str], jobs: int = 0) -> bool:
    """Scan one file, writing its events; False (after a message on err) if it failed."""
    if as_json:
        import json

    from xenaudit.parsers.events import describe, event_to_json
    from xenaudit.parsers.kernlog import ScanSummary

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
        message = f"xenaudit logscan: {name}: {reason or type(exc).__name__}"
        print(printable(message, one_line=True), file=err)
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
    if head != _GZIP_MAGIC:
        return _Closing(raw, raw, close)
    import gzip

    return _Closing(gzip.GzipFile(fileobj=raw, mode="rb"), raw, close)


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


def _chunks(stream: Any) -> Iterator[bytes | bytearray]:
    """Large blocks of the file. For gzip, what was decompressed before a damaged or
    cut end is still handed out before the error is raised."""
    from xenaudit.logscan.blocks import read_blocks

    if not _is_gzip(stream):
        yield from read_blocks(stream, CHUNK_SIZE)
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


def _write_summary(
    name: str, summary: ScanSummary, counts: Counter[str], lines: list[str], out: IO[str]
) -> None:
    total = sum(counts.values())
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "no events"
    cut = ", looks truncated" if summary.truncated else ""
    lines_read = plural(summary.lines_read, "line")
    shown = printable(name, one_line=True)
    out.write(f"{shown}: {lines_read}, {plural(total, 'event')} ({kinds}){cut}\n")
    for line in lines:
        out.write(f"  {printable(line, one_line=True)}\n")


if __name__ == "__main__":
    raise SystemExit(main())
