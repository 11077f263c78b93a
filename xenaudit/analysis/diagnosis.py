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

from collections.abc import Sequence
from dataclasses import dataclass, field

from xenaudit.analysis import buddy as buddy_lib
from xenaudit.analysis import evidence as ev
from xenaudit.analysis.interface import DomainInput, Evidence, Finding, Severity, severity_rank
from xenaudit.analysis.signals import Signals
from xenaudit.parsers.interface import PageAllocFailure

#: Finding codes that mean the guest is (or was) short of memory.
PRESSURE_CODES = frozenset(
    {"shortage", "atomic_reserve", "fragmentation", "oom_kill", "balloon_below_need"}
)
#: Swap-in since the last run above this share of MemTotal counts as active swapping.
SWAPIN_ACTIVE_SHARE = 0.01
#: Major faults since the last run reading back more than this share of MemTotal: thrashing.
MAJFAULT_THRASH_SHARE = 1.0
#: Unreclaimable slab above this share of MemTotal is worth a finding of its own.
SUNRECLAIM_WARNING_SHARE = 0.20
#: At least this share of free memory in blocks too small for the failing order.
FRAGMENTED_INDEX = 0.75
#: At most this many oom_kill findings; further kills are summed up in the last one.
MAX_KILL_FINDINGS = 10
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
    fresh_reclaim = _fresh_tail(s.reclaim_order0, s)
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


def _fresh_tail(events: Sequence[PageAllocFailure], s: Signals) -> tuple[PageAllocFailure, ...]:
    """Those of `events` that no earlier run has seen."""
    fresh = {id(e) for e in s.fresh_failure_events}
    return tuple(e for e in events if id(e) in fresh)


def _quote_events(s: Signals, events: Sequence[PageAllocFailure]) -> tuple[Evidence, ...]:
    quoted = [ev.failure(s, e) for e in events[-ev.MAX_EVENTS :]]
    if len(events) > ev.MAX_EVENTS:
        quoted.insert(0, ev.more(len(events) - ev.MAX_EVENTS, "failure reports"))
    return tuple(quoted)


def _stale_note(s: Signals) -> str:
    last = s.nights[-1].run_at if s.nights else "the last run"
    return f"No new ones since {last}: these reports are still in the kernel log"


def _atomic_reserve(s: Signals, severe: bool, moderate: list[Signal]) -> Finding | None:
    events = s.atomic_order0
    if not events or severe:
        return None
    fresh = _fresh_tail(events, s)
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
    evidence: list[Evidence] = list(_quote_events(s, events))
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
        detail += " " + _stale_note(s) + "."
    return Finding(
        "atomic_reserve",
        severity,
        "Atomic reserve too small: order-0 GFP_ATOMIC allocations failed",
        detail,
        tuple(evidence),
    )


def _fragmentation(s: Signals, item: DomainInput) -> Finding | None:
    events = s.high_order
    if not events:
        return None
    fresh = _fresh_tail(events, s)
    smallest = min(e.order for e in events)
    order = smallest
    orders = sorted({e.order for e in events})
    evidence: list[Evidence] = list(_quote_events(s, events))
    # The newest report that printed its buddy lists shows free memory at the
    # moment it failed, judged for its own order; otherwise tonight's lists
    # for the smallest failing order.
    with_lists = next((e for e in reversed(events) if e.buddy_lines), None)
    blocks = buddy_lib.from_report_lines(with_lists.buddy_lines) if with_lists else None
    when = "at the failure"
    if blocks is not None and with_lists is not None:
        order = with_lists.order
        when = f"at the order-{order} failure (line {with_lists.line})"
    elif item.facts is not None and item.facts.buddyinfo is not None:
        blocks = buddy_lib.from_buddyinfo(item.facts.buddyinfo)
        when = "tonight (/proc/buddyinfo)"
    source = "kernlog" if with_lists is not None and blocks is not None else "buddyinfo"
    when_cap = when[0].upper() + when[1:]
    atomic = any(e.is_atomic for e in events)
    users = sorted({e.process for e in events})
    detail = (
        f"Allocations of order {', '.join(map(str, orders))} "
        f"({', '.join(users[:5])}) need {PAGE_KIB << smallest} KiB or more in one piece. "
    )
    if blocks is not None:
        total = blocks.total_kib
        usable = blocks.kib_at_least_order(order)
        index = blocks.unusable_index(order)
        largest = blocks.largest_order()
        evidence.append(
            Evidence(
                source,
                f"{when}: {total} kB free, {usable} kB of it in blocks of order ≥ {order}"
                + (f" (unusable free index {index:.2f})" if index is not None else "")
                + (f"; largest free block order {largest}" if largest is not None else ""),
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
                f"{when_cap} {usable} kB were free in large enough blocks, so the "
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
        detail += " " + _stale_note(s) + "."
    return Finding(
        "fragmentation",
        severity,
        f"Fragmentation: order-{smallest}+ allocations failed",
        detail,
        tuple(evidence),
    )


def _oom_findings(s: Signals, item: DomainInput) -> list[Finding]:
    findings: list[Finding] = []
    kills = s.guest_oom_kills
    fresh_from = len(kills) - s.fresh_guest_oom_kills
    shown = list(enumerate(kills))[-MAX_KILL_FINDINGS:]
    for index, kill in shown:
        is_fresh = index >= fresh_from
        rss = ev.rss_kib(kill)
        rss_text = f", RSS {round(rss / 1024)} MiB" if rss is not None else ""
        victim = ev.clean(kill.victim_process, 60)
        detail = (
            f"The guest ran out of memory and the kernel killed {victim} "
            f"(pid {kill.victim_pid}{rss_text})."
        )
        if not is_fresh:
            detail += " " + _stale_note(s) + "."
        findings.append(
            Finding(
                "oom_kill",
                "critical" if is_fresh else "info",
                f"OOM kill: {victim} (pid {kill.victim_pid}{rss_text})",
                detail,
                (ev.kill(s, kill),),
            )
        )
    if not kills:
        invocations = s.guest_oom_invocations
        fresh_from = len(invocations) - s.fresh_guest_oom_kills
        for index, invoked in list(enumerate(invocations))[-MAX_KILL_FINDINGS:]:
            is_fresh = index >= fresh_from
            who = ev.clean(invoked.process, 60)
            detail = (
                f"{who} could not get memory and invoked the OOM killer; the line naming the "
                "killed process is not in the log (cut or rotated)."
            )
            if not is_fresh:
                detail += " " + _stale_note(s) + "."
            findings.append(
                Finding(
                    "oom_kill",
                    "critical" if is_fresh else "info",
                    f"OOM killer invoked by {who}",
                    detail,
                    (ev.invoked(s, invoked),),
                )
            )
    if len(kills) > MAX_KILL_FINDINGS:
        findings.append(
            Finding(
                "oom_kill",
                "critical" if s.fresh_guest_oom_kills > MAX_KILL_FINDINGS else "info",
                f"{len(kills) - MAX_KILL_FINDINGS} earlier OOM kills",
                "Only the newest kills are listed one by one.",
                (ev.more(len(kills) - MAX_KILL_FINDINGS, "OOM kills"),),
            )
        )
    if s.unlogged_oom_kills:
        findings.append(
            Finding(
                "oom_kill",
                "critical",
                f"{s.unlogged_oom_kills} OOM kill(s) counted but not in the log",
                "The vmstat oom_kill counter grew but the kernel log no longer shows the "
                "reports (rotated or cut); we cannot tell whether a cgroup limit or the "
                "guest ran out, so they are treated as guest OOM kills.",
                (ev.counter(s.oom_kill_counter),),
            )
        )
    for kill in s.memcg_oom_kills[-MAX_KILL_FINDINGS:]:
        findings.append(
            Finding(
                "oom_kill",
                "warning",
                f"Cgroup OOM kill: {ev.clean(kill.victim_process, 60)} (pid {kill.victim_pid})",
                "A memory cgroup (container or systemd unit) hit its own limit; the guest "
                "had memory left. Raise that cgroup's memory.max (MemoryMax=), not the domain.",
                (ev.kill(s, kill),),
            )
        )
    return findings


def _slab(s: Signals, item: DomainInput) -> Finding | None:
    if not s.mem_total_kib or s.sunreclaim_kib is None:
        return None
    share = s.sunreclaim_kib / s.mem_total_kib
    if share < SUNRECLAIM_WARNING_SHARE:
        return None
    evidence = [Evidence("meminfo", f"SUnreclaim: {s.sunreclaim_kib} kB ({share:.0%} of MemTotal)")]
    slab = item.facts.slabinfo if item.facts else None
    if slab is not None and slab.caches:
        top = ", ".join(
            f"{ev.clean(c.name, 40)} {round(c.size_kib / 1024)} MiB" for c in slab.caches[:3]
        )
        evidence.append(Evidence("slabinfo", f"largest caches: {top}"))
    return Finding(
        "slab_unreclaimable",
        "warning",
        "Kernel memory that cannot be reclaimed is large",
        f"{share:.0%} of memory is unreclaimable slab. If it grows night after night it is a "
        "leak in a driver or module; more memory only postpones it.",
        tuple(evidence),
    )


def _hvm_pod(s: Signals, item: DomainInput) -> Finding | None:
    if s.guest_type != "hvm" or s.balloon_confirmed:
        return None
    memory = s.cfg_memory_mib
    maxmem = s.cfg_maxmem_mib
    source = "cfg"
    if memory is None or maxmem is None:
        if s.live_target_kib is None or s.live_max_kib is None:
            return None
        memory, maxmem, source = s.live_target_kib // 1024, s.live_max_kib // 1024, "hypervisor"
    if maxmem <= memory:
        return None
    where = item.config.path if item.config and item.config.path else source
    return Finding(
        "hvm_pod_risk",
        "warning",
        "HVM guest with maxmem above memory and no confirmed balloon driver",
        f"maxmem {maxmem} MiB > memory {memory} MiB starts this HVM guest in populate-on-demand "
        "mode: it boots believing it has maxmem and Xen backs only memory. Without a balloon "
        f"driver to give the difference back, the domain is killed once it touches more "
        f"than memory ({s.balloon_basis}). Set maxmem = memory, or confirm the driver "
        "(balloon_driver = true in the inventory).",
        (Evidence(source, f"memory = {memory}, maxmem = {maxmem} ({ev.clean(where, 200)})"),),
    )


def _drift(item: DomainInput) -> Finding | None:
    if not item.drift:
        return None
    return Finding(
        "drift",
        "info",
        "Live settings differ from the cfg",
        "What runs is not what the cfg says (a past `xl mem-set`, or a cfg edited since "
        "boot). The next restart will change this domain's memory.",
        tuple(Evidence("hypervisor", ev.clean(text)) for text in item.drift[:10]),
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
            evidence.extend(_quote_events(s, s.atomic_order0))
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
    fragmentation = _fragmentation(s, item)
    if fragmentation is not None:
        findings.append(fragmentation)
    findings.extend(_oom_findings(s, item))
    for extra in (_slab(s, item), _hvm_pod(s, item), _drift(item)):
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
