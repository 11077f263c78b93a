"""/proc/meminfo."""

from __future__ import annotations

import re

from xenaudit.parsers._text import MAX_KIB, bounded_int, text_lines
from xenaudit.parsers.interface import Meminfo, ParseError

_LINE_RE = re.compile(
    r"\s*(?P<name>[A-Za-z0-9_()]+)\s*:\s*(?P<value>\d+)(?:\s*(?P<unit>[kKmMgG]B))?\s*$"
)
_UNIT_KIB = {"kb": 1, "mb": 1024, "gb": 1024 * 1024}


def parse_meminfo(text: str | bytes, source: str = "meminfo") -> Meminfo:
    """Every field in KiB; unit-less fields (HugePages_Total, ...) keep their count.

    Lines that are not "Name: value [kB]" are skipped (hostile or cut text); a
    last line without newline that lost its unit is dropped rather than misread
    as a count. MemTotal is required: without it the text is not a meminfo.
    A value no 64-bit kernel could print (a size over 2^64 bytes, a count over
    2^63) makes the whole section an error rather than a number to trust.
    """
    lines, ended = text_lines(text)
    fields: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = _LINE_RE.match(line)
        if match is None:
            continue
        name, unit = match["name"], match["unit"]
        is_last_partial = index == len(lines) - 1 and not ended
        if is_last_partial and unit is None and not name.startswith("HugePages_"):
            continue
        value = bounded_int(match["value"], source, index + 1, what=name)
        if unit is not None:
            value *= _UNIT_KIB[unit.lower()]
            if value > MAX_KIB:
                raise ParseError(
                    source, f"{name} {value} kB is more than a 64-bit kernel can address", index + 1
                )
        fields.setdefault(name, value)
    if "MemTotal" not in fields:
        raise ParseError(source, "no 'MemTotal: N kB' line")
    return Meminfo(fields_kib=fields)
