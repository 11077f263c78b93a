"""Why the OOM killer ran: the whole guest out of memory, or something more memory cannot fix.

The OOM report prints the failed allocation's order and flags, the free
memory and watermarks of each zone, the buddy lists and the Mem-Info page
counters. Read together they tell:

* fragmentation — an allocation of order ≥ 1 (a fork's kernel stack is
  order 2) failed while the zones it could use were above their high
  watermark but held no free block of that order: memory was free, only not
  in one piece. More memory postpones this, compaction and the caller
  address it;
* zone — the allocation was restricted to ZONE_DMA (16 MiB) or to
  ZONE_DMA32, which ends at 4 GiB whatever the guest's size: on a guest that
  large, more memory cannot help;
* slab — the report listed "Unreclaimable slab info", which the kernel
  prints when unreclaimable slab exceeds all user pages (mm/oom_kill.c): a
  kernel leak, not a working set;
* shortage — everything else: the working set did not fit.

ZONE_DMA's free pages never count as usable free memory: lowmem_reserve
keeps ordinary allocations out of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from xenaudit.analysis import zones as zones_lib
from xenaudit.analysis.calltrace import Caller, caller
from xenaudit.analysis.failures import zone_limit
from xenaudit.parsers.interface import LogLine, OomInvoked

OomKind = Literal["fragmentation", "zone", "slab", "shortage"]

#: "Free swap  = 0kB" / "Total swap = 979956kB" in the report.
_SWAP = re.compile(r"\b(Free|Total) swap\s*=\s*(\d+)kB")
#: "kmalloc-2048           59164KB      59164KB" under "Unreclaimable slab info:".
_SLAB_ROW = re.compile(r"^\s*(\S+)\s+(\d+)KB\s+(\d+)KB\s*$")
#: Mem-Info page counters that reclaim could not free at the kill.
UNRECLAIMABLE_COUNTERS = (
    "active_anon",
    "inactive_anon",
    "isolated_anon",
    "unevictable",
    "slab_unreclaimable",
    "pagetables",
)


@dataclass(frozen=True)
class OomCause:
    kind: OomKind
    #: One or two sentences with the numbers.
    text: str
    #: Memory that could not be reclaimed at the kill (anon, unreclaimable slab,
    #: page tables, and what was in swap), KiB, when the report printed its Mem-Info.
    unreclaimable_kib: int | None = None
    #: Of that, what sat in swap (Total swap − Free swap in the report), KiB.
    swap_used_kib: int | None = None
    #: The largest unreclaimable slab cache the report named, with its size.
    slab_cache: tuple[str, int] | None = None
    caller: Caller | None = None


def _slab_list(invoked: OomInvoked) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    inside = False
    for entry in invoked.context:
        text = entry.text
        if not inside:
            inside = "Unreclaimable slab info" in text
            continue
        if text.strip().startswith("Name"):
            continue
        match = _SLAB_ROW.match(text)
        if match is None:
            break
        rows.append((match.group(1)[:40], int(match.group(3))))
    return sorted(rows, key=lambda r: -r[1])


def _slab_dominates(pages: dict[str, int]) -> bool:
    """mm/oom_kill.c's is_dump_unreclaim_slabs: unreclaimable slab above all LRU pages."""
    if "slab_unreclaimable" not in pages or "active_anon" not in pages:
        return False
    lru = sum(
        pages.get(name, 0)
        for name in (
            "active_anon",
            "inactive_anon",
            "active_file",
            "inactive_file",
            "isolated_anon",
            "isolated_file",
            "unevictable",
        )
    )
    return pages["slab_unreclaimable"] > lru


def _swap_used(invoked: OomInvoked) -> int | None:
    values: dict[str, int] = {}
    for entry in invoked.context:
        for kind, number in _SWAP.findall(entry.text):
            values.setdefault(kind, int(number))
    if "Free" in values and "Total" in values:
        return max(0, values["Total"] - values["Free"])
    return None


def judge(invoked: OomInvoked, page_kib: int, guest_kib: int | None) -> OomCause:
    """The cause of one guest-wide OOM invocation, from its own report."""
    order = invoked.order or 0
    lines: list[LogLine | str] = [*invoked.context, *invoked.buddy_lines]
    report = zones_lib.read(lines)
    who = caller(invoked)
    unreclaimable = None
    swap_used = _swap_used(invoked)
    if report is not None and all(
        name in report.pages for name in ("active_anon", "inactive_anon")
    ):
        unreclaimable = sum(report.pages.get(n, 0) for n in UNRECLAIMABLE_COUNTERS) * page_kib
        # Anonymous memory pushed to swap is memory the guest needed as well.
        unreclaimable += swap_used or 0
    slabs = _slab_list(invoked)
    listed = any("Unreclaimable slab info" in e.text for e in invoked.context)
    if listed or (report is not None and _slab_dominates(report.pages)):
        top = slabs[0] if slabs else None
        named = f"; the largest is {top[0]} with {top[1] // 1024} MiB" if top else ""
        why = (
            "The report lists unreclaimable slab, which the kernel does only when it exceeds "
            "all user pages"
            if listed
            else "Its Mem-Info shows more unreclaimable slab than all user pages together (the "
            "test the kernel uses before it lists slab caches)"
        )
        return OomCause(
            "slab",
            f"{why}: kernel memory, not the working set, filled the guest{named}.",
            unreclaimable,
            swap_used,
            top,
            who,
        )
    limit = zone_limit(invoked)
    if limit == "DMA" or (limit == "DMA32" and guest_kib and guest_kib > zones_lib.DMA32_END_KIB):
        end = "16 MiB" if limit == "DMA" else "4 GiB"
        return OomCause(
            "zone",
            f"The allocation was restricted to ZONE_{limit}, which ends at {end} whatever the "
            "guest's size: more memory cannot help it.",
            unreclaimable,
            swap_used,
            None,
            who,
        )
    if report is not None and order >= 1:
        usable = [
            z for z in report.usable(limit) if z.free_kib is not None and z.high_kib is not None
        ]
        if usable:
            free = sum(z.free_kib or 0 for z in usable)
            high = sum(z.high_kib or 0 for z in usable)
            with_blocks = [z for z in usable if z.blocks]
            block_kib = page_kib << order
            big = sum(z.kib_at_least(block_kib) for z in with_blocks) if with_blocks else None
            names = "+".join(z.name for z in usable)
            if free > high and big is not None and big < block_kib:
                return OomCause(
                    "fragmentation",
                    f"An order-{order} allocation ({block_kib} KiB in one piece) failed while "
                    f"{names} had {free} kB free, above their high watermarks ({high} kB), but "
                    f"no free block of order {order} or larger: memory was free, only not in "
                    "one piece (ZONE_DMA's free pages are kept back by lowmem_reserve and not "
                    "counted).",
                    unreclaimable,
                    swap_used,
                    None,
                    who,
                )
    return OomCause("shortage", "The guest ran out of memory.", unreclaimable, swap_used, None, who)
