"""From a measured need to a memory/maxmem recommendation in xl.cfg terms.

The rule, in the order the reasons quote it:

1. need = the peak of MemTotal − MemAvailable over the nights in history and
   tonight (tonight only without history);
2. + swap used, when swap-in, major faults or PSI show the guest is reading
   back what it pushed out: anonymous memory in swap is memory it needs;
3. + the kernel/firmware reservation: the gap between what the guest was
   given and the MemTotal it reports, so the number is in cfg terms;
4. × (1 + margin), rounded up to the step;
5. after a guest-wide OOM kill that was a shortage (new, or unresolved from
   an earlier night), at least max(used + oom_bump_mib, used × 1.2), the
   rule of Kubernetes' Vertical Pod Autoscaler, where used is what the
   evidence says the guest needed at the kill: what its report shows could
   not be reclaimed (anon, unreclaimable slab, page tables), else tonight's
   need plus the victim's RSS when the victim is not running again;
6. warning-level pressure, or atomic failures while available memory is
   also short: at least one step above the current memory (atomic failures
   with plenty available are answered by live sysctls, see advice.py);
7. an unresolved finding keeps the recommendation of the night it was new;
8. never below floor_mib nor the domain's min_memory_mib; an increase is at
   least max(64 MiB, 5%) of the current size, so a restart is worth it. A
   guest already below floor_mib whose need fits is kept: the floor alone
   never makes an increase (a domain's own min_memory_mib does).

Memory is held (no increase) when more cannot help: unreclaimable slab that
is a leak, or OOM kills whose own reports show fragmentation or a zone
limit.

A proposal below the current size becomes a decrease only with at least
decrease_min_nights of undamaged history, no pressure on any of those
nights or tonight (including cumulative counters that rose in between), no
failure in the log, whole numbers tonight, no populate-on-demand risk, and
a saving of at least decrease_min_fraction; otherwise memory is kept and
the reasons say which condition failed.

maxmem: equal to memory for HVM and PVH guests without a confirmed balloon
driver (libxl would start them in populate-on-demand mode) and for every
domain with PCI passthrough (libxl refuses PoD with an IOMMU); headroom
above memory only where the balloon driver is confirmed, and for HVM and PVH
only when the domain already runs in PoD mode: a patch never starts it.

Confidence grows with history: fewer than 3 nights is low, fewer than 7
medium, then high; an estimated MemAvailable (pre-3.14 guest) lowers it
one level.

When nothing should change the result is a Recommendation with change
"none" and the reasons, so the report can say why; None is kept for
domains that could not be sized at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xenaudit.analysis import evidence as ev
from xenaudit.analysis.diagnosis import MAJFAULT_THRASH_SHARE, SWAPIN_ACTIVE_SHARE, Diagnosis
from xenaudit.analysis.interface import (
    Advice,
    Confidence,
    DomainInput,
    Evidence,
    Finding,
    Recommendation,
)
from xenaudit.analysis.signals import Signals
from xenaudit.analysis.units import kib_to_mib, round_up_to_step

OOM_BUMP_FACTOR = 1.2
#: An increase is at least this much, and at least MIN_INCREASE_SHARE of the current size.
MIN_INCREASE_MIB = 64
MIN_INCREASE_SHARE = 0.05
#: An OOM kill with less than this share of the guest unreclaimable was not the whole guest
#: running out: the bump is then sized from the evidence alone, without a forced step.
OOM_FULL_SHARE = 0.80
LOW_CONFIDENCE_BELOW_NIGHTS = 3
MEDIUM_CONFIDENCE_BELOW_NIGHTS = 7
_CONFIDENCE_ORDER: tuple[Confidence, ...] = ("low", "medium", "high")


@dataclass(frozen=True)
class Sizing:
    recommendation: Recommendation | None
    #: Findings only the sizing can raise (over_provisioned, balloon_below_need, headroom).
    findings: tuple[Finding, ...] = ()
    #: The memory the guest would have after the change (MiB), for the reserve proposal.
    planned_memory_mib: int | None = None
    #: Advice only the sizing can give (maxmem headroom for next time).
    advice: tuple[Advice, ...] = ()


def confidence(nights: int, estimated: bool) -> tuple[Confidence, str]:
    if nights < LOW_CONFIDENCE_BELOW_NIGHTS:
        level = 0
    elif nights < MEDIUM_CONFIDENCE_BELOW_NIGHTS:
        level = 1
    else:
        level = 2
    why = (
        f"confidence from {nights} night(s) of history "
        f"(< {LOW_CONFIDENCE_BELOW_NIGHTS} low, < {MEDIUM_CONFIDENCE_BELOW_NIGHTS} medium, "
        "else high)"
    )
    if estimated and level > 0:
        level -= 1
        why += ", one level lower because MemAvailable had to be estimated"
    return _CONFIDENCE_ORDER[level], why


def _need_reason(s: Signals, peak_kib: int, peak_at: str) -> str:
    tonight = s.need_kib
    if peak_at == "tonight" and tonight is not None:
        text = (
            f"need {kib_to_mib(peak_kib)} MiB tonight (MemTotal {kib_to_mib(s.mem_total_kib or 0)} "
            f"MiB − MemAvailable {kib_to_mib(s.mem_available_kib or 0)} MiB)"
        )
        if s.nights:
            text += f", the peak over {len(s.nights)} night(s) of history and tonight"
        return text
    text = (
        f"need {kib_to_mib(peak_kib)} MiB: peak of MemTotal − MemAvailable over "
        f"{len(s.nights)} night(s) and tonight, seen on {peak_at}"
    )
    if tonight is not None:
        text += f" (tonight {kib_to_mib(tonight)} MiB"
        if s.median_need_kib is not None:
            text += f", median {kib_to_mib(s.median_need_kib)} MiB"
        text += ")"
    return text


def article(kind: str | None) -> str:
    """ "an HVM", "a PVH": the article xl.cfg's type names take in English."""
    name = (kind or "hvm").upper()
    return f"an {name}" if name.startswith("H") else f"a {name}"


def _maxmem(item: DomainInput, s: Signals, memory: int, increase: bool) -> tuple[int, list[str]]:
    t = item.thresholds
    current_max = max(s.current_maxmem_mib or memory, 0)
    reasons: list[str] = []
    if s.passthrough:
        if current_max != memory or increase:
            reasons.append(
                f"maxmem = memory = {memory} MiB: the domain passes hardware through "
                f"({s.passthrough}) and libxl refuses populate-on-demand with an IOMMU; no "
                "headroom above memory, in increases and decreases alike"
            )
        return memory, reasons
    if s.guest_type in ("hvm", "pvh") and not s.balloon_confirmed:
        if current_max != memory:
            reasons.append(
                f"maxmem = memory = {memory} MiB: libxl starts {article(s.guest_type)} guest "
                "with maxmem above memory in populate-on-demand mode, and without a confirmed "
                "balloon driver it is killed when it touches memory Xen did not back "
                f"({s.balloon_basis})"
            )
        return memory, reasons
    already_pod = s.cfg_memory_mib is not None and current_max > s.cfg_memory_mib
    if s.guest_type in ("hvm", "pvh") and not already_pod:
        if increase:
            reasons.append(
                f"maxmem = memory = {memory} MiB: headroom above memory would start this "
                f"{(s.guest_type or '').upper()} guest in populate-on-demand mode, which it does "
                "not run in today; PoD leaves the guest at the mercy of its balloon driver "
                "reaching the target before the guest touches unbacked memory, so a patch "
                "never introduces it"
            )
        return memory, reasons
    if s.balloon_confirmed and s.guest_type in ("pv", "pvh", "hvm") and increase:
        with_headroom = round_up_to_step(memory * (1 + t.maxmem_headroom), t.step_mib)
        maxmem = max(current_max, with_headroom)
        if maxmem > current_max:
            reasons.append(
                f"maxmem {maxmem} MiB: {t.maxmem_headroom:.0%} headroom above memory so the "
                f"next increase can be done live with `xl mem-set` ({s.balloon_basis})"
            )
        return maxmem, reasons
    maxmem = max(current_max, memory)
    if increase and maxmem == memory and current_max < memory:
        why = "guest type unknown" if s.guest_type is None else s.balloon_basis
        reasons.append(f"maxmem raised to memory only, no headroom: {why}")
    return maxmem, reasons


def _live(
    item: DomainInput, s: Signals, memory: int, raising: bool, shrinking: bool = False
) -> tuple[bool, str | None]:
    """Whether `xl mem-set` to `memory` is safe on the running domain, and why (not).

    Growing is safe up to the live maxmem. Shrinking is safe when the balloon
    driver works and the new size stays above what the guest uses tonight, plus
    its kernel reservation: the decrease was sized from the peak over many nights.
    """
    name = s.domain
    if item.host.backend == "libvirt":
        command = f"virsh setmem {name} {memory}M --live"
    else:
        command = f"xl mem-set {name} {memory}m"
    if not raising and not shrinking:
        return False, None
    if not s.running:
        return False, "the domain is not running: the new size applies at its next start"
    if s.guest_type not in ("pv", "pvh", "hvm"):
        return False, "guest type unknown: change memory with a restart, not live"
    if not s.balloon_confirmed:
        return False, f"not safe live: {s.balloon_basis}; apply with a restart"
    if s.live_max_kib is None:
        return False, "the live maxmem is unknown: apply with a restart"
    live_max = s.live_max_kib // 1024
    if shrinking:
        need = s.need_kib
        if need is None:
            return False, "tonight's need is unknown: decrease with a restart"
        floor = kib_to_mib(need + s.reservation_kib)
        if memory <= floor:
            return False, f"{memory} MiB is not above tonight's use ({floor} MiB): not live"
        return True, (
            f"safe live: `{command}` (above tonight's use of {floor} MiB; "
            "the balloon driver gives the rest back to the host)"
        )
    if memory > live_max:
        return False, (
            f"{memory} MiB is above the live maxmem {live_max} MiB: needs a restart "
            "(maxmem cannot grow on a running domain)"
        )
    return True, f"safe live: `{command}` (within the live maxmem {live_max} MiB)"


def _balloon_findings(s: Signals, d: Diagnosis, proposal: int) -> list[Finding]:
    findings: list[Finding] = []
    cfg = s.cfg_memory_mib
    if cfg is not None and s.live_target_kib is not None:
        target_mib = s.live_target_kib // 1024
        if target_mib < cfg and (d.pressure_tonight or target_mib < proposal):
            findings.append(
                Finding(
                    "balloon_below_need",
                    "warning",
                    "Balloon target below what the guest needs",
                    f"The live balloon target {target_mib} MiB is below the cfg memory {cfg} MiB "
                    f"(an earlier `xl mem-set`), and the guest needs about {proposal} MiB. "
                    f"Give it back with `xl mem-set {s.domain} {max(cfg, proposal)}m` "
                    "or the next restart will.",
                    (
                        Evidence(
                            "hypervisor",
                            f"target {s.live_target_kib} KiB, cfg memory {cfg} MiB",
                        ),
                    ),
                )
            )
    # The guest's own view first; Xen's (xl list Mem against the target) when
    # the guest could not tell us.
    target: int | None = s.balloon_target_kib
    held: int | None = s.balloon_current_kib
    source = "balloon"
    if target is None or held is None:
        target, held, source = s.live_target_kib, s.live_current_kib, "hypervisor"
    if target is not None and held is not None and held + 1024 < target:
        short = target - held
        findings.append(
            Finding(
                "balloon_below_need",
                "warning",
                "The balloon driver could not reach its target",
                f"The guest holds {kib_to_mib(short)} MiB less than Xen's target for it: the "
                "host had no free memory to give when the target was raised.",
                (Evidence(source, f"target {target} KiB, holds {held} KiB"),),
            )
        )
    return findings


def _swap_need(item: DomainInput, s: Signals, d: Diagnosis) -> tuple[int, str | None]:
    """Swap used (KiB) counted as need when the guest reads back what it swapped out.

    "Reads back" uses the diagnosis's own thresholds: swap-in above 1% of
    memory since the last night, major faults reading back more than the
    guest's memory, or PSI stalls at the warning level.
    """
    t = item.thresholds
    reading_back = []
    total = s.mem_total_kib or 0
    if s.pswpin.delta and not s.pswpin.reset:
        swapped_in = s.pswpin.delta * s.page_kib
        if swapped_in > total * SWAPIN_ACTIVE_SHARE:
            reading_back.append(
                f"{kib_to_mib(swapped_in)} MiB swapped in since {s.pswpin.previous_at}"
            )
    majfaults = s.pgmajfault.delta or 0
    if not s.pgmajfault.reset and total and majfaults * s.page_kib > total * MAJFAULT_THRASH_SHARE:
        reading_back.append(f"{majfaults} major faults since {s.pgmajfault.previous_at}")
    if s.psi_some_avg60 is not None and s.psi_some_avg60 >= t.psi_some_avg60_warning:
        reading_back.append(f"PSI some avg60 {s.psi_some_avg60:.1f}")
    if not reading_back:
        return 0, None
    if s.swap_used_kib:
        return s.swap_used_kib, (
            f"+ {kib_to_mib(s.swap_used_kib)} MiB in swap counted as need: the guest reads back "
            f"what it swapped out ({'; '.join(reading_back)})"
        )
    if s.pswpin.delta and not s.pswpin.reset:
        swapped = s.pswpin.delta * s.page_kib
        return swapped, (
            f"+ {kib_to_mib(swapped)} MiB swapped in since {s.pswpin.previous_at} counted as "
            "need (swap use unknown)"
        )
    return 0, None


def _oom_used(s: Signals, d: Diagnosis, had: int, need_cfg_kib: int) -> tuple[int, str]:
    """What the guest needed at the kill (MiB, cfg terms), and the evidence it came from."""
    if d.oom_unreclaimable_kib:
        used = math.ceil((d.oom_unreclaimable_kib + s.reservation_kib) / 1024)
        return used, (
            f"{used} MiB could not be reclaimed at the kill (anon, unevictable, unreclaimable "
            "slab and page tables in the OOM report's Mem-Info, what it had in swap, plus the "
            "kernel reservation)"
        )
    running = {p.comm for p in s.top_processes}
    victims = [k for k in s.guest_oom_kills if k.victim_process not in running]
    rss = max((ev.rss_kib(k) or 0 for k in victims), default=0)
    if rss and s.need_kib is not None:
        used = math.ceil((s.need_kib + rss + s.reservation_kib) / 1024)
        victim = ev.clean(victims[-1].victim_process, 40)
        return used, (
            f"{used} MiB: tonight's need plus the RSS of {victim} "
            f"({kib_to_mib(rss)} MiB), which is not running again"
        )
    used = max(had, math.ceil(need_cfg_kib / 1024))
    return used, f"{used} MiB: the size it ran out at (the report shows no finer evidence)"


def _min_increase(current: int, step: int) -> int:
    return round_up_to_step(max(MIN_INCREASE_MIB, current * MIN_INCREASE_SHARE), step)


def _decrease_blocker(
    item: DomainInput, s: Signals, d: Diagnosis, current: int, saving: int
) -> str | None:
    t = item.thresholds
    nights = len(s.usable_nights)
    if d.pressure_tonight:
        return "the guest shows pressure tonight"
    if s.unresolved is not None:
        return s.unresolved.describe()
    if s.sized_failures or s.guest_oom_kills or s.guest_oom_invocations:
        shown = [
            f"{count:,} {what}"
            for count, what in (
                (max(s.failures_total, len(s.sized_failures)), "allocation failure(s)"),
                (s.guest_oom_events, "OOM kill(s)"),
            )
            if count
        ]
        return (
            f"the log still shows {' and '.join(shown)} from this boot; a guest with failures "
            "is never called over-provisioned"
        )
    if d.pressure_nights:
        risen = [r for r in s.rises_history if r.until == d.pressure_nights[-1]]
        what = f": {risen[0].describe()}" if risen else ""
        return (
            f"pressure was seen on {len(d.pressure_nights)} of the last {len(s.nights)} nights "
            f"(latest {d.pressure_nights[-1]}{what})"
        )
    if d.between_nights:
        return "cumulative counters rose since the last night: " + "; ".join(d.between_nights[:3])
    if s.damage is not None or s.reservation_suspect:
        return f"tonight's numbers are damaged or suspect ({s.damage or 'reservation capped'})"
    if s.pod and not s.balloon_confirmed:
        return (
            "the guest runs in populate-on-demand mode: its MemAvailable is measured against "
            "the maxmem it believes it has, not what Xen backs"
        )
    if nights < t.decrease_min_nights:
        damaged = len(s.nights) - nights
        extra = f" ({damaged} damaged night(s) not counted)" if damaged else ""
        return (
            f"only {nights} night(s) of history{extra}; a decrease needs at least "
            f"{t.decrease_min_nights} distinct nights"
        )
    if saving < current * t.decrease_min_fraction:
        return (
            f"it would save only {saving} MiB ({saving / current:.0%}), less than the "
            f"{t.decrease_min_fraction:.0%} worth a change"
        )
    return None


def size(item: DomainInput, s: Signals, d: Diagnosis) -> Sizing:
    """A recommendation for one sizable domain, with the reasons behind each number."""
    t = item.thresholds
    current = s.current_memory_mib
    peak = s.peak_need
    if not s.sizable or current is None or peak is None:
        return Sizing(None)
    peak_kib, peak_at = peak
    reasons = [_need_reason(s, peak_kib, peak_at)]
    swap_kib, swap_reason = _swap_need(item, s, d)
    if swap_reason:
        reasons.append(swap_reason)
    reasons.append(s.reservation_note)
    need_cfg_kib = peak_kib + swap_kib + s.reservation_kib
    with_margin = need_cfg_kib / 1024 * (1 + t.margin)
    sized = round_up_to_step(with_margin, t.step_mib)
    reasons.append(
        f"× {1 + t.margin:.2f} margin = {with_margin:.0f} MiB, rounded up to "
        f"{t.step_mib} MiB steps = {sized} MiB"
    )
    proposal = sized

    # Pressure was felt at the size the guest had, which is the live target
    # when it was ballooned below its cfg memory.
    had = s.experienced_memory_mib or current
    if d.hold_reason is None:
        if d.fresh_oom_kills:
            used, basis = _oom_used(s, d, had, need_cfg_kib)
            bumped = round_up_to_step(
                max(used + t.oom_bump_mib, used * OOM_BUMP_FACTOR), t.step_mib
            )
            why = (
                f"after {d.fresh_oom_kills} OOM kill(s): used = {basis}; at least max({used} + "
                f"{t.oom_bump_mib}, {used} × {OOM_BUMP_FACTOR}) MiB (the Vertical Pod "
                f"Autoscaler's rule), rounded up = {bumped} MiB"
            )
            if used >= had * OOM_FULL_SHARE:
                stepped = round_up_to_step(had + t.step_mib, t.step_mib)
                if stepped > bumped:
                    bumped = stepped
                    why += f", and at least one step above the {had} MiB it ran out at"
            if bumped > proposal:
                proposal = bumped
                reasons.append(
                    why + " (MemAvailable after a kill understates what the victim needed)"
                )
            else:
                reasons.append(why + f"; the sized need ({proposal} MiB) already covers it")
        short = d.shortage_level in ("warning", "critical")
        if (d.atomic_reserve and (d.memory_short or d.severe)) or short:
            stepped = round_up_to_step(had + t.step_mib, t.step_mib)
            if stepped > proposal:
                proposal = stepped
                why = (
                    "atomic allocations failed while available memory is also short"
                    if d.atomic_reserve and not short
                    else "the guest is under pressure"
                )
                where = (
                    f"the current {current} MiB"
                    if had == current
                    else f"the {had} MiB it had (live target)"
                )
                reasons.append(f"{why}: at least one step above {where} = {stepped} MiB")
        elif d.atomic_reserve:
            reasons.append(
                "atomic failures with plenty of memory available: answered live with sysctls "
                "(see the advice), memory is not raised for them"
            )
        unresolved = s.unresolved
        if (
            unresolved is not None
            and unresolved.rec_memory_mib is not None
            and unresolved.rec_memory_mib > current
        ):
            kept = unresolved.rec_memory_mib
            proposal = max(proposal, kept)
            reasons.append(
                f"keeps the {kept} MiB recommended on {unresolved.since} at least: "
                + unresolved.describe()
            )
    own_min = item.override.min_memory_mib or 0
    floor = max(t.floor_mib, own_min)
    if proposal < floor:
        if proposal <= current < floor and current >= own_min:
            reasons.append(
                f"{current} MiB is below floor_mib ({t.floor_mib} MiB) but covers the need: "
                "the floor bounds decreases and sizes increases, it never makes one"
            )
            proposal = current
        else:
            proposal = round_up_to_step(floor, t.step_mib)
            reasons.append(f"raised to the floor of {floor} MiB (on the {t.step_mib} MiB grid)")
    if d.hold_reason is not None and proposal > current:
        reasons.append(
            f"keep {current} MiB although {proposal} MiB would cover the need: {d.hold_reason}"
        )
        proposal = current

    findings: list[Finding] = []
    advice: list[Advice] = []
    memory = current
    change = "none"
    if proposal > current:
        least = current + _min_increase(current, t.step_mib)
        if proposal < least:
            reasons.append(
                f"an increase is at least max({MIN_INCREASE_MIB} MiB, "
                f"{MIN_INCREASE_SHARE:.0%}) so a restart is worth it: {proposal} → {least} MiB"
            )
            proposal = least
        memory, change = proposal, "increase"
        reasons.append(f"increase {current} → {proposal} MiB ({s.current_memory_source} {current})")
    elif proposal < current:
        saving = current - proposal
        blocked = _decrease_blocker(item, s, d, current, saving)
        nights = len(s.usable_nights)
        if blocked is None:
            memory, change = proposal, "decrease"
            reasons.append(
                f"decrease {current} → {proposal} MiB: the peak need with margin stayed below it "
                f"for {nights} distinct nights without pressure"
            )
            findings.append(
                Finding(
                    "over_provisioned",
                    "info",
                    "Over-provisioned",
                    f"Over {nights} nights the guest never needed more than "
                    f"{kib_to_mib(peak_kib)} MiB of its {current} MiB, and no cumulative counter "
                    f"showed pressure in between; {proposal} MiB keeps a {t.margin:.0%} margin "
                    f"and frees {saving} MiB for the host.",
                    (Evidence("history", reasons[0]),),
                )
            )
        else:
            reasons.append(f"keep {current} MiB although {proposal} MiB would do: {blocked}")
            quiet = (
                not d.pressure_tonight
                and not d.pressure_nights
                and not d.between_nights
                and s.unresolved is None
                and not s.sized_failures
                and not s.guest_oom_kills
                and not s.guest_oom_invocations
                and not (s.pod and not s.balloon_confirmed)
            )
            if quiet and saving >= current * t.decrease_min_fraction:
                findings.append(
                    Finding(
                        "over_provisioned",
                        "info",
                        "Possibly over-provisioned (not enough history yet)",
                        f"{proposal} MiB would cover the need seen so far, but {blocked}.",
                        (Evidence("history", reasons[0]),),
                    )
                )
    else:
        reasons.append(f"keep {current} MiB: it matches the sized need")

    increase = change == "increase"
    maxmem, maxmem_reasons = _maxmem(item, s, memory, increase)
    reasons.extend(maxmem_reasons)
    if change == "none" and maxmem != (s.current_maxmem_mib or memory):
        change = "maxmem"

    findings.extend(_balloon_findings(s, d, proposal))
    below_cfg = (
        s.cfg_memory_mib is not None
        and s.live_target_kib is not None
        and s.live_target_kib // 1024 < s.cfg_memory_mib
    )
    live_safe, live_reason = _live(
        item,
        s,
        memory,
        increase or (below_cfg and change != "decrease"),
        shrinking=change == "decrease",
    )
    if live_reason:
        reasons.append(live_reason)
    if (
        increase
        and s.balloon_confirmed
        and not s.passthrough
        and s.guest_type in ("pv", "pvh")
        and (s.current_maxmem_mib or current) <= current
    ):
        advice.append(
            Advice(
                "maxmem leaves no headroom",
                f"maxmem equals memory ({current} MiB), so the guest cannot be given memory "
                f"live; this change needs a restart. The proposed maxmem {maxmem} MiB leaves "
                "room to grow without one next time.",
            )
        )
    level, why = confidence(len(s.usable_nights), s.available_estimated)
    reasons.append(why)
    recommendation = Recommendation(
        memory_mib=memory,
        maxmem_mib=maxmem,
        reasons=tuple(r for r in reasons if r),
        confidence=level,
        need_mib=kib_to_mib(peak_kib + swap_kib),
        change=change,  # type: ignore[arg-type]
        live_change_safe=live_safe,
    )
    return Sizing(recommendation, tuple(findings), memory, tuple(advice))
