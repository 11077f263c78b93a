"""What kind of allocation failed: one that may fail by design, one that could not wait, or one
that could and still failed.

The three need different answers:

* opportunistic — `__GFP_NORETRY` (the caller asked to fail rather than work
  hard, and has a fallback: smaller pages, a retry, a dropped packet) or a
  GFP_NOWAIT-style mask with neither reclaim nor the `__GFP_HIGH` reserve
  (transparent hugepages, readahead, speculative slab refills). These are
  reported but never sized on: they fail by design when memory is busy;
* atomic — could not sleep but may dip into the reserve (`__GFP_HIGH`, i.e.
  GFP_ATOMIC: network receive in softirq, interrupt handlers): they show the
  reserve (vm.min_free_kbytes and the watermarks above it) ran dry;
* reclaim — could wait for reclaim and compaction and still failed: real
  pressure.

Flags are those the parser printed or decoded for the kernel that wrote the
report (the bit layout moved in 4.4, 4.10, 4.16, 4.20 and 6.3), so the same
hex mask is judged by its own kernel's rules.
"""

from __future__ import annotations

from typing import Literal

from xenaudit.parsers.interface import OomInvoked, PageAllocFailure

FailureKind = Literal["opportunistic", "atomic", "reclaim"]

#: Names (bits or composites) that mean the allocation could enter direct reclaim.
_CAN_RECLAIM = frozenset(
    {
        "__GFP_DIRECT_RECLAIM",
        "__GFP_WAIT",
        "__GFP_RECLAIM",
        "GFP_KERNEL",
        "GFP_USER",
        "GFP_HIGHUSER",
        "GFP_HIGHUSER_MOVABLE",
        "GFP_NOIO",
        "GFP_NOFS",
        "GFP_KERNEL_ACCOUNT",
        "GFP_TEMPORARY",
        "GFP_TRANSHUGE",
    }
)
#: The caller may use the reserve below the min watermark.
_HIGH = frozenset({"__GFP_HIGH", "GFP_ATOMIC", "__GFP_ATOMIC"})


def classify(event: PageAllocFailure | OomInvoked) -> tuple[FailureKind, str]:
    """The failure's kind and the flag that decided it, for the report."""
    flags = set(event.gfp_flags)
    if "__GFP_NORETRY" in flags:
        return "opportunistic", "__GFP_NORETRY: the caller asked to fail rather than retry"
    if flags & _CAN_RECLAIM:
        return "reclaim", "it could wait for reclaim and compaction"
    if flags & _HIGH:
        return "atomic", "GFP_ATOMIC (__GFP_HIGH): it could not sleep and may use the reserve"
    mask = (event.gfp_mask or "").lower()
    if flags or mask in ("0x0", "0"):
        # Decoded or printed flags without reclaim or __GFP_HIGH: GFP_NOWAIT and kin
        # (GFP_NOWAIT was 0 before 4.4, __GFP_KSWAPD_RECLAIM alone since).
        return "opportunistic", "GFP_NOWAIT-style: neither reclaim nor the reserve allowed"
    if isinstance(event, PageAllocFailure) and event.is_atomic:
        return "atomic", "could not sleep"
    return "reclaim", "flags unknown; counted as a failure that could wait"


def zone_limit(event: PageAllocFailure | OomInvoked) -> str | None:
    """The zone an allocation was restricted to, when its flags name one."""
    flags = set(event.gfp_flags)
    if "__GFP_DMA" in flags or "GFP_DMA" in flags:
        return "DMA"
    if "__GFP_DMA32" in flags or "GFP_DMA32" in flags:
        return "DMA32"
    return None
