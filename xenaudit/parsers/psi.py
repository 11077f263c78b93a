"""/proc/pressure/memory (and cgroup v2 memory.pressure, same format)."""

from __future__ import annotations

import re

from xenaudit.parsers._text import bounded_int, bounded_percent, text_lines
from xenaudit.parsers.interface import ParseError, Psi, PsiLine

_LINE_RE = re.compile(
    r"\s*(?P<kind>some|full)\s+avg10=(?P<a10>\d+(?:\.\d+)?)\s+avg60=(?P<a60>\d+(?:\.\d+)?)"
    r"\s+avg300=(?P<a300>\d+(?:\.\d+)?)\s+total=(?P<total>\d+)\s*$"
)


def parse_psi(text: str | bytes | None, source: str = "psi_memory") -> Psi:
    """``some`` and ``full`` lines; ``full`` is absent before 5.x for some resources.

    Empty text (file absent: kernel older than 4.20 or PSI disabled) gives Psi(None, None).
    """
    if not text:
        return Psi(None, None)
    lines, ended = text_lines(text)
    found: dict[str, PsiLine] = {}
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        match = _LINE_RE.match(line)
        if match is None:
            if index == len(lines) - 1 and not ended and found:
                continue  # cut while being read
            raise ParseError(
                source,
                f"expected 'some|full avg10=.. avg60=.. avg300=.. total=..': {line[:80]!r}",
                index + 1,
            )
        found.setdefault(
            match["kind"],
            PsiLine(
                avg10=bounded_percent(match["a10"], source, index + 1, "avg10"),
                avg60=bounded_percent(match["a60"], source, index + 1, "avg60"),
                avg300=bounded_percent(match["a300"], source, index + 1, "avg300"),
                total_us=bounded_int(match["total"], source, index + 1, what="total"),
            ),
        )
    return Psi(some=found.get("some"), full=found.get("full"))
