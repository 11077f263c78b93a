"""/proc/vmstat."""

from __future__ import annotations

import re

from xenaudit.parsers._text import bounded_int, text_lines
from xenaudit.parsers.interface import ParseError, Vmstat

_LINE_RE = re.compile(r"\s*(?P<name>[A-Za-z0-9_]+)\s+(?P<value>-?\d+)\s*$")


def parse_vmstat(text: str | bytes, source: str = "vmstat") -> Vmstat:
    """ "name value" counters. Lines of another shape are skipped; none at all is an error.

    A last line without newline (after complete ones) may have lost digits: dropped.
    A counter beyond signed 64 bits is an error for the section.
    """
    lines, ended = text_lines(text)
    if not ended and len(lines) > 1:
        lines.pop()
    counters: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = _LINE_RE.match(line)
        if match is not None:
            # Per-CPU drift can leave an nr_* counter briefly negative, so sign is allowed.
            value = bounded_int(match["value"], source, index + 1, what=match["name"], signed=True)
            counters.setdefault(match["name"], value)
    if not counters:
        raise ParseError(source, "no 'name value' counter lines")
    return Vmstat(counters=counters)
