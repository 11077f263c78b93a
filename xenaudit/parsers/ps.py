"""``ps -eo pid,comm,rss,vsz --sort=-rss`` output."""

from __future__ import annotations

import re

from xenaudit.parsers._text import MAX_KIB, bounded_int, text_lines
from xenaudit.parsers.interface import ParseError, Process

# comm may contain spaces ("Web Content"), so pid is read from the left and
# rss/vsz from the right; whatever is between is the command name.
_ROW_RE = re.compile(r"\s*(?P<pid>\d+)\s+(?P<comm>.*?)\s+(?P<rss>\d+)\s+(?P<vsz>\d+)\s*$")
_HEADER_RE = re.compile(r"\s*PID\s+(?:COMMAND|COMM|CMD)\b", re.IGNORECASE)


def parse_ps(text: str | bytes | None, source: str = "ps") -> tuple[Process, ...]:
    """Processes in the order printed (largest RSS first). RSS and VSZ are in KiB.

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
                rss_kib=bounded_int(match["rss"], source, index + 1, what="rss", limit=MAX_KIB),
                vsz_kib=bounded_int(match["vsz"], source, index + 1, what="vsz", limit=MAX_KIB),
            )
        )
    return tuple(processes)
