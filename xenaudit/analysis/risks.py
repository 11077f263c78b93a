"""Findings that do not explain a shortage but put the domain at risk.

An HVM guest in populate-on-demand mode without a balloon driver, live
settings that drifted from the cfg, and kernel memory that cannot be
reclaimed (a leak grows it night after night; more memory only postpones it).
"""

from __future__ import annotations

from xenaudit.analysis import evidence as ev
from xenaudit.analysis.interface import DomainInput, Evidence, Finding
from xenaudit.analysis.signals import Signals

#: Unreclaimable slab above this share of MemTotal is worth a finding of its own.
SUNRECLAIM_WARNING_SHARE = 0.20


def slab_finding(item: DomainInput, s: Signals) -> Finding | None:
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


def hvm_pod_finding(item: DomainInput, s: Signals) -> Finding | None:
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


def drift_finding(item: DomainInput) -> Finding | None:
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
