"""Judging a domain from Dom0 alone: for guests nobody can log into.

What Dom0 can see (hypervisor/signals.py): the balloon target and what the
guest holds (xenstore, xentop), whether a balloon driver announced itself
(control/feature-balloon), memory figures that guest tools publish in
xenstore (data/meminfo_*, xenballoond's memory/meminfo), populate-on-demand
exhaustion and crashes in the hypervisor's log, and restarts (a new domid).

What it cannot see: how the memory is used inside the guest, the page cache,
swap, PSI stalls, page allocation failures or OOM kills. So this module:

* sizes an increase only from guest-tools figures showing little free memory
  on at least MIN_TOOLS_NIGHTS nights in a row, and never proposes a decrease
  (the tools' "free" is MemAvailable on current agents but MemFree on old
  ones, which understates what a guest could free);
* keeps the size of a guest whose balloon stays below its target (a larger
  target would not be reached either) and says what holds it back;
* sets maxmem = memory for an HVM guest that Xen ran out of PoD memory for,
  or that runs in PoD mode without a confirmed balloon driver;
* marks every recommendation confidence "low" and says so in the report.

For domains read over SSH on a Dom0 whose signals were read, `annotate`
adds what only the hypervisor knows (crashes, PoD exhaustion, a stuck
balloon, a restart) to the guest-side judgement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from xenaudit.analysis.hypervisor_findings import (
    HELD_TOLERANCE_KIB,
    MIN_TOOLS_NIGHTS,
    balloon_findings,
    crash_findings,
    free_pct,
    hypervisor_side_finding,
    pod_risk,
    tools_finding,
    tools_nights,
)
from xenaudit.analysis.hypervisor_nights import HypervisorNight
from xenaudit.analysis.hypervisor_tonight import Tonight, night_record, tonight
from xenaudit.analysis.interface import (
    Assessment,
    DomainInput,
    Evidence,
    Finding,
    Recommendation,
    Severity,
    severity_rank,
)
from xenaudit.analysis.risks import drift_finding
from xenaudit.analysis.units import kib_to_mib, kib_to_mib_up, round_up_to_step
from xenaudit.hypervisor.interface import HostView

__all__ = ["HYPERVISOR_SIDE_REASON", "annotate", "applies", "assess", "host_notes", "night_record"]

#: The guest snapshot's reason for domains judged from Dom0 alone (also how a replay knows).
HYPERVISOR_SIDE_REASON = 'judged from the hypervisor side (collect = "hypervisor"): no login'


def applies(item: DomainInput) -> bool:
    """Whether the domain is judged from Dom0 alone."""
    return item.override.collect == "hypervisor"


# ------------------------------------------------------------------- sizing


def _current(item: DomainInput) -> tuple[int | None, int | None, str]:
    config = item.config
    if config is not None and config.error is None and config.memory_mib is not None:
        maxmem = config.maxmem_mib if config.maxmem_mib is not None else config.memory_mib
        return config.memory_mib, maxmem, "cfg"
    domain = item.domain
    if domain.target_kib is not None:
        live_max = domain.max_kib // 1024 if domain.max_kib is not None else None
        return domain.target_kib // 1024, live_max, "live target"
    return None, None, "unknown"


def _below_need(item: DomainInput, t: Tonight, proposal: int) -> Finding | None:
    """The cfg covers the need but the guest runs ballooned down below it."""
    if t.expected_kib is None or proposal * 1024 <= t.expected_kib + HELD_TOLERANCE_KIB:
        return None
    tool = "xm" if item.host.backend == "xm" else "xl"
    live = kib_to_mib(t.expected_kib)
    return Finding(
        "balloon_below_need",
        "warning",
        "Balloon target below the need",
        f"The cfg's memory covers the need, but the guest runs at a live target of {live} MiB "
        f"({t.expected_source}), below the {proposal} MiB it needs: raise it with "
        f"`{tool} mem-set {item.domain.name} {proposal}`.",
        (Evidence("hypervisor", f"target {live} MiB ({t.expected_source})"),),
    )


def _size_from_tools(
    item: DomainInput, t: Tonight, nights: list[HypervisorNight], pod_guard: bool
) -> tuple[Recommendation | None, Finding | None]:
    """An increase sized from the guest tools' own figures, and a too-low live target."""
    thresholds = item.thresholds
    recent = nights[-MIN_TOOLS_NIGHTS:]
    if len(recent) < MIN_TOOLS_NIGHTS or any(
        free_pct(n) >= thresholds.available_warning_pct for n in recent
    ):
        return None, None
    memory, maxmem, source = _current(item)
    if memory is None:
        return None, None
    peak = max(nights, key=lambda n: n.tools_need_kib or 0)
    need_kib = peak.tools_need_kib or 0
    had_kib = t.expected_kib if t.expected_kib is not None else memory * 1024
    reservation = max(had_kib - (t.tools_total_kib or had_kib), 0)
    with_margin = kib_to_mib_up((need_kib + reservation) * (1 + thresholds.margin))
    proposal = round_up_to_step(with_margin, thresholds.step_mib)
    floor = max(thresholds.floor_mib, item.override.min_memory_mib or 0)
    reasons = [
        f"need {kib_to_mib(need_kib)} MiB: the peak of total − free reported by "
        f"{peak.tools_source or 'the guest tools'} over {len(nights)} nights "
        f"(peak on {peak.run_at})",
        f"plus {kib_to_mib(reservation)} MiB the guest holds but does not count as total "
        f"({t.expected_source} − tools total)",
        f"× (1 + margin {thresholds.margin:.2f}) rounded up to {thresholds.step_mib} MiB "
        f"steps = {proposal} MiB",
        f"free memory was below {thresholds.available_warning_pct:.0f}% on each of the last "
        f"{MIN_TOOLS_NIGHTS} nights",
    ]
    own_min = item.override.min_memory_mib or 0
    if proposal < floor and not (proposal <= memory < floor and memory >= own_min):
        proposal = round_up_to_step(floor, thresholds.step_mib)
        reasons.append(f"raised to the floor of {floor} MiB")
    if proposal <= memory:
        keep = Recommendation(
            memory_mib=memory,
            maxmem_mib=maxmem if maxmem is not None else memory,
            reasons=(*reasons, f"keep memory {memory} MiB ({source}): the need fits in it"),
            confidence="low",
            need_mib=kib_to_mib(need_kib),
            change="none",
        )
        return keep, _below_need(item, t, proposal)
    new_maxmem = max(maxmem or proposal, proposal)
    if pod_guard:
        new_maxmem = proposal
        reasons.append(
            f"maxmem = memory = {proposal} MiB: HVM guest without a confirmed balloon driver"
        )
    reasons.append(
        "confidence low: judged from Dom0 alone, on the guest tools' own figures; "
        "never lowered from these signals"
    )
    increase = Recommendation(
        memory_mib=proposal,
        maxmem_mib=new_maxmem,
        reasons=tuple(reasons),
        confidence="low",
        need_mib=kib_to_mib(need_kib),
        change="increase",
    )
    return increase, None


def _keep(item: DomainInput, reason: str, maxmem_equal: bool = False) -> Recommendation | None:
    memory, maxmem, source = _current(item)
    if memory is None:
        return None
    if maxmem_equal and maxmem is not None and maxmem > memory:
        by_hand: tuple[str, ...] = ()
        if item.config is not None and item.config.error:
            by_hand = ("the cfg could not be read, so no patch: change it by hand",)
        return Recommendation(
            memory_mib=memory,
            maxmem_mib=memory,
            reasons=(
                f"keep memory {memory} MiB ({source})",
                f"maxmem = memory = {memory} MiB: {reason}",
                *by_hand,
                "confidence low: judged from Dom0 alone",
            ),
            confidence="low",
            need_mib=None,
            change="maxmem",
        )
    return Recommendation(
        memory_mib=memory,
        maxmem_mib=maxmem if maxmem is not None else memory,
        reasons=(
            f"keep memory {memory} MiB ({source}): {reason}",
            "confidence low: judged from Dom0 alone",
        ),
        confidence="low",
        need_mib=None,
        change="none",
    )


def _with_history(
    findings: Sequence[Finding], nights: Sequence[HypervisorNight]
) -> tuple[Finding, ...]:
    out = []
    for finding in findings:
        seen = [n.run_at for n in nights if finding.code in n.finding_codes]
        if seen:
            finding = replace(finding, first_seen=seen[0], nights_seen=len(seen))
        out.append(finding)
    return tuple(out)


def _worst(findings: Sequence[Finding]) -> Severity:
    return max((f.severity for f in findings), key=severity_rank, default="ok")


def assess(item: DomainInput, run_at: str = "tonight") -> Assessment:
    """The whole judgement of a domain nobody logs into."""
    t = tonight(item)
    findings: list[Finding] = [hypervisor_side_finding(t)]
    findings += crash_findings(item, t)
    findings += balloon_findings(item, t)
    tools = tools_finding(item, t)
    if tools is not None:
        findings.append(tools)
    pod = pod_risk(item, t)
    if pod is not None:
        findings.append(pod)
    drift = drift_finding(item)  # cfg against the live target: Dom0 sees both
    if drift is not None:
        findings.append(drift)
    if item.config is not None and item.config.error:
        findings.append(
            Finding(
                "input_error",
                "info",
                "Some inputs could not be read",
                "The cfg could not be read, so no patch is proposed.",
                (Evidence("cfg", item.config.error[:300]),),
            )
        )
    codes = {f.code for f in findings}
    nights = tools_nights(item, t, run_at)
    pod_guard = pod is not None or "pod_crash" in codes
    recommendation: Recommendation | None = None
    if "balloon_stuck" in codes:
        # It does not reach the memory it has: more would not be reached either.
        recommendation = _keep(
            item, "the guest does not reach its balloon target; fix that first", pod_guard
        )
    if recommendation is None:
        recommendation, below = _size_from_tools(item, t, nights, pod_guard)
        if below is not None:
            findings.append(below)
    if recommendation is None and pod_guard:
        recommendation = _keep(
            item,
            "Xen crashes an HVM guest in populate-on-demand mode without a balloon driver",
            maxmem_equal=True,
        )
    if recommendation is None:
        if t.tools_total_kib is None or t.tools_free_kib is None:
            why = "no guest tools publish memory figures in xenstore"
        elif free_pct(nights[-1]) >= item.thresholds.available_warning_pct:
            why = (
                f"its guest tools report {free_pct(nights[-1]):.0f}% free; from Dom0 memory is "
                "only raised on little free memory, never lowered"
            )
        else:
            why = (
                f"its guest tools report little free memory on fewer than {MIN_TOOLS_NIGHTS} "
                "nights in a row"
            )
        if not any(severity_rank(f.severity) >= severity_rank("warning") for f in findings):
            findings.append(
                Finding(
                    "insufficient_data",
                    "info",
                    "Nothing seen from Dom0 sizes this domain",
                    f"{item.domain.name}: {why}. Its memory is left as it is.",
                    (Evidence("hypervisor", why),),
                )
            )
    ordered = sorted(findings, key=lambda f: -severity_rank(f.severity))
    annotated = _with_history(ordered, item.hypervisor_nights)
    need_series = tuple(kib_to_mib(n.tools_need_kib or 0) for n in nights)
    return Assessment(
        domain=item.domain.name,
        host=item.host.name,
        severity=_worst(annotated),
        findings=annotated,
        recommendation=recommendation,
        need_mib=need_series[-1] if t.tools_total_kib is not None and need_series else None,
        need_history_mib=need_series,
    )


def annotate(assessment: Assessment, item: DomainInput) -> Assessment:
    """Add what only the hypervisor knows to a guest-side judgement (when signals were read)."""
    if item.host.signals is None:
        return assessment
    t = tonight(item)
    extra = crash_findings(item, t) + balloon_findings(item, t)
    have = {f.code for f in assessment.findings}
    extra = [f for f in extra if f.code not in have]
    if not extra:
        return assessment
    findings = sorted(
        (*assessment.findings, *_with_history(extra, item.hypervisor_nights)),
        key=lambda f: -severity_rank(f.severity),
    )
    worst = _worst(findings)
    if severity_rank(worst) >= severity_rank("warning"):
        findings = [f for f in findings if f.code != "healthy"]
    return replace(assessment, findings=tuple(findings), severity=_worst(findings))


def host_notes(host: HostView) -> tuple[str, ...]:
    """What the report says about the Dom0 itself."""
    if host.backend != "xm":
        return ()
    from xenaudit.hypervisor.xm_parse import XEND_REMOVED_NOTE

    return (XEND_REMOVED_NOTE,)
