"""Fragmentation: higher-order allocations that failed while memory sat in small blocks.

Judged from the buddy lists the newest failure report printed (free memory
at the moment it failed), else from tonight's /proc/buddyinfo. ZONE_DMA is
left out of both: lowmem_reserve keeps ordinary allocations from its free
pages. More memory helps such guests less than compaction or fewer
high-order users, and the finding says so, naming the caller from the
report's call trace (fork, a conntrack resize, jumbo-frame receive...).
Failures of allocations that may fail by design (NORETRY, NOWAIT) are not
counted here: see failures.py.
"""

from __future__ import annotations

from xenaudit.analysis import buddy as buddy_lib
from xenaudit.analysis import evidence as ev
from xenaudit.analysis.calltrace import caller
from xenaudit.analysis.interface import DomainInput, Evidence, Finding, Severity
from xenaudit.analysis.signals import Signals

#: At least this share of free memory in blocks too small for the failing order.
FRAGMENTED_INDEX = 0.75
#: Zones whose free pages ordinary allocations may not use (lowmem_reserve).
RESERVED_ZONES = ("DMA",)


def fragmentation_finding(item: DomainInput, s: Signals) -> Finding | None:
    events = s.high_order
    if not events:
        return None
    fresh = s.fresh_of(events)
    smallest = min(e.order for e in events)
    order = smallest
    count = s.tally("high_order")
    evidence: list[Evidence] = list(ev.failures(s, events, count))
    # The newest report that printed its buddy lists shows free memory at the
    # moment it failed, judged for its own order; otherwise tonight's lists
    # for the smallest failing order.
    with_lists = next((e for e in reversed(events) if e.buddy_lines), None)
    blocks = None
    if with_lists is not None:
        blocks = buddy_lib.from_report_lines(
            with_lists.buddy_lines, RESERVED_ZONES
        ) or buddy_lib.from_report_lines(with_lists.buddy_lines)
    when = "at the failure"
    dma_left_out = with_lists is not None and any(
        buddy_lib.zone_of(line) in RESERVED_ZONES for line in with_lists.buddy_lines
    )
    if blocks is not None and with_lists is not None:
        order = with_lists.order
        when = f"at the order-{order} failure (line {with_lists.line})"
    elif item.facts is not None and item.facts.buddyinfo is not None:
        buddyinfo = item.facts.buddyinfo
        usable = [z.zone for z in buddyinfo.zones if z.zone not in RESERVED_ZONES]
        blocks = buddy_lib.from_buddyinfo(buddyinfo, usable or None)
        dma_left_out = bool(usable) and len(usable) < len(buddyinfo.zones)
        when = "tonight (/proc/buddyinfo)"
    source = "kernlog" if with_lists is not None and blocks is not None else "buddyinfo"
    when_cap = when[0].upper() + when[1:]
    atomic = any(e.is_atomic for e in events)
    users = sorted({ev.process_name(e) for e in events})
    detail = (
        f"{count} allocation(s) of order {ev.orders(events, count)} "
        f"({', '.join(users[:5])}) need {s.page_kib << smallest} KiB or more in one piece. "
    )
    callers = list(dict.fromkeys(c.description for c in (caller(e) for e in reversed(events)) if c))
    if callers:
        detail += f"They came from {'; '.join(callers[:3])}. "
    if blocks is not None:
        total = blocks.total_kib
        in_blocks = blocks.kib_at_least_order(order)
        index = blocks.unusable_index(order)
        largest = blocks.largest_order()
        evidence.append(
            Evidence(
                source,
                f"{when}: {total} kB free, {in_blocks} kB of it in blocks of order ≥ {order}"
                + (f" (unusable free index {index:.2f})" if index is not None else "")
                + (f"; largest free block order {largest}" if largest is not None else "")
                + ("; ZONE_DMA not counted (lowmem_reserve)" if dma_left_out else ""),
            )
        )
        if index is not None and index >= FRAGMENTED_INDEX:
            detail += (
                f"{when_cap} {total} kB were free but {index:.0%} of it sat in "
                f"blocks smaller than order {order}: memory is fragmented. "
            )
        elif index is None:
            detail += f"{when_cap} nothing was free at all: this is also a shortage. "
        else:
            detail += (
                f"{when_cap} {in_blocks} kB were free in large enough blocks, so the "
                "failures came from bursts that outran compaction. "
            )
    else:
        detail += "No buddy lists were collected to show how fragmented free memory was. "
    detail += (
        "More memory helps less here than for a plain shortage: it postpones fragmentation "
        "but does not prevent it. Compaction settings or fewer high-order users "
        "(jumbo frames, drivers asking for order-3 and larger buffers) address the cause."
    )
    if atomic:
        detail += (
            " Some of these could not wait for compaction (atomic), so a larger "
            "vm.min_free_kbytes also keeps more large blocks free."
        )
    if fresh:
        severity: Severity = "warning"
    else:
        severity = "info"
        detail += " " + ev.stale_note(s) + "."
    return Finding(
        "fragmentation",
        severity,
        f"Fragmentation: order-{smallest}+ allocations failed",
        detail,
        tuple(evidence),
    )
