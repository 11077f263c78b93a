"""``ps -eo pid,comm,rss,vsz --sort=-rss`` output, and busybox's ``ps -o pid,comm,rss,vsz``.

busybox prints sizes of 10000 KiB and more scaled into four characters with a
unit letter from " mgtpezy" (powers of 1024 KiB): ``17m`` is 17 MiB, ``1.2g``
1.2 GiB. Those are read back to KiB, as exact as busybox printed them.
"""

from __future__ import annotations

import re

from xenaudit.parsers._text import MAX_KIB, bounded_int, text_lines
from xenaudit.parsers.interface import ParseError, Process

# comm may contain spaces ("Web Content"), so pid is read from the left and
# rss/vsz from the right; whatever is between is the command name.
_SIZE = r"\d+(?:\.\d+)?[mgtpezy]?"
_ROW_RE = re.compile(rf"\s*(?P<pid>\d+)\s+(?P<comm>.*?)\s+(?P<rss>{_SIZE})\s+(?P<vsz>{_SIZE})\s*$")
#: busybox's unit letters, each 1024 times the one before, starting from KiB.
_BUSYBOX_SCALE = " mgtpezy"
_HEADER_RE = re.compile(r"\s*PID\s+(?:COMMAND|COMM|CMD)\b", re.IGNORECASE)


def _kib(size: str, source: str, line: int, what: str) -> int:
    """KiB from a ps size column: plain KiB, or busybox's scaled form ("17m")."""
    unit = size[-1]
    if unit not in _BUSYBOX_SCALE:
        return bounded_int(size, source, line, what=what, limit=MAX_KIB)
    number = size[:-1]
    if not number.replace(".", "", 1).isdigit() or not number.isascii():
        raise ParseError(source, f"{what} is not a size: {size[:40]!r}", line)
    kib = round(float(number) * 1024 ** _BUSYBOX_SCALE.index(unit))
    if kib > MAX_KIB:
        raise ParseError(source, f"{what} {size} is beyond what a kernel reports", line)
    return kib


def parse_ps(text: str | bytes | None, source: str = "ps") -> tuple[Process, ...]:
    """Processes in the order printed (procps: largest RSS first; busybox: by pid).

    RSS and VSZ are in KiB.

    A last line without newline that does not parse was cut and is dropped;
    any other line that does not parse is an error.
    """
    if not text:
        return ()
    lines, ended = text_lines(text)
    processes: list[Process] = []
    for index, line in enumerate(lines):
        if not line.strip() or _HEADER_RE.match(line):
            continue
        match = _ROW_RE.match(line)
        if match is None:
            if index == len(lines) - 1 and not ended:
                continue
            raise ParseError(source, f"expected 'PID COMMAND RSS VSZ': {line[:80]!r}", index + 1)
        processes.append(
            Process(
                pid=bounded_int(match["pid"], source, index + 1, what="pid", limit=2**31),
                comm=match["comm"],
                rss_kib=_kib(match["rss"], source, index + 1, "rss"),
                vsz_kib=_kib(match["vsz"], source, index + 1, "vsz"),
            )
        )
    return tuple(processes)
