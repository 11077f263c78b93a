"""What kind of allocation failed: one that may fail by design, one that could not wait, or one
that could and still failed.

The three need different answers:

* opportunistic — `__GFP_NORETRY` (the caller asked to fail rather than work
  hard, and has a fallback: smaller pages, a retry, a dropped packet) or a
  GFP_NOWAIT-style mask with neither reclaim nor the reserve (transparent
  hugepages, readahead, speculative slab refills). These are reported but
  never sized on: they fail by design when memory is busy;
* atomic — could not sleep but may dip into the reserve (GFP_ATOMIC:
  network receive in softirq, interrupt handlers): they show the reserve
  (vm.min_free_kbytes and the watermarks above it) ran dry;
* reclaim — could wait for reclaim and compaction and still failed: real
  pressure.

The kernel-log parser decides both questions, from the flags it printed or
decoded by the rules of the kernel that wrote the report (the bit layout
moved in 4.4, 4.10, 4.16, 4.20 and 6.3): `PageAllocFailure.opportunistic`
and `PageAllocFailure.is_atomic`. It counts every failure the same way
(`EventCounts`), so the kinds read here from the kept reports agree with
the exact counts over the whole log (logevents.py).
"""

from __future__ import annotations

from typing import Literal

from xenaudit.parsers.interface import OomInvoked, PageAllocFailure

FailureKind = Literal["opportunistic", "atomic", "reclaim"]


def kind(event: PageAllocFailure) -> FailureKind:
    """The failure's kind, as the parser classified its request."""
    if event.opportunistic:
        return "opportunistic"
    return "atomic" if event.is_atomic else "reclaim"


def opportunistic_reason(event: PageAllocFailure) -> str:
    """Why a failure the parser called opportunistic may fail by design, for the report."""
    if "__GFP_NORETRY" in event.gfp_flags:
        return "__GFP_NORETRY: the caller asked to fail rather than retry"
    return "GFP_NOWAIT-style: neither reclaim nor the reserve allowed"


def zone_limit(event: PageAllocFailure | OomInvoked) -> str | None:
    """The zone an allocation was restricted to, when its flags name one."""
    flags = set(event.gfp_flags)
    if "__GFP_DMA" in flags or "GFP_DMA" in flags:
        return "DMA"
    if "__GFP_DMA32" in flags or "GFP_DMA32" in flags:
        return "DMA32"
    return None
