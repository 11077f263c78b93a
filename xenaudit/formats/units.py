"""Sizes as the report writes them, in one place so the text and the charts agree.

Memory is read in binary units: MiB up to 4 GiB, then GiB. The kernel's own
spelling ("kB", which means KiB) is kept only where a line is quoted from
the guest; prose written by the analysis is converted on the way to the page.
"""

from __future__ import annotations

import re

#: Sizes from this many MiB on are written in GiB.
GIB_FROM_MIB = 4096


def size_mib(mib: float | None) -> str:
    """ "576 MiB", "3008 MiB", "6 GiB", "15.5 GiB"; "–" when unknown."""
    if mib is None:
        return "–"
    if abs(mib) >= GIB_FROM_MIB:
        gib = mib / 1024
        text = f"{gib:.1f}"
        return f"{text.removesuffix('.0')} GiB"
    return f"{round(mib)} MiB"


def size_kib(kib: float | None) -> str:
    """A KiB amount as `size_mib` writes it; amounts under 1 MiB stay in KiB."""
    if kib is None:
        return "–"
    if abs(kib) < 1024:
        return f"{round(kib)} KiB"
    return size_mib(kib / 1024)


def axis_unit(maximum_mib: float) -> str:
    """The one unit a chart axis uses: MiB when its whole range is under 4 GiB."""
    return "GiB" if maximum_mib >= GIB_FROM_MIB else "MiB"


def in_unit(mib: float, unit: str) -> str:
    """`mib` written in `unit` (an axis tick), without needless decimals."""
    if unit == "GiB":
        text = f"{mib / 1024:.2f}".rstrip("0").rstrip(".")
        return f"{text} GiB"
    return f"{round(mib)} MiB"


# "74432 kB", "3013kB", and ranges "128–65536 kB" (both ends in kB).
_KB = re.compile(r"\b(\d+)(?:\s?[–-]\s?(\d+))?\s?kB\b")


def prose_sizes(text: str) -> str:
    """Kernel-style "N kB" amounts in prose rewritten as KiB/MiB/GiB."""

    def convert(match: re.Match[str]) -> str:
        low, high = match.group(1), match.group(2)
        if high is None:
            return size_kib(int(low))
        return f"{size_kib(int(low))}–{size_kib(int(high))}"

    return _KB.sub(convert, text)
