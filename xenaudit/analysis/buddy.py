"""Free memory by block size, from /proc/buddyinfo or a failure report's buddy lists.

A high-order allocation needs one free block of 2**order pages; plenty of
free memory in small blocks does not help it. These helpers say how much
free memory sits in blocks large enough, the same way the kernel's
"unusable free space index" (mm/vmstat.c, debugfs extfrag/unusable_index)
does, so the diagnosis can tell fragmentation from a plain shortage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xenaudit.parsers.interface import Buddyinfo

#: "1490*4kB" in a failure report's per-zone free list.
_BLOCK = re.compile(r"(\d+)\s*\*\s*(\d+)\s*kB", re.IGNORECASE)
#: The zone prefix of such a line, e.g. "Node 0 DMA32: ".
_ZONE = re.compile(r"(?:Node\s+(\d+)\s+)?\b(DMA32|DMA|Normal|HighMem|Movable|Device)\s*:")


@dataclass(frozen=True)
class FreeBlocks:
    """Free blocks of one zone (or several added up), as (block size KiB -> count)."""

    label: str
    #: (block_kib, count) pairs, smallest blocks first.
    blocks: tuple[tuple[int, int], ...]
    page_kib: int = 4

    @property
    def total_kib(self) -> int:
        return sum(size * count for size, count in self.blocks)

    def kib_at_least_order(self, order: int) -> int:
        """Free memory held in blocks of at least 2**order pages."""
        min_block = self.page_kib << max(order, 0)
        return sum(size * count for size, count in self.blocks if size >= min_block)

    def unusable_index(self, order: int) -> float | None:
        """Share (0..1) of free memory that cannot serve an allocation of this order.

        None when nothing is free: then the problem is not fragmentation.
        """
        total = self.total_kib
        if total <= 0:
            return None
        return (total - self.kib_at_least_order(order)) / total

    def largest_order(self) -> int | None:
        """Order of the largest free block, None when nothing is free."""
        sizes = [size for size, count in self.blocks if count > 0]
        if not sizes:
            return None
        return (max(sizes) // self.page_kib).bit_length() - 1


def from_buddyinfo(buddy: Buddyinfo, zones: Iterable[str] | None = None) -> FreeBlocks:
    """All zones (or the named ones) of /proc/buddyinfo added up."""
    wanted = set(zones) if zones is not None else None
    counts: dict[int, int] = {}
    for zone in buddy.zones:
        if wanted is not None and zone.zone not in wanted:
            continue
        for order, count in enumerate(zone.free_blocks):
            size = buddy.page_size_kib << order
            counts[size] = counts.get(size, 0) + max(count, 0)
    label = "all zones" if wanted is None else "+".join(sorted(wanted))
    return FreeBlocks(label, tuple(sorted(counts.items())), buddy.page_size_kib)


def free_kib_at_least_order(buddy: Buddyinfo, order: int) -> int:
    return from_buddyinfo(buddy).kib_at_least_order(order)


def unusable_free_index(buddy: Buddyinfo, order: int) -> float | None:
    return from_buddyinfo(buddy).unusable_index(order)


def zone_of(line: str) -> str | None:
    """The zone a report's buddy-list line is about ("DMA32" in "Node 0 DMA32: 1*4kB ...")."""
    match = _ZONE.search(line)
    return match.group(2) if match else None


def from_report_lines(lines: Sequence[str], exclude: Iterable[str] = ()) -> FreeBlocks | None:
    """The buddy lists a failure report printed, added up over its zones.

    These show free memory *at the moment of the failure*, which is better
    evidence than tonight's /proc/buddyinfo. Lines we cannot read are skipped
    (the text is hostile and often cut); None when no line had blocks.
    """
    counts: dict[int, int] = {}
    zones: list[str] = []
    skip = set(exclude)
    for line in lines:
        blocks = _BLOCK.findall(line)
        if not blocks:
            continue
        zone = _ZONE.search(line)
        if zone and zone.group(2) in skip:
            continue
        if zone:
            zones.append(zone.group(2))
        for count_text, size_text in blocks:
            count, size = int(count_text), int(size_text)
            if size <= 0 or size & (size - 1):
                continue
            counts[size] = counts.get(size, 0) + count
    if not counts:
        return None
    page_kib = min(counts)
    label = "+".join(dict.fromkeys(zones)) or "report"
    return FreeBlocks(label, tuple(sorted(counts.items())), page_kib)
