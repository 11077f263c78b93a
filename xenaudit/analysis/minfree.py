"""A vm.min_free_kbytes proposal sized to the guest, with the kernel's own default beside it.

Atomic allocations (network receive in softirq, `swapper … mode:0x20`)
cannot wait for reclaim; they live off the free pages kept below the min
watermark, whose size is vm.min_free_kbytes. Raising it helps such guests,
but the value copied around the internet (65536) was chosen for large
machines: on a 512 MiB guest it locks away an eighth of memory. So the
proposal scales with the guest and is explained against what the kernel
would pick by itself.

The kernel default (init_per_zone_wmark_min in mm/page_alloc.c) is
sqrt(lowmem_kbytes * 16), clamped. The lower clamp has been 128 kB since
the formula appeared; the upper one was 65536 kB until Linux 5.7 raised it
to 262144 kB ("mm/page_alloc: increase default min_free_kbytes bound").
Either bound only matters above 16 GiB, far beyond a typical DomU, but we
quote the right one for the guest's kernel. With transparent hugepages,
khugepaged may raise the value further (to at most 5% of low memory), which
is why the guest's live value is preferred to the formula when we have it.
"""

from __future__ import annotations

import math

from xenaudit.analysis.interface import MinFreeSuggestion

FLOOR_KIB = 128
OLD_CEILING_KIB = 65536
NEW_CEILING_KIB = 262144
#: The first kernel with the 262144 kB ceiling.
NEW_CEILING_SINCE = (5, 7)

#: The proposal doubles the reserve the guest runs with ...
GROWTH = 2
#: ... is at least this share of memory ...
MIN_SHARE = 0.01
#: ... and never more than this share (khugepaged's own ceiling for its raise).
MAX_SHARE = 0.05
#: A round number admins can recognise.
GRANULE_KIB = 1024
#: The value often copied between guests of every size.
BLANKET_KIB = 65536


def kernel_ceiling_kib(kernel: tuple[int, int] | None) -> int:
    """Upper clamp of the default for this kernel (the newer one when unknown)."""
    if kernel is not None and kernel < NEW_CEILING_SINCE:
        return OLD_CEILING_KIB
    return NEW_CEILING_KIB


def kernel_default_kib(lowmem_kib: int, kernel: tuple[int, int] | None = None) -> int:
    """What init_per_zone_wmark_min would pick for this much low memory."""
    raw = math.isqrt(max(lowmem_kib, 0) * 16)
    return max(FLOOR_KIB, min(raw, kernel_ceiling_kib(kernel)))


def _era(kernel: tuple[int, int] | None) -> str:
    if kernel is None:
        return (
            f"clamped to {FLOOR_KIB}–{NEW_CEILING_KIB} kB (Linux ≥ 5.7; {OLD_CEILING_KIB} before)"
        )
    where = f"Linux {kernel[0]}.{kernel[1]}"
    return f"clamped to {FLOOR_KIB}–{kernel_ceiling_kib(kernel)} kB on {where}"


def suggest(
    mem_total_kib: int,
    current_kib: int | None,
    kernel: tuple[int, int] | None = None,
    high_total_kib: int | None = None,
    resized_kib: int | None = None,
) -> MinFreeSuggestion | None:
    """Propose a larger reserve for a guest of `mem_total_kib`, or None when none fits.

    `resized_kib` is the MemTotal the guest will have after a recommended
    resize; the proposal is scaled to it. None means the guest already keeps
    as much as we would ever propose (MAX_SHARE): then more memory, not a
    larger reserve, is the answer.
    """
    if mem_total_kib <= 0:
        return None
    high = high_total_kib or 0
    lowmem_now = max(mem_total_kib - high, 0)
    size = max(resized_kib or mem_total_kib, mem_total_kib)
    lowmem = max(size - high, 0)
    default_now = kernel_default_kib(lowmem_now, kernel)
    default = kernel_default_kib(lowmem, kernel)
    running = current_kib if current_kib and current_kib > 0 else default_now
    ceiling = int(lowmem * MAX_SHARE) // GRANULE_KIB * GRANULE_KIB
    wanted = max(GROWTH * running, math.ceil(size * MIN_SHARE))
    proposed = min(math.ceil(wanted / GRANULE_KIB) * GRANULE_KIB, ceiling)
    if proposed <= max(running, default):
        return None

    share = 100.0 * proposed / size
    blanket_share = 100.0 * BLANKET_KIB / size
    reasons = [
        f"kernel default for {round(lowmem / 1024)} MiB of low memory: "
        f"sqrt({lowmem} × 16) = {math.isqrt(lowmem * 16)} kB, {_era(kernel)} → {default} kB",
    ]
    if size != mem_total_kib:
        reasons.append(
            f"sized for the {round(size / 1024)} MiB MemTotal the guest will have after the "
            f"resize (now {round(mem_total_kib / 1024)} MiB, kernel default {default_now} kB)"
        )
    if current_kib is None:
        reasons.append(
            f"the guest's current value was not read; assuming the default {default_now} kB"
        )
    elif current_kib > default_now:
        reasons.append(
            f"the guest runs with {current_kib} kB, above the formula's {default_now} kB "
            "(raised by hand or by khugepaged for transparent hugepages)"
        )
    elif current_kib < default_now:
        reasons.append(
            f"the guest runs with {current_kib} kB, below the formula's {default_now} kB "
            "(set by hand, or the kernel counted slightly less low memory than MemTotal)"
        )
    else:
        reasons.append(f"the guest runs with the default {current_kib} kB")
    reasons.append(
        f"proposed {proposed} kB = {share:.1f}% of its {round(size / 1024)} MiB: "
        f"{GROWTH}× the reserve it runs with, at least {MIN_SHARE:.0%} of memory, "
        f"at most {MAX_SHARE:.0%} (the ceiling the kernel's own hugepage tuning uses)"
    )
    reasons.append(
        "atomic allocations cannot wait for reclaim and are served from the pages kept "
        "below the min watermark; a larger reserve wakes kswapd earlier and leaves more "
        "for bursts of network receive"
    )
    if proposed < BLANKET_KIB:
        reasons.append(
            f"a blanket {BLANKET_KIB} kB would lock away {blanket_share:.0f}% of this guest "
            "and push it into reclaim and swap all the time"
        )
    return MinFreeSuggestion(
        current_kib=current_kib,
        kernel_default_kib=default,
        suggested_kib=proposed,
        sized_for_kib=size,
        reasons=tuple(reasons),
    )
