"""Does the fleet's plan fit the host? Dom0 + Xen + every guest against total memory.

Xen allocates each guest's `memory` when it starts (maxmem is only a
ceiling), so the plan sums memory: the recommended size where there is a
change, the current size otherwise. Shut-off domains are counted too: an
admin expects a domain that is down tonight to be startable tomorrow, and a
plan that silently spends its memory would break that. The notes say how
much of the sum they are.

Beside the guests' memory, Xen needs (tools/libs/light/libxl_mem.c,
libxl_create.c, xl.cfg(5)):

* its frame table: one 32-byte struct page_info per 4 KiB page, about 0.8%
  of the host;
* a paging pool (shadow or HAP p2m) for every HVM and PVH domain, from
  `shadow_memkb` in `xl list -l`, else libxl's default of 1 MiB per vCPU plus
  one page per MiB of maxmem;
* libxl's per-domain extra: 2 MiB for HVM and PVH, 1 MiB for PV;
* its own heap beyond that (the inventory's xen_reserve_mib).

HVM video RAM (`video_memkb`) is part of the domain's memory (libxl builds
the guest's RAM as memory − videoram), so it is noted, not added.

Dom0 counts at its current size. When Xen's command line sets no
`dom0_mem`, xl's autoballoon (xl.conf, "auto" by default) shrinks Dom0 to
make room for a starting domain, down to libxl's 128 MiB floor: a plan that
is over the host there is not impossible, and the notes say what xl would
take from Dom0.

The plan is reconciled with `xl info` free_memory: what the model expects
free tonight against what Xen reports, and the difference.

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
#: struct page_info is 32 bytes per 4 KiB page on x86-64.
FRAME_TABLE_SHARE = 32 / 4096
#: LIBXL_HVM_EXTRA_MEMORY and LIBXL_PV_EXTRA_MEMORY, KiB.
HVM_EXTRA_KIB = 2048
PV_EXTRA_KIB = 1024
#: LIBXL_MIN_DOM0_MEM: libxl refuses a Dom0 target below this, KiB.
MIN_DOM0_KIB = 128 * 1024
#: A difference between xl info free_memory and the model below this is noise, MiB.
RECONCILE_NOISE_MIB = 64


@dataclass(frozen=True)
class _Guest:
    name: str
    current_mib: int
    planned_mib: int
    severity_rank: int
    state: str
    #: Index into the assessments, or None for a domain we have no assessment for.
    assessment_index: int | None
    #: Paging pool and libxl extra beside its memory, KiB.
    overhead_paging_kib: int
    overhead_extra_kib: int
    video_kib: int


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


def _guest_type(item: DomainInput | None, domain: Domain) -> str | None:
    if item is not None and item.config is not None and item.config.guest_type:
        return item.config.guest_type
    return domain.guest_type


def _paging_kib(item: DomainInput | None, domain: Domain, maxmem_mib: int) -> int:
    """The paging pool of an HVM/PVH domain: xl's own figure, else libxl's default."""
    if _guest_type(item, domain) not in ("hvm", "pvh"):
        return 0
    if domain.shadow_kib is not None:
        return domain.shadow_kib
    vcpus = domain.vcpus or 1
    # libxl__get_required_paging_memory with HAP: 256 pages per vCPU + 1 page per MiB.
    return 4 * (256 * vcpus + maxmem_mib)


def _extra_kib(item: DomainInput | None, domain: Domain) -> int:
    kind = _guest_type(item, domain)
    if kind in ("hvm", "pvh"):
        return HVM_EXTRA_KIB
    return PV_EXTRA_KIB if kind == "pv" else 0


def _autoballoon(host: HostView) -> bool | None:
    """xl's effective autoballoon: "auto" (the default) means on unless dom0_mem is set."""
    setting = host.autoballoon
    if setting == "on":
        return True
    if setting == "off":
        return False
    if setting in ("auto", None):
        if host.backend != "xl" and setting is None:
            return None
        return host.dom0_mem_kib is None
    return None


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
        known = by_name.get(name)
        domain = domains[name]
        current = _current_mib(known, domain)
        if current is None:
            unknown.append(name)
            continue
        index = index_of.get(name)
        planned, rank = current, 0
        maxmem = current
        if known is not None and known.config is not None and known.config.maxmem_mib:
            maxmem = known.config.maxmem_mib
        elif domain.max_kib:
            maxmem = domain.max_kib // 1024
        if index is not None:
            assessment = assessments[index]
            rank = severity_rank(assessment.severity)
            rec = assessment.recommendation
            if rec is not None and rec.change in CHANGES_THAT_RESIZE:
                planned = rec.memory_mib
            if rec is not None and rec.change != "none":
                maxmem = rec.maxmem_mib
        video = (domain.video_kib or 0) if _guest_type(known, domain) == "hvm" else 0
        guests.append(
            _Guest(
                name,
                current,
                planned,
                rank,
                domain.state,
                index,
                _paging_kib(known, domain, max(maxmem, planned)),
                _extra_kib(known, domain),
                video,
            )
        )
    if unknown:
        notes.append(f"size unknown, not counted: {', '.join(sorted(unknown))}")

    dom0_mib, dom0_note = _dom0_mib(host)
    if dom0_note:
        notes.append(dom0_note)
    total_mib = host.total_memory_kib // 1024 if host.total_memory_kib is not None else None
    frame_table = round(total_mib * FRAME_TABLE_SHARE) if total_mib else 0
    paging = -(-sum(g.overhead_paging_kib for g in guests) // 1024)
    overhead = -(-sum(g.overhead_extra_kib for g in guests) // 1024)
    video = sum(g.video_kib for g in guests) // 1024
    xen_total = xen_reserve_mib + frame_table + paging + overhead
    fixed = dom0_mib + xen_total
    current_total = fixed + sum(g.current_mib for g in guests)
    desired_total = fixed + sum(g.planned_mib for g in guests)

    shutoff = [g for g in guests if g.state == "shutoff"]
    if shutoff:
        notes.append(
            f"{len(shutoff)} shut-off domain(s) counted "
            f"({sum(g.planned_mib for g in shutoff)} MiB) so they stay startable: "
            + ", ".join(g.name for g in shutoff)
        )
    if video:
        notes.append(
            f"HVM video RAM ({video} MiB) is part of those domains' memory (libxl builds their "
            "RAM as memory − videoram), not extra"
        )

    accepted = {g.name: True for g in guests}
    needs_more: dict[str, int] = {}
    layout = fixed + sum(min(g.current_mib, g.planned_mib) for g in guests)
    autoballoon = _autoballoon(host)
    dom0_mem_mib = host.dom0_mem_kib // 1024 if host.dom0_mem_kib is not None else None
    room = max(0, dom0_mib - MIN_DOM0_KIB // 1024) if autoballoon else 0
    free_mib = host.free_memory_kib // 1024 if host.free_memory_kib is not None else None
    modelled_free = None
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
            f"Dom0 {dom0_mib} MiB + Xen {xen_total} MiB (frame table {frame_table}, paging "
            f"pools {paging}, per-domain {overhead}, reserve {xen_reserve_mib}) + guests "
            f"{planned_total - fixed} MiB = {planned_total} of {total_mib} MiB "
            f"({total_mib - planned_total} MiB left)",
        )
        if shortfall:
            notes.append(
                f"does not fit: the full plan needs {desired_total} MiB, {shortfall} MiB more "
                f"than {host.name} has; {len(needs_more)} increase(s) left out"
            )
        over = max(current_total, desired_total) - total_mib
        if over > 0:
            if autoballoon:
                notes.append(
                    f"no dom0_mem on Xen's command line and autoballoon is on: xl would shrink "
                    f"Dom0 (now {dom0_mib} MiB) to start domains, by up to {room} MiB (libxl "
                    f"refuses below 128 MiB); covering these {over} MiB would leave Dom0 "
                    f"{dom0_mib - over} MiB"
                    + (
                        ", too little for its own work: set dom0_mem and free memory instead"
                        if dom0_mib - over < 1024
                        else ""
                    )
                    + "; the plan is tight, not impossible"
                    if over <= room
                    else f"even shrinking Dom0 to 128 MiB (autoballoon) leaves {over - room} MiB "
                    "missing"
                )
            elif autoballoon is False:
                why = (
                    f"dom0_mem={dom0_mem_mib} MiB is set"
                    if dom0_mem_mib is not None
                    else "autoballoon is off in xl.conf"
                )
                notes.append(f"{why}: xl will not shrink Dom0, so starting domains fails")
        # Running domains hold their current allocation (xl list Mem); shut-off ones nothing.
        held = sum(
            (domains[g.name].current_kib or g.current_mib * 1024) // 1024
            for g in guests
            if g.state != "shutoff"
        )
        running_overhead = (
            sum(
                g.overhead_paging_kib + g.overhead_extra_kib for g in guests if g.state != "shutoff"
            )
            // 1024
        )
        modelled_free = total_mib - (
            dom0_mib + xen_reserve_mib + frame_table + running_overhead + held
        )
        if free_mib is not None:
            diff = free_mib - modelled_free
            if abs(diff) < RECONCILE_NOISE_MIB:
                notes.append(
                    f"xl info free_memory {free_mib} MiB matches the model ({modelled_free} MiB)"
                )
            else:
                more_less = "more" if diff > 0 else "less"
                notes.append(
                    f"xl info free_memory is {free_mib} MiB, the model expects {modelled_free} "
                    f"MiB: {abs(diff)} MiB {more_less} than modelled"
                    + (
                        " (Xen keeps less than the reserve assumes, or domains hold less "
                        "than their targets)"
                        if diff > 0
                        else " (Xen's own use, stub domains, outstanding claims or memory "
                        "still being scrubbed are not in the model)"
                    )
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
        if autoballoon and needs_more[guest.name] <= room:
            reason += (
                f" (xl would take it from Dom0 by autoballoon, leaving Dom0 "
                f"{dom0_mib - needs_more[guest.name]} MiB)"
            )
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
        frame_table_mib=frame_table,
        paging_pool_mib=paging,
        domain_overhead_mib=overhead,
        video_mib=video,
        dom0_mem_mib=dom0_mem_mib,
        autoballoon=autoballoon,
        dom0_balloon_room_mib=room,
        free_memory_mib=free_mib,
        modelled_free_mib=modelled_free,
    )
    return plan, tuple(updated)
