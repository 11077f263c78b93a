"""Why memory ran short: findings, each with the evidence that fired it.

The point is to tell causes apart, because each has a different fix:

* shortage — the guest's working set does not fit (little available, swap-in,
  stalls, OOM kills): give it memory;
* atomic_reserve — order-0 allocations that could not wait for reclaim
  failed: the reserve below the watermarks ran dry during a burst. With
  plenty available the fix is live sysctls (vm.min_free_kbytes, the
  watermark scale), not a restart; memory is raised only when available
  memory is also short;
* fragmentation — higher-order allocations (or a high-order OOM kill) failed
  while free memory sat in small blocks: more memory helps less than
  compaction or a different caller;
* opportunistic failures — allocations that may fail by design
  (`__GFP_NORETRY`, GFP_NOWAIT): reported, never sized on;
* memory-cgroup OOM kills — a container limit, not the domain, ran out;
* unreclaimable slab that dominates — a kernel leak: memory is held, since
  more only delays the next OOM.

A failure report is judged "severe" only when the guest itself ran out
(critical signals); then its atomic failures are symptoms of the shortage,
not a reserve problem of their own.

An OOM kill or failure storm of an earlier night that nothing has resolved
yet (see unresolved.py) counts as if it were tonight's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xenaudit.analysis import evidence as ev
from xenaudit.analysis.calltrace import caller
from xenaudit.analysis.failures import opportunistic_reason
from xenaudit.analysis.fragmentation import fragmentation_finding
from xenaudit.analysis.interface import DomainInput, Evidence, Finding, Severity, severity_rank
from xenaudit.analysis.oomcause import OomCause, judge
from xenaudit.analysis.oomkills import oom_findings
from xenaudit.analysis.risks import (
    drift_finding,
    hvm_pod_finding,
    passthrough_finding,
    pod_touched_finding,
    slab_finding,
    slab_holds,
)
from xenaudit.analysis.signals import Signals

#: Finding codes that mean the guest is (or was) short of memory.
PRESSURE_CODES = frozenset(
    {"shortage", "atomic_reserve", "fragmentation", "oom_kill", "balloon_below_need"}
)
#: Codes that keep a guest from being called healthy: pressure, and any failure in its log.
NOT_HEALTHY_CODES = PRESSURE_CODES | frozenset(
    {"opportunistic_failures", "pod_exhaustion", "slab_unreclaimable", "passthrough_pod"}
)
#: Swap-in since the last run above this share of MemTotal counts as active swapping.
SWAPIN_ACTIVE_SHARE = 0.01
#: Major faults since the last run reading back more than this share of MemTotal: thrashing.
MAJFAULT_THRASH_SHARE = 1.0


@dataclass(frozen=True)
class Signal:
    severity: Severity
    phrase: str
    evidence: Evidence


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    #: Worst shortage signal ("ok" when there is none).
    shortage_level: Severity
    #: The guest itself ran out (critical signals): atomic failures are symptoms.
    severe: bool
    #: Order-0 atomic failures (new, or unresolved from an earlier night) to answer.
    atomic_reserve: bool
    #: New high-order failures.
    fragmentation: bool
    #: Guest-wide OOM kills the sizing answers: new ones, or unresolved ones of an
    #: earlier night, that were a shortage (not fragmentation, a zone or a slab leak).
    fresh_oom_kills: int
    #: Any pressure tonight (a warning-level signal, new failures or kills).
    pressure_tonight: bool
    #: Earlier nights that showed pressure, by run_at.
    pressure_nights: tuple[str, ...] = field(default_factory=tuple)
    #: Moderate shortage signals tonight (available memory short, swap-in, stalls).
    memory_short: bool = False
    #: Why memory must not be raised although something failed (slab leak, fragmentation
    #: OOM, zone-restricted OOM), or None.
    hold_reason: str | None = None
    #: What the OOM reports say could not be reclaimed at the kill, KiB (largest report).
    oom_unreclaimable_kib: int | None = None
    #: The causes read from tonight's OOM reports, newest last.
    oom_causes: tuple[OomCause, ...] = ()
    #: Anything rose between nights or tonight that blocks a decrease, said in words.
    between_nights: tuple[str, ...] = ()


def _shortage_signals(s: Signals, item: DomainInput, kill_count: int) -> list[Signal]:
    t = item.thresholds
    found: list[Signal] = []
    avail = s.available_pct
    if avail is not None:
        if avail < t.available_critical_pct:
            found.append(
                Signal(
                    "critical",
                    f"only {avail:.1f}% of memory available (< {t.available_critical_pct:g}%)",
                    ev.meminfo(s),
                )
            )
        elif avail < t.available_warning_pct:
            found.append(
                Signal(
                    "warning",
                    f"{avail:.1f}% of memory available (< {t.available_warning_pct:g}%)",
                    ev.meminfo(s),
                )
            )
    if s.psi_full_avg60 is not None and s.psi_full_avg60 >= t.psi_full_avg60_critical:
        found.append(
            Signal(
                "critical",
                f"every task stalled on memory {s.psi_full_avg60:.1f}% of the last minute "
                f"(PSI full avg60 ≥ {t.psi_full_avg60_critical:g})",
                ev.psi(s),
            )
        )
    if s.psi_some_avg60 is not None and s.psi_some_avg60 >= t.psi_some_avg60_warning:
        found.append(
            Signal(
                "warning",
                f"tasks stalled on memory {s.psi_some_avg60:.1f}% of the last minute "
                f"(PSI some avg60 ≥ {t.psi_some_avg60_warning:g})",
                ev.psi(s),
            )
        )
    # Swap in use is a sign only while memory is not plentiful: with most of
    # it available, what sits in swap is long-cold pages.
    swap_pct = s.swap_used_pct
    swap_matters = avail is None or avail < 2 * t.available_warning_pct
    if swap_pct is not None and swap_pct >= t.swap_used_warning_pct and swap_matters:
        found.append(
            Signal(
                "warning",
                f"{swap_pct:.0f}% of swap in use (≥ {t.swap_used_warning_pct:g}%)",
                ev.swap(s),
            )
        )
    if s.mem_total_kib and s.pswpin.delta is not None and not s.pswpin.reset:
        swapped_in = s.pswpin.delta * s.page_kib
        if swapped_in > s.mem_total_kib * SWAPIN_ACTIVE_SHARE:
            found.append(
                Signal(
                    "warning",
                    f"{round(swapped_in / 1024)} MiB swapped back in since the last run "
                    f"({s.pswpin.delta} pages of {s.page_kib} KiB)",
                    ev.counter(s.pswpin),
                )
            )
    if s.mem_total_kib and s.pgmajfault.delta is not None and not s.pgmajfault.reset:
        read_back = s.pgmajfault.delta * s.page_kib
        if read_back > s.mem_total_kib * MAJFAULT_THRASH_SHARE:
            found.append(
                Signal(
                    "warning",
                    f"major faults read back {round(read_back / 1024)} MiB since the last run, "
                    "more than the guest's memory (thrashing)",
                    ev.counter(s.pgmajfault),
                )
            )
    fresh_reclaim = s.fresh_of(s.reclaim_order0)
    if fresh_reclaim:
        found.append(
            Signal(
                "warning",
                f"{s.tally('reclaim_order0', fresh=True)} order-0 allocation(s) failed even "
                "though they could wait for reclaim",
                ev.failure(s, fresh_reclaim[-1]),
            )
        )
    if kill_count:
        if s.guest_oom_kills:
            evidence = ev.kill(s, s.guest_oom_kills[-1])
        elif s.guest_oom_invocations:
            evidence = ev.invoked(s, s.guest_oom_invocations[-1])
        else:
            evidence = ev.counter(s.oom_kill_counter)
        unresolved = s.unresolved
        fresh = s.fresh_guest_oom_kills + s.unlogged_oom_kills
        if fresh:
            phrase = f"the OOM killer ran {fresh} time(s)"
        elif unresolved is not None:
            phrase = f"the OOM kill(s) of {unresolved.since} are unresolved"
        else:
            phrase = f"the OOM killer ran {kill_count} time(s)"
        found.append(Signal("critical", phrase, evidence))
    return found


def _atomic_reserve(
    s: Signals, severe: bool, moderate: list[Signal], carried: bool
) -> Finding | None:
    events = s.atomic_order0
    if not events or severe:
        return None
    fresh = s.fresh_of(events)
    if moderate:
        pressure = "memory is also short: " + "; ".join(sig.phrase for sig in moderate)
        fix = (
            "raise memory a step and give the guest a reserve sized to it (the sysctls apply "
            "live, without a restart)"
        )
    else:
        pressure = "plenty of memory was available"
        fix = (
            "this is fixed live with sysctls (a larger vm.min_free_kbytes and, on Linux 4.6 and "
            "later, vm.watermark_scale_factor so kswapd starts earlier), not with a restart; "
            "memory is raised only when available memory is also short"
        )
    facts = []
    if s.available_pct is not None:
        facts.append(f"{s.available_pct:.0f}% available")
    if s.swap_used_pct is not None:
        facts.append(f"{s.swap_used_pct:.0f}% of swap used")
    if facts:
        pressure += f" ({', '.join(facts)})"
    count = s.tally("atomic_order0")
    processes = sorted({ev.process_name(e) for e in events})
    who = next((c for c in (caller(e) for e in reversed(events)) if c is not None), None)
    path = f"; the allocation came from {who.description}" if who is not None else ""
    detail = (
        f"{count} order-0 allocation(s) that could not wait for reclaim failed "
        f"({', '.join(processes[:5])}; GFP_ATOMIC, typically network receive in softirq{path}) "
        f"while {pressure}. The atomic reserve (the pages below the min watermark, sized by "
        f"vm.min_free_kbytes) ran dry during a burst: {fix}."
    )
    evidence: list[Evidence] = list(ev.failures(s, events, count))
    evidence.append(ev.meminfo(s))
    if s.swap_total_kib:
        evidence.append(ev.swap(s))
    kswapd = ev.kswapd(s)
    if kswapd is not None:
        evidence.append(kswapd)
    if s.suppressed_failures:
        evidence.append(
            Evidence(
                f"kernlog ({s.kernlog_source})",
                f"{s.suppressed_failures:,} further failure report(s) suppressed by the kernel",
            )
        )
    severity: Severity = "warning"
    if not fresh:
        unresolved = s.unresolved
        if carried and unresolved is not None:
            detail += " " + unresolved.describe()[0].upper() + unresolved.describe()[1:] + "."
        else:
            severity = "info"
            detail += " " + ev.stale_note(s) + "."
    return Finding(
        "atomic_reserve",
        severity,
        "Atomic reserve too small: order-0 GFP_ATOMIC allocations failed",
        detail,
        tuple(evidence),
    )


def _opportunistic(s: Signals) -> Finding | None:
    events = s.opportunistic
    if not events:
        return None
    count = s.tally("opportunistic")
    reasons = sorted({opportunistic_reason(e) for e in events})
    detail = (
        f"{count} allocation(s) of order {ev.orders(events, count)} that may fail by "
        f"design failed ({'; '.join(reasons)}). Their callers fall back (smaller pages, a "
        "retry, a dropped packet), so they are reported but not sized on."
    )
    return Finding(
        "opportunistic_failures",
        "info",
        "Allocations that may fail by design failed",
        detail,
        ev.failures(s, events, count),
    )


def _between_nights(s: Signals) -> tuple[Finding | None, tuple[str, ...]]:
    texts = tuple(r.describe() for r in s.rises_tonight)
    if not texts:
        return None, ()
    return (
        Finding(
            "pressure_between_nights",
            "info",
            "Pressure between nightly samples",
            "Tonight's snapshot is one moment; the kernel's cumulative counters show pressure "
            "since the last night that it did not: " + "; ".join(texts[:6]) + ". No decrease "
            "is proposed while any of them rises.",
            tuple(Evidence("vmstat", text) for text in texts[:8]),
        ),
        texts,
    )


def _damaged(s: Signals) -> Finding | None:
    if s.damage is None and not s.reservation_suspect:
        return None
    why = s.damage or s.reservation_note
    return Finding(
        "damaged_read",
        "info",
        "Tonight's memory numbers are damaged or suspect",
        f"{why}. They may still show that the guest is short, but never size it down: no "
        "decrease is proposed from this night.",
        (Evidence("meminfo", why[:300]),),
    )


def diagnose(item: DomainInput, s: Signals) -> Diagnosis:
    """Findings that need no sizing: shortage, reserve, fragmentation, kills, config risks."""
    findings: list[Finding] = []
    unresolved = s.unresolved

    guest_kib = (s.current_memory_mib or 0) * 1024 or s.mem_total_kib
    causes = tuple(judge(inv, s.page_kib, guest_kib) for inv in s.guest_oom_invocations)
    fresh_kills = s.fresh_guest_oom_kills + s.unlogged_oom_kills
    carried_kills = 0
    if not fresh_kills and unresolved is not None and unresolved.oom:
        carried_kills = max(s.guest_oom_events, 1)
    kill_total = fresh_kills + carried_kills
    # Kills whose own report shows they were not a shortage are answered elsewhere.
    recent = causes[-kill_total:] if kill_total and causes else ()
    not_shortage = [c for c in recent if c.kind != "shortage"]
    shortage_kills = kill_total
    hold_reason = None
    if recent and len(not_shortage) == len(recent):
        shortage_kills = 0
        hold_reason = not_shortage[-1].text

    shortage = _shortage_signals(s, item, shortage_kills)
    level: Severity = max((sig.severity for sig in shortage), key=severity_rank, default="ok")
    severe = level == "critical"
    moderate = [sig for sig in shortage if sig.severity != "critical"]

    if shortage:
        evidence = [sig.evidence for sig in shortage]
        if severe and s.atomic_order0:
            evidence.extend(ev.failures(s, s.atomic_order0, s.tally("atomic_order0")))
        proc = ev.processes(s)
        if proc is not None:
            evidence.append(proc)
        detail = "The guest's working set does not fit: " + "; ".join(
            sig.phrase for sig in shortage
        )
        if severe and s.atomic_order0:
            detail += (
                f". The {s.tally('atomic_order0')} atomic allocation failure(s) in the log are a "
                "symptom of this shortage, not a reserve problem of their own"
            )
        findings.append(
            Finding(
                "shortage",
                level,
                "Memory shortage" if severe else "Memory pressure",
                detail + ". Raise memory.",
                tuple(dict.fromkeys(evidence)),
            )
        )
    carried_failures = unresolved is not None and unresolved.failures
    atomic = _atomic_reserve(s, severe, moderate, carried_failures)
    if atomic is not None:
        findings.append(atomic)
    fragmentation = fragmentation_finding(item, s)
    if fragmentation is not None:
        findings.append(fragmentation)
    findings.extend(oom_findings(s, causes, carried_kills > 0))
    opportunistic = _opportunistic(s)
    if opportunistic is not None:
        findings.append(opportunistic)
    slab = slab_finding(item, s)
    if slab is not None:
        findings.append(slab)
        held = slab_holds(item, s)
        if held is not None:
            hold_reason = held
    for extra in (
        passthrough_finding(item, s),
        pod_touched_finding(s),
        hvm_pod_finding(item, s),
        drift_finding(item),
    ):
        if extra is not None:
            findings.append(extra)
    between, between_texts = _between_nights(s)
    if between is not None:
        findings.append(between)
    damaged = _damaged(s)
    if damaged is not None:
        findings.append(damaged)

    risen = {r.until for r in s.rises_history}
    pressure_nights = tuple(
        n.run_at
        for n in s.nights
        if n.oom_kills > 0
        or n.page_alloc_failures > 0
        or n.run_at in risen
        or any(code in PRESSURE_CODES for code in n.finding_codes)
        or (
            n.psi_some_avg60 is not None
            and n.psi_some_avg60 >= item.thresholds.psi_some_avg60_warning
        )
    )
    sized_fresh_failures = s.fresh_of(s.sized_failures)
    unreclaimable = max((c.unreclaimable_kib or 0 for c in recent), default=0) or None
    return Diagnosis(
        findings=tuple(findings),
        shortage_level=level,
        severe=severe,
        atomic_reserve=atomic is not None and atomic.severity == "warning",
        fragmentation=fragmentation is not None and fragmentation.severity == "warning",
        fresh_oom_kills=shortage_kills,
        pressure_tonight=bool(shortage) or bool(sized_fresh_failures) or fresh_kills > 0,
        pressure_nights=pressure_nights,
        memory_short=bool(moderate),
        hold_reason=hold_reason,
        oom_unreclaimable_kib=unreclaimable,
        oom_causes=causes,
        between_nights=between_texts,
    )
