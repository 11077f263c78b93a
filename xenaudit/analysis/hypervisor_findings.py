"""The findings Dom0 alone can support: crashes, PoD exhaustion, balloons, guest-tools figures.

Each finding quotes the signal it stands on (xenstore key, xentop column,
hypervisor log line) and says what Dom0 cannot tell.
"""

from __future__ import annotations

from collections.abc import Sequence

from xenaudit.analysis.hypervisor_nights import HypervisorNight
from xenaudit.analysis.hypervisor_tonight import Tonight
from xenaudit.analysis.interface import DomainInput, Evidence, Finding, Severity
from xenaudit.analysis.units import fmt_mib, pct
from xenaudit.hypervisor.xendmesg_parse import DomainCrashed, PodExhausted, XenEvent

#: Nights in a row of guest-tools figures with little free memory before an increase is sized.
MIN_TOOLS_NIGHTS = 3
#: How far what a guest holds may stray from its target before it counts (KiB, share).
HELD_TOLERANCE_KIB = 8 * 1024
HELD_TOLERANCE_SHARE = 0.01
#: States in which a domain has a running balloon driver to judge.
_LIVE = frozenset({"running", "blocked", "unknown"})

CAN_SEE = (
    "the balloon target and what the guest holds, whether its balloon driver announced "
    "itself, memory figures its guest tools publish in xenstore, and crashes or "
    "populate-on-demand exhaustion in the hypervisor's log"
)
CANNOT_SEE = (
    "how memory is used inside the guest (page cache, swap, PSI stalls), and page "
    "allocation failures or OOM kills in its kernel log"
)


def _tolerance(expected_kib: int) -> int:
    return max(HELD_TOLERANCE_KIB, int(expected_kib * HELD_TOLERANCE_SHARE))


def _below(night_expected: int | None, night_held: int | None) -> bool:
    if night_expected is None or night_held is None:
        return False
    return night_expected - night_held > _tolerance(night_expected)


def _earlier_domids(item: DomainInput) -> list[int]:
    seen = [n.domid for n in item.hypervisor_nights if n.domid is not None]
    return [d for d in dict.fromkeys(seen) if d != item.domain.domid]


def _log_evidence(source: str, events: Sequence[XenEvent]) -> tuple[Evidence, ...]:
    return tuple(Evidence(source, e.text[:300], e.line) for e in events[:6])


def crash_findings(item: DomainInput, t: Tonight) -> list[Finding]:
    findings: list[Finding] = []
    earlier = _earlier_domids(item)
    events = list(t.events)
    if item.host.signals is not None and earlier:
        events += [e for e in item.host.signals.events_for(earlier) if e not in events]
    pod = [e for e in events if isinstance(e, PodExhausted)]
    crashes = [e for e in events if isinstance(e, DomainCrashed)]
    if pod:
        ids = ", ".join(f"Dom{d}" for d in sorted({e.domid for e in pod}))
        findings.append(
            Finding(
                "pod_crash",
                "critical",
                "Xen ran out of populate-on-demand memory for this domain",
                f"The hypervisor log says Xen could not back a page this guest ({ids}) touched "
                "and crashed it: an HVM guest started with maxmem above memory runs in "
                "populate-on-demand mode, and without a working balloon driver it touches "
                "more than `memory`. Set maxmem = memory (or make sure the balloon driver "
                "loads early).",
                _log_evidence(t.log_source, pod),
            )
        )
    other = [c for c in crashes if c.domid not in {p.domid for p in pod}]
    if item.domain.state == "crashed" or other:
        where = []
        if item.domain.state == "crashed":
            where.append(f"the domain is in the crashed state now (domid {t.domid})")
        if other:
            causes = sorted({c.called_from for c in other if c.called_from})
            where.append(
                "the hypervisor log records a crash"
                + (f" (domain_crash called from {', '.join(causes)})" if causes else "")
            )
        findings.append(
            Finding(
                "domain_crashed",
                "critical",
                "The domain crashed",
                "; ".join(where).capitalize()
                + ". Dom0 cannot tell whether memory was the cause; read the guest's console "
                "log and the lines quoted here.",
                (
                    (Evidence("hypervisor", f"state {t.state}, domid {t.domid}"),)
                    if item.domain.state == "crashed"
                    else ()
                )
                + _log_evidence(t.log_source, other),
            )
        )
    last = next((n for n in reversed(item.hypervisor_nights) if n.domid is not None), None)
    if (
        last is not None
        and t.domid is not None
        and last.domid != t.domid
        and t.state in _LIVE
        and not findings
    ):
        findings.append(
            Finding(
                "restarted",
                "info",
                "Restarted since the last night",
                f"The domain id changed from {last.domid} ({last.run_at}) to {t.domid}: the "
                "domain was rebooted, recreated or crashed and restarted. The hypervisor log "
                "has no crash for it, but Dom0 cannot tell a clean reboot from a guest panic.",
                (Evidence("hypervisor", f"domid {last.domid} → {t.domid}"),),
            )
        )
    return findings


def balloon_findings(item: DomainInput, t: Tonight) -> list[Finding]:
    if t.expected_kib is None or t.held_kib is None or t.state not in _LIVE:
        return []
    gap = t.expected_kib - t.held_kib
    tolerance = _tolerance(t.expected_kib)
    evidence = (
        Evidence("hypervisor", f"target {fmt_mib(t.expected_kib)} ({t.expected_source})"),
        Evidence("hypervisor", f"holds {fmt_mib(t.held_kib)} ({t.held_source})"),
    )
    if gap > tolerance:
        nights = 1
        for night in reversed(item.hypervisor_nights):
            if night.domid != t.domid or not _below(night.target_kib, night.held_kib):
                break
            nights += 1
        free = item.host.free_memory_kib
        if free is not None and free < gap:
            why = (
                f"the host has only {fmt_mib(free)} free, less than the "
                f"{fmt_mib(gap)} missing: Xen cannot give it more"
            )
        else:
            why = (
                "the host has the memory, so the guest's balloon driver is not asking for it "
                "(not loaded, stuck, or limited inside the guest)"
            )
        when = "tonight" if nights == 1 else f"for {nights} nights in a row"
        return [
            Finding(
                "balloon_stuck",
                "warning",
                "Balloon below its target",
                f"The guest holds {fmt_mib(gap)} less than its balloon target {when}: {why}. "
                "It runs with less memory than it is configured for; a larger target would "
                "not be reached either.",
                evidence,
            )
        ]
    if -gap > tolerance:
        driver = {
            True: "its balloon driver announced itself (control/feature-balloon = 1) but "
            "did not give the memory back",
            False: "control/feature-balloon is not 1",
            None: "no balloon driver announced itself in xenstore (only the Windows PV "
            "drivers and XenServer/XCP-ng guest agents write control/feature-balloon; "
            "Linux's own driver never does, so this does not prove there is none)",
        }[t.feature_balloon]
        return [
            Finding(
                "balloon_not_released",
                "warning",
                "Holds more than its balloon target",
                f"The guest holds {fmt_mib(-gap)} more than its target: {driver}. "
                "`xl mem-set` cannot shrink it, and an HVM guest in populate-on-demand mode "
                "without a working driver is at risk of being crashed by Xen.",
                evidence,
            )
        ]
    return []


def tools_nights(item: DomainInput, t: Tonight, run_at: str) -> list[HypervisorNight]:
    """History nights plus tonight that carry guest-tools figures, oldest first."""
    nights = [n for n in item.hypervisor_nights if n.tools_need_kib is not None]
    if t.tools_total_kib is not None and t.tools_free_kib is not None:
        nights.append(t.night(run_at))
    return nights


def free_pct(night: HypervisorNight) -> float:
    assert night.tools_total_kib is not None and night.tools_free_kib is not None
    return pct(night.tools_free_kib, night.tools_total_kib)


def tools_finding(item: DomainInput, t: Tonight) -> Finding | None:
    if t.tools_total_kib is None or t.tools_free_kib is None:
        return None
    thresholds = item.thresholds
    free = pct(t.tools_free_kib, t.tools_total_kib)
    if free >= thresholds.available_warning_pct:
        return None
    severity: Severity = "critical" if free < thresholds.available_critical_pct else "warning"
    caveat = (
        'Guest tools write "free" as MemAvailable where the guest kernel has it (MemFree on '
        "older agents, which understates what the guest could free); Dom0 cannot check it."
    )
    evidence = [
        Evidence(
            "xenstore",
            f"{t.tools_source}: total {t.tools_total_kib} kB, free {t.tools_free_kib} kB "
            f"({free:.0f}%)",
        )
    ]
    if t.tools_note:
        evidence.append(Evidence("xenstore", t.tools_note[:300]))
    return Finding(
        "shortage",
        severity,
        "Guest tools report little free memory",
        f"Only {free:.0f}% of the guest's memory is free by its own tools' account. {caveat}",
        tuple(evidence),
    )


def pod_risk(item: DomainInput, t: Tonight) -> Finding | None:
    if item.domain.guest_type != "hvm":
        return None
    config = item.config
    memory = config.memory_mib if config and config.error is None else None
    maxmem = config.maxmem_mib if config and config.error is None else None
    source = "cfg"
    if memory is None or maxmem is None:
        if item.domain.target_kib is None or item.domain.max_kib is None:
            return None
        memory, maxmem, source = item.domain.target_kib // 1024, item.domain.max_kib // 1024, "hv"
    if maxmem <= memory:
        return None
    if item.override.balloon_driver is True:
        return None
    if item.override.balloon_driver is None and t.feature_balloon is True:
        return None
    basis = (
        "the inventory says balloon_driver = false"
        if item.override.balloon_driver is False
        else "no balloon driver announced itself in xenstore (control/feature-balloon)"
    )
    return Finding(
        "hvm_pod_risk",
        "warning",
        "HVM guest with maxmem above memory and no confirmed balloon driver",
        f"maxmem {maxmem} MiB > memory {memory} MiB starts this HVM guest in populate-on-demand "
        f"mode; {basis}. Without a driver to give the difference back, Xen crashes the domain "
        "once it touches more than memory. Set maxmem = memory.",
        (
            Evidence(
                "cfg" if source == "cfg" else "hypervisor", f"memory {memory}, maxmem {maxmem}"
            ),
        ),
    )


def hypervisor_side_finding(t: Tonight) -> Finding:
    evidence: list[Evidence] = []
    if t.expected_kib is not None:
        evidence.append(
            Evidence("hypervisor", f"target {fmt_mib(t.expected_kib)} ({t.expected_source})")
        )
    if t.held_kib is not None:
        evidence.append(Evidence("hypervisor", f"holds {fmt_mib(t.held_kib)} ({t.held_source})"))
    if t.feature_balloon is not None:
        value = "1" if t.feature_balloon else "not 1"
        evidence.append(Evidence("xenstore", f"control/feature-balloon = {value}"))
    if t.tools_source is not None:
        evidence.append(Evidence("xenstore", f"guest tools: {t.tools_source}"))
    if not t.signals_read:
        evidence.append(Evidence("hypervisor", "no xenstore, xentop or log was read on this Dom0"))
    return Finding(
        "hypervisor_side",
        "info",
        "Judged from the hypervisor side (no login)",
        f"Dom0 alone can see {CAN_SEE}. It cannot see {CANNOT_SEE}. So this judgement is of "
        "low confidence: memory is only raised when the guest's own tools report little free "
        f"memory for {MIN_TOOLS_NIGHTS} nights in a row, and never lowered.",
        tuple(evidence),
    )
