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

from xenaudit.analysis.interface import MinFreeSuggestion, SysctlProposal
from xenaudit.analysis.kernel import WATERMARK_SCALE_SINCE, KernelVersion, knob
from xenaudit.parsers.interface import SysVm

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
#: Never propose more than the kernel's own largest default (5.7+).
HARD_CEILING_KIB = NEW_CEILING_KIB
#: A running value this far above the formula was raised by khugepaged or by hand.
RAISED_FACTOR = 1.10
#: watermark_scale_factor: the kernel's default, what we propose (1% of memory between
#: watermarks), and the largest value every kernel since 4.6 accepts.
SCALE_DEFAULT = 10
SCALE_PROPOSED = 100
SCALE_MAX = 1000


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
    # A value khugepaged (transparent hugepages) or an admin already raised is not
    # doubled again: the proposal grows from the formula instead.
    raised = running > default_now * RAISED_FACTOR
    base = default_now if raised else running
    ceiling = min(int(lowmem * MAX_SHARE) // GRANULE_KIB * GRANULE_KIB, HARD_CEILING_KIB)
    # A reserve set by hand far below the formula (128 kB is the kernel's own lower
    # clamp) comes back at least to what the kernel would pick by itself.
    wanted = max(GROWTH * base, math.ceil(size * MIN_SHARE), default)
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
    elif raised:
        reasons.append(
            f"the guest runs with {current_kib} kB, above the formula's {default_now} kB "
            "(raised by khugepaged for transparent hugepages, or by hand): the proposal grows "
            "from the formula, not from that value, so it is not doubled again"
        )
    elif current_kib > default_now:
        reasons.append(
            f"the guest runs with {current_kib} kB, about the formula's {default_now} kB"
        )
    elif GROWTH * current_kib < default_now:
        reasons.append(
            f"the guest runs with {current_kib} kB, far below the formula's {default_now} kB: "
            "set by hand (a sysctl.d file or a tuning guide), and too small a reserve for "
            "atomic bursts; the proposal restores at least the kernel's own default"
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
        f"{GROWTH}× {'the formula' if raised else 'the reserve it runs with'}, at least "
        f"the kernel default and {MIN_SHARE:.0%} of memory, at most {MAX_SHARE:.0%} of low "
        "memory (the ceiling the kernel's own hugepage tuning uses; on 32-bit guests HighMem "
        "does not count) and "
        f"never above {HARD_CEILING_KIB} kB (the kernel's largest default)"
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


def _sysvm_int(sysvm: SysVm | None, name: str) -> int | None:
    if sysvm is None:
        return None
    value = sysvm.get_int(name)
    return value if value is not None else sysvm.get_int(f"vm.{name}")


def scale_factor(
    sysvm: SysVm | None,
    kernel: KernelVersion | None,
    mem_total_kib: int,
    counters: tuple[tuple[str, int], ...] = (),
) -> SysctlProposal | None:
    """vm.watermark_scale_factor for atomic bursts, where the guest's kernel has it (4.6+).

    The kernel sets the low and high watermarks watermark_scale_factor/10000
    of memory above min (Documentation/admin-guide/sysctl/vm.rst): kswapd
    wakes at low and reclaims up to high. With the default 10 that is 0.1%
    of memory, which a burst of network receive crosses before kswapd has
    started; the kernel's documentation names frequent allocstall or
    kswapd_low_wmark_hit_quickly as the sign to raise it.
    """
    has = knob(sysvm, kernel, "watermark_scale_factor", WATERMARK_SCALE_SINCE)
    if not has.present:
        return None
    current = _sysvm_int(sysvm, "watermark_scale_factor")
    running = current if current is not None else SCALE_DEFAULT
    if running >= SCALE_PROPOSED:
        return None
    gap_now = mem_total_kib * running // 10000
    gap = mem_total_kib * SCALE_PROPOSED // 10000
    reasons = [
        has.basis,
        f"the low and high watermarks sit {running}/10000 of memory above min ({gap_now} kB on "
        f"this guest); {SCALE_PROPOSED} puts them {SCALE_PROPOSED / 100:.0f}% apart ({gap} kB), "
        "so kswapd starts reclaiming before a burst reaches the min watermark and atomic "
        "allocations keep their reserve",
        "it reserves nothing: the pages stay usable, kswapd only wakes earlier",
        f"every kernel since 4.6 accepts up to {SCALE_MAX}",
    ]
    if counters:
        reasons.append(
            "the kernel's documentation names allocstall and kswapd_low_wmark_hit_quickly as "
            "the sign to raise it; this guest shows "
            + ", ".join(f"{name} {value}" for name, value in counters)
        )
    return SysctlProposal("vm.watermark_scale_factor", current, SCALE_PROPOSED, tuple(reasons))


def extra_free(sysvm: SysVm | None, mem_total_kib: int) -> SysctlProposal | None:
    """vm.extra_free_kbytes, only where the guest's kernel has it (RHEL 6/7, Android)."""
    current = _sysvm_int(sysvm, "extra_free_kbytes")
    if current is None:
        return None
    proposed = math.ceil(mem_total_kib * MIN_SHARE / GRANULE_KIB) * GRANULE_KIB
    if proposed <= current:
        return None
    return SysctlProposal(
        "vm.extra_free_kbytes",
        current,
        proposed,
        (
            "this kernel has vm.extra_free_kbytes (a vendor addition, listed in its "
            "/proc/sys/vm): it raises the low and high watermarks without raising min",
            f"{proposed} kB = {MIN_SHARE:.0%} of memory keeps that much free for bursts",
        ),
    )
