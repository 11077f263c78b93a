"""Why memory ran short: findings, each with the evidence that fired it.

The point is to tell causes apart, because each has a different fix:

* shortage — the guest's working set does not fit (little available, swap-in,
  stalls, OOM kills): give it memory;
* atomic_reserve — order-0 allocations that could not wait for reclaim
  failed while memory was only moderately short: a step more memory and a
  larger vm.min_free_kbytes;
* fragmentation — higher-order allocations failed while free memory sat in
  small blocks: more memory helps less than compaction or fewer high-order
  users;
* memory-cgroup OOM kills — a container limit, not the domain, ran out.

A failure report is judged "severe" only when the guest itself ran out
(critical signals); then its atomic failures are symptoms of the shortage,
not a reserve problem of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xenaudit.analysis import evidence as ev
from xenaudit.analysis.fragmentation import fragmentation_finding
from xenaudit.analysis.interface import DomainInput, Evidence, Finding, Severity, severity_rank
from xenaudit.analysis.oomkills import oom_findings
from xenaudit.analysis.risks import drift_finding, hvm_pod_finding, slab_finding
from xenaudit.analysis.signals import Signals

#: Finding codes that mean the guest is (or was) short of memory.
PRESSURE_CODES = frozenset(
    {"shortage", "atomic_reserve", "fragmentation", "oom_kill", "balloon_below_need"}
)
#: Swap-in since the last run above this share of MemTotal counts as active swapping.
SWAPIN_ACTIVE_SHARE = 0.01
#: Major faults since the last run reading back more than this share of MemTotal: thrashing.
MAJFAULT_THRASH_SHARE = 1.0
PAGE_KIB = 4


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
    #: New order-0 atomic failures while memory was only moderately short.
    atomic_reserve: bool
    #: New high-order failures.
    fragmentation: bool
    #: New guest-wide OOM kills (logged or only counted by vmstat).
    fresh_oom_kills: int
    #: Any pressure tonight (a warning-level signal, new failures or kills).
    pressure_tonight: bool
    #: Earlier nights that showed pressure, by run_at.
    pressure_nights: tuple[str, ...] = field(default_factory=tuple)


def _shortage_signals(s: Signals, item: DomainInput) -> list[Signal]:
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
        swapped_in = s.pswpin.delta * PAGE_KIB
        if swapped_in > s.mem_total_kib * SWAPIN_ACTIVE_SHARE:
            found.append(
                Signal(
                    "warning",
                    f"{round(swapped_in / 1024)} MiB swapped back in since the last run",
                    ev.counter(s.pswpin),
                )
            )
    if s.mem_total_kib and s.pgmajfault.delta is not None and not s.pgmajfault.reset:
        read_back = s.pgmajfault.delta * PAGE_KIB
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
                f"{len(fresh_reclaim)} order-0 allocation(s) failed even though they could "
                "wait for reclaim",
                ev.failure(s, fresh_reclaim[-1]),
            )
        )
    fresh_kills = s.fresh_guest_oom_kills + s.unlogged_oom_kills
    if fresh_kills:
        if s.guest_oom_kills:
            evidence = ev.kill(s, s.guest_oom_kills[-1])
        elif s.guest_oom_invocations:
            evidence = ev.invoked(s, s.guest_oom_invocations[-1])
        else:
            evidence = ev.counter(s.oom_kill_counter)
        found.append(Signal("critical", f"the OOM killer ran {fresh_kills} time(s)", evidence))
    return found


def _atomic_reserve(s: Signals, severe: bool, moderate: list[Signal]) -> Finding | None:
    events = s.atomic_order0
    if not events or severe:
        return None
    fresh = s.fresh_of(events)
    pressure = (
        "memory is only moderately short: " + "; ".join(sig.phrase for sig in moderate)
        if moderate
        else "memory is only moderately short"
    )
    facts = []
    if s.available_pct is not None:
        facts.append(f"{s.available_pct:.0f}% available")
    if s.swap_used_pct is not None:
        facts.append(f"{s.swap_used_pct:.0f}% of swap used")
    if facts:
        pressure += f" ({', '.join(facts)})"
    processes = sorted({e.process for e in events})
    detail = (
        f"{len(events)} order-0 allocation(s) that could not wait for reclaim failed "
        f"({', '.join(processes[:5])}; GFP_ATOMIC, typically network receive in softirq) "
        f"while {pressure}. The atomic reserve (vm.min_free_kbytes) ran dry during a burst: "
        "raise memory a step and give the guest a reserve sized to it."
    )
    evidence: list[Evidence] = list(ev.failures(s, events))
    evidence.append(ev.meminfo(s))
    if s.swap_total_kib:
        evidence.append(ev.swap(s))
    if s.suppressed_failures:
        evidence.append(
            Evidence(
                f"kernlog ({s.kernlog_source})",
                f"{s.suppressed_failures} further failure report(s) suppressed by the kernel",
            )
        )
    if fresh:
        severity: Severity = "warning"
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


def diagnose(item: DomainInput, s: Signals) -> Diagnosis:
    """Findings that need no sizing: shortage, reserve, fragmentation, kills, config risks."""
    findings: list[Finding] = []
    shortage = _shortage_signals(s, item)
    level: Severity = max((sig.severity for sig in shortage), key=severity_rank, default="ok")
    severe = level == "critical"
    moderate = [sig for sig in shortage if sig.severity != "critical"]

    if shortage:
        evidence = [sig.evidence for sig in shortage]
        if severe and s.atomic_order0:
            evidence.extend(ev.failures(s, s.atomic_order0))
        proc = ev.processes(s)
        if proc is not None:
            evidence.append(proc)
        detail = "The guest's working set does not fit: " + "; ".join(
            sig.phrase for sig in shortage
        )
        if severe and s.atomic_order0:
            detail += (
                f". The {len(s.atomic_order0)} atomic allocation failure(s) in the log are a "
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
    atomic = _atomic_reserve(s, severe, moderate)
    if atomic is not None:
        findings.append(atomic)
    fragmentation = fragmentation_finding(item, s)
    if fragmentation is not None:
        findings.append(fragmentation)
    findings.extend(oom_findings(s))
    for extra in (slab_finding(item, s), hvm_pod_finding(item, s), drift_finding(item)):
        if extra is not None:
            findings.append(extra)

    pressure_nights = tuple(
        n.run_at
        for n in s.nights
        if n.oom_kills > 0
        or n.page_alloc_failures > 0
        or any(code in PRESSURE_CODES for code in n.finding_codes)
        or (
            n.psi_some_avg60 is not None
            and n.psi_some_avg60 >= item.thresholds.psi_some_avg60_warning
        )
    )
    fresh_oom = s.fresh_guest_oom_kills + s.unlogged_oom_kills
    return Diagnosis(
        findings=tuple(findings),
        shortage_level=level,
        severe=severe,
        atomic_reserve=atomic is not None and atomic.severity == "warning",
        fragmentation=fragmentation is not None and fragmentation.severity == "warning",
        fresh_oom_kills=fresh_oom,
        pressure_tonight=bool(shortage) or s.fresh_failures > 0 or fresh_oom > 0,
        pressure_nights=pressure_nights,
    )
