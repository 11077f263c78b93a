"""Does the fleet's plan fit the host? Dom0 + Xen + every guest against total memory.

Xen allocates each guest's `memory` when it starts (maxmem is only a
ceiling), so the plan sums memory: the recommended size where there is a
change, the current size otherwise. Shut-off domains are counted too: an
admin expects a domain that is down tonight to be startable tomorrow, and a
plan that silently spends its memory would break that. The notes say how
much of the sum they are.

When the plan does not fit, decreases are applied first (they always fit and
make room), then increases in order of severity (then the smallest first, so
more of them fit); the ones that do not fit are marked on their
recommendation with how much memory they lack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from xenaudit.analysis.interface import (
    Assessment,
    DomainInput,
    Evidence,
    Finding,
    HostPlan,
    PlanEntry,
    severity_rank,
)
from xenaudit.hypervisor.interface import Domain, HostView

CHANGES_THAT_RESIZE = ("increase", "decrease")


@dataclass(frozen=True)
class _Guest:
    name: str
    current_mib: int
    planned_mib: int
    severity_rank: int
    state: str
    #: Index into the assessments, or None for a domain we have no assessment for.
    assessment_index: int | None


def _current_mib(item: DomainInput | None, domain: Domain) -> int | None:
    if item is not None and item.config is not None and item.config.memory_mib is not None:
        return item.config.memory_mib
    for kib in (domain.target_kib, domain.current_kib):
        if kib is not None:
            return kib // 1024
    return None


def _dom0_mib(host: HostView) -> tuple[int, str | None]:
    # Rounded up: libxl reports Dom0's target 1 KiB below dom0_mem (786431 KiB for
    # dom0_mem=768M on Xen 4.17), and the plan must not count Dom0 a MiB short.
    dom0 = host.dom0
    if dom0 is not None:
        for kib in (dom0.target_kib, dom0.current_kib):
            if kib is not None:
                return -(-kib // 1024), None
    if host.dom0_mem_kib is not None:
        return host.dom0_mem_kib // 1024, None
    return 0, "Dom0's memory is unknown and counted as 0 MiB: the plan is optimistic"


def plan_host(
    host: HostView,
    assessments: Sequence[Assessment],
    inputs: Sequence[DomainInput],
    xen_reserve_mib: int | None = None,
) -> tuple[HostPlan, tuple[Assessment, ...]]:
    """Check one host's recommendations against its memory; mark those that do not fit."""
    mine = [i for i in inputs if i.host.name == host.name]
    if xen_reserve_mib is None:
        xen_reserve_mib = mine[0].xen_reserve_mib if mine else 256
    notes: list[str] = []
    by_name = {i.domain.name: i for i in mine}
    index_of = {a.domain: n for n, a in enumerate(assessments) if a.host == host.name}

    names: list[str] = []
    domains: dict[str, Domain] = {}
    for domain in host.guests:
        if domain.name not in domains:
            names.append(domain.name)
            domains[domain.name] = domain
    for item in mine:
        if item.domain.is_dom0 or item.domain.name in domains:
            continue
        names.append(item.domain.name)
        domains[item.domain.name] = item.domain

    guests: list[_Guest] = []
    unknown: list[str] = []
    for name in names:
        current = _current_mib(by_name.get(name), domains[name])
        if current is None:
            unknown.append(name)
            continue
        index = index_of.get(name)
        planned, rank = current, 0
        if index is not None:
            assessment = assessments[index]
            rank = severity_rank(assessment.severity)
            rec = assessment.recommendation
            if rec is not None and rec.change in CHANGES_THAT_RESIZE:
                planned = rec.memory_mib
        guests.append(_Guest(name, current, planned, rank, domains[name].state, index))
    if unknown:
        notes.append(f"size unknown, not counted: {', '.join(sorted(unknown))}")

    dom0_mib, dom0_note = _dom0_mib(host)
    if dom0_note:
        notes.append(dom0_note)
    fixed = dom0_mib + xen_reserve_mib
    current_total = fixed + sum(g.current_mib for g in guests)
    desired_total = fixed + sum(g.planned_mib for g in guests)
    total_mib = host.total_memory_kib // 1024 if host.total_memory_kib is not None else None

    shutoff = [g for g in guests if g.state == "shutoff"]
    if shutoff:
        notes.append(
            f"{len(shutoff)} shut-off domain(s) counted "
            f"({sum(g.planned_mib for g in shutoff)} MiB) so they stay startable: "
            + ", ".join(g.name for g in shutoff)
        )

    accepted = {g.name: True for g in guests}
    needs_more: dict[str, int] = {}
    layout = fixed + sum(min(g.current_mib, g.planned_mib) for g in guests)
    if total_mib is None:
        notes.append("the host's total memory is unknown: the plan could not be checked")
        planned_total = desired_total
        shortfall = 0
    else:
        increases = sorted(
            (g for g in guests if g.planned_mib > g.current_mib),
            key=lambda g: (-g.severity_rank, g.planned_mib - g.current_mib, g.name),
        )
        for guest in increases:
            extra = guest.planned_mib - guest.current_mib
            if layout + extra <= total_mib:
                layout += extra
            else:
                accepted[guest.name] = False
                needs_more[guest.name] = layout + extra - total_mib
        planned_total = layout
        shortfall = max(0, desired_total - total_mib)
        if current_total > total_mib:
            notes.append(
                f"already over the host's memory by {current_total - total_mib} MiB as "
                "configured (everything counted at its cfg size)"
            )
        notes.insert(
            0,
            f"Dom0 {dom0_mib} MiB + Xen {xen_reserve_mib} MiB + guests "
            f"{planned_total - fixed} MiB = {planned_total} of {total_mib} MiB "
            f"({total_mib - planned_total} MiB left)",
        )
        if shortfall:
            notes.append(
                f"does not fit: the full plan needs {desired_total} MiB, {shortfall} MiB more "
                f"than {host.name} has; {len(needs_more)} increase(s) left out"
            )

    entries = tuple(
        PlanEntry(
            domain=g.name,
            current_mib=g.current_mib,
            planned_mib=g.planned_mib if accepted[g.name] else g.current_mib,
            accepted=accepted[g.name],
        )
        for g in guests
    )
    updated = list(assessments)
    for guest in guests:
        if accepted[guest.name] or guest.assessment_index is None:
            continue
        assessment = updated[guest.assessment_index]
        rec = assessment.recommendation
        if rec is None:
            continue
        reason = f"does not fit on {host.name}: needs {needs_more[guest.name]} MiB more"
        finding = Finding(
            "host_capacity",
            "warning",
            f"The increase does not fit on {host.name}",
            f"{reason}. Free memory on the host (move or shrink other domains) before "
            "applying it, or apply it on another host.",
            (Evidence("hostplan", f"{guest.current_mib} → {guest.planned_mib} MiB; {reason}"),),
        )
        findings = (*assessment.findings, finding)
        worst = max((f.severity for f in findings), key=severity_rank)
        updated[guest.assessment_index] = replace(
            assessment,
            recommendation=replace(rec, fits=False, not_fitting_reason=reason),
            findings=findings,
            severity=worst,
        )

    plan = HostPlan(
        host=host.name,
        total_mib=total_mib,
        dom0_mib=dom0_mib,
        xen_reserve_mib=xen_reserve_mib,
        entries=entries,
        current_total_mib=current_total,
        planned_total_mib=planned_total,
        shortfall_mib=shortfall,
        notes=tuple(notes),
    )
    return plan, tuple(updated)
