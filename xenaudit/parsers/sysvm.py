"""/proc/sys/vm/*, as the collector prints it: one ``name=value`` line per file."""

from __future__ import annotations

from xenaudit.parsers._text import text_lines
from xenaudit.parsers.interface import ParseError, SysVm


def parse_sysvm(text: str | bytes | None, source: str = "sysvm") -> SysVm:
    """Raw values keyed by file name; a value may hold tabs (lowmem_reserve_ratio).

    Only the first "=" separates; names given as paths keep their last component.
    Lines without "=" (error messages from unreadable files) are skipped, but text
    with no "name=value" line at all is not a sysvm section.
    """
    if not text:
        return SysVm(values={})
    lines, _ = text_lines(text)
    values: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition("=")
        name = name.strip().rsplit("/", 1)[-1]
        if not sep or not name or " " in name or ":" in name:
            continue
        values.setdefault(name, value.strip())
    if not values and any(line.strip() for line in lines):
        raise ParseError(source, "no 'name=value' lines")
    return SysVm(values=values)
