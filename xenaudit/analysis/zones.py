"""The memory zones of a failure or OOM report: free memory, watermarks and free blocks per zone.

Free memory is not one number. The kernel keeps it per zone, and which zone
can serve an allocation decides whether it was short:

* ZONE_DMA (the first 16 MiB) is protected by lowmem_reserve: an ordinary
  allocation may not take it down to its watermarks, so its free pages are
  not usable free memory for anyone but DMA users;
* ZONE_DMA32 ends at 4 GiB whatever the guest's size, so more memory cannot
  help an allocation restricted to it once the guest is that large;
* Normal (and HighMem on 32-bit) hold the rest.

The report prints, per zone, ``free:… min:… low:… high:…`` and the buddy
lists ``N*4kB …``; both are read here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from xenaudit.parsers.interface import LogLine

_ZONE_NAMES = "DMA32|DMA|Normal|HighMem|Movable|Device"
_ZONE_LINE = re.compile(
    rf"(?:Node\s+\d+\s+)?(?P<zone>{_ZONE_NAMES})\s+free:(?P<free>\d+)kB"
    r"(?:\s+boost:\d+kB)?\s+min:(?P<min>\d+)kB\s+low:(?P<low>\d+)kB\s+high:(?P<high>\d+)kB"
)
_PRESENT = re.compile(r"\bpresent:(\d+)kB")
_MANAGED = re.compile(r"\bmanaged:(\d+)kB")
_BUDDY_LINE = re.compile(rf"(?:Node\s+\d+\s+)?(?P<zone>{_ZONE_NAMES}):\s+\d+\s*\*\s*\d+kB")
_BLOCK = re.compile(r"(\d+)\s*\*\s*(\d+)\s*kB", re.IGNORECASE)
#: "active_anon:228012 inactive_anon:201223 ..." (pages) in the report's Mem-Info.
_PAGES = re.compile(r"\b([A-Za-z_]+):(\d+)\b(?!kB)")

#: Mem-Info's page counters: a line with any of them is a counters line.
_COUNTER_NAMES = frozenset(
    {
        "active_anon",
        "inactive_anon",
        "isolated_anon",
        "active_file",
        "inactive_file",
        "isolated_file",
        "unevictable",
        "slab_reclaimable",
        "slab_unreclaimable",
        "pagetables",
        "free",
        "mapped",
        "shmem",
    }
)
#: 4 GiB: where ZONE_DMA32 ends.
DMA32_END_KIB = 4 * 1024 * 1024


@dataclass
class Zone:
    name: str
    free_kib: int | None = None
    min_kib: int | None = None
    low_kib: int | None = None
    high_kib: int | None = None
    present_kib: int | None = None
    managed_kib: int | None = None
    #: (block KiB, count) from the zone's buddy list.
    blocks: list[tuple[int, int]] = field(default_factory=list)

    def kib_at_least(self, block_kib: int) -> int:
        return sum(size * count for size, count in self.blocks if size >= block_kib)

    @property
    def buddy_free_kib(self) -> int:
        return sum(size * count for size, count in self.blocks)


@dataclass(frozen=True)
class ZoneReport:
    zones: tuple[Zone, ...]
    #: Mem-Info counters in pages ("active_anon", "slab_unreclaimable", "free", ...).
    pages: dict[str, int]

    def named(self, name: str) -> Zone | None:
        return next((z for z in self.zones if z.name == name), None)

    def usable(self, limit: str | None = None) -> tuple[Zone, ...]:
        """Zones an ordinary allocation can use: not DMA (behind lowmem_reserve).

        An allocation restricted to DMA32 can use DMA32 (and DMA); one
        restricted to DMA only DMA.
        """
        if limit == "DMA":
            return tuple(z for z in self.zones if z.name == "DMA")
        if limit == "DMA32":
            return tuple(z for z in self.zones if z.name == "DMA32")
        return tuple(z for z in self.zones if z.name != "DMA")


def read(lines: Iterable[LogLine | str]) -> ZoneReport | None:
    """Zones and Mem-Info page counts from a report's lines; None when it printed neither."""
    zones: dict[str, Zone] = {}
    pages: dict[str, int] = {}
    for entry in lines:
        text = entry.text if isinstance(entry, LogLine) else entry
        text = text[:2000]
        match = _ZONE_LINE.search(text)
        if match is not None:
            zone = zones.setdefault(match.group("zone"), Zone(match.group("zone")))
            zone.free_kib = int(match.group("free"))
            zone.min_kib = int(match.group("min"))
            zone.low_kib = int(match.group("low"))
            zone.high_kib = int(match.group("high"))
            present = _PRESENT.search(text)
            managed = _MANAGED.search(text)
            zone.present_kib = int(present.group(1)) if present else None
            zone.managed_kib = int(managed.group(1)) if managed else None
            continue
        buddy = _BUDDY_LINE.search(text)
        if buddy is not None:
            zone = zones.setdefault(buddy.group("zone"), Zone(buddy.group("zone")))
            # Several nodes add up: keep one list per zone name.
            counts = dict(zone.blocks)
            for count_text, size_text in _BLOCK.findall(text):
                count, size = int(count_text), int(size_text)
                if size > 0 and size & (size - 1) == 0:
                    counts[size] = counts.get(size, 0) + count
            zone.blocks = sorted(counts.items())
            continue
        if "kb" in text.lower():
            continue  # zone and node lines in kB, not the page counters
        # 2.6.2x-3.x print "Active_anon:"; the names are the same otherwise.
        found = [(name.lower(), int(value)) for name, value in _PAGES.findall(text)]
        if any(name in _COUNTER_NAMES for name, _ in found):
            for name, value in found:
                pages.setdefault(name, value)
    if not zones and not pages:
        return None
    return ZoneReport(tuple(zones.values()), pages)
