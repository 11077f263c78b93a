"""/proc/vmstat."""

from __future__ import annotations

import re

from xenaudit.parsers._text import text_lines
from xenaudit.parsers.interface import ParseError, Vmstat

_LINE_RE = re.compile(r"\s*(?P<name>[A-Za-z0-9_]+)\s+(?P<value>-?\d+)\s*$")


def parse_vmstat(text: str | bytes, source: str = "vmstat") -> Vmstat:
    """ "name value" counters. Lines of another shape are skipped; none at all is an error.

    A last line without newline (after complete ones) may have lost digits: dropped.
    """
    lines, ended = text_lines(text)
    if not ended and len(lines) > 1:
        lines.pop()
    counters: dict[str, int] = {}
    for line in lines:
        match = _LINE_RE.match(line)
        if match is not None:
            counters.setdefault(match["name"], int(match["value"]))
    if not counters:
        raise ParseError(source, "no 'name value' counter lines")
    return Vmstat(counters=counters)
