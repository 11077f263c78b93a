"""/proc/buddyinfo, and the fragmentation figures derived from it."""

from __future__ import annotations

import re

from xenaudit.parsers._text import bounded_int, text_lines
from xenaudit.parsers.interface import Buddyinfo, BuddyZone, ParseError

_LINE_RE = re.compile(
    r"\s*Node\s+(?P<node>\d+)\s*,\s*zone\s+(?P<zone>\S+)(?P<counts>(?:\s+\d+)*)\s*$"
)


def parse_buddyinfo(
    text: str | bytes, source: str = "buddyinfo", page_size_kib: int = 4
) -> Buddyinfo:
    """One BuddyZone per "Node N, zone NAME c0 c1 ... c10" line.

    A last line without newline that has fewer orders than the others was cut
    and is dropped.
    """
    lines, ended = text_lines(text)
    zones: list[BuddyZone] = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        match = _LINE_RE.match(line)
        if match is None:
            if index == len(lines) - 1 and not ended:
                continue
            raise ParseError(
                source, f"expected 'Node N, zone NAME counts...': {line[:80]!r}", index + 1
            )
        counts = tuple(
            bounded_int(c, source, index + 1, what="free-block count")
            for c in match["counts"].split()
        )
        if (
            index == len(lines) - 1
            and not ended
            and zones
            and len(counts) < len(zones[-1].free_blocks)
        ):
            continue
        if not counts:
            raise ParseError(source, "zone line without free-block counts", index + 1)
        node = bounded_int(match["node"], source, index + 1, what="node", limit=2**31)
        zones.append(BuddyZone(node=node, zone=match["zone"], free_blocks=counts))
    if not zones:
        raise ParseError(source, "no zone lines")
    return Buddyinfo(zones=tuple(zones), page_size_kib=page_size_kib)


def _zones(buddy: Buddyinfo | BuddyZone) -> tuple[tuple[BuddyZone, ...], int | None]:
    if isinstance(buddy, Buddyinfo):
        return buddy.zones, buddy.page_size_kib
    return (buddy,), None


def free_kib_at_least_order(
    buddy: Buddyinfo | BuddyZone, order: int, page_size_kib: int | None = None
) -> int:
    """Free memory (KiB) held in blocks of order >= ``order``: what an order-N request can use.

    Summed over every zone of a Buddyinfo, or for one BuddyZone. The page size
    defaults to the Buddyinfo's (4 KiB for a bare zone).
    """
    zones, own_page = _zones(buddy)
    page = page_size_kib or own_page or 4
    start = max(order, 0)
    return sum(
        count * (1 << k) * page
        for zone in zones
        for k, count in enumerate(zone.free_blocks)
        if k >= start
    )


def unusable_free_index(buddy: Buddyinfo | BuddyZone, order: int) -> float:
    """Share of free memory in blocks too small for an order-``order`` allocation.

    Same definition as the kernel's debugfs extfrag/unusable_index (mm/vmstat.c):
    (free pages - pages in blocks of order >= N) / free pages, 0 = no
    fragmentation, 1 = all free memory unusable. Like the kernel, a zone with
    no free memory at all scores 1.0. (The kernel prints it truncated to three
    decimals; this returns the exact ratio.) A Buddyinfo is pooled over zones.
    """
    zones, _ = _zones(buddy)
    start = max(order, 0)
    free_pages = 0
    suitable_pages = 0
    for zone in zones:
        for k, count in enumerate(zone.free_blocks):
            pages = count << k
            free_pages += pages
            if k >= start:
                suitable_pages += pages
    if free_pages == 0:
        return 1.0
    return (free_pages - suitable_pages) / free_pages
