"""Findings that do not explain a shortage but put the domain at risk.

* populate-on-demand: libxl starts every HVM or PVH guest whose memory is
  below maxmem in PoD mode (libxl_create.c: pod_enabled for any non-PV type).
  The guest believes it has maxmem and Xen backs only memory; without a
  balloon driver giving the rest back, the domain is killed once it touches
  more than memory. A guest already in that mode is judged by the pages it
  has touched (at least MemTotal − MemFree), not by MemAvailable;
* PCI passthrough: libxl refuses to create a non-PV domain with an IOMMU
  (pci devices, or passthrough other than "disabled") in PoD mode ("IOMMU
  required for device passthrough but not supported together with PoD"):
  such a cfg with maxmem above memory does not start;
* live settings that drifted from the cfg;
* kernel memory that cannot be reclaimed: when it outgrows all user pages
  (the kernel's own test before it lists slab caches in an OOM report) or
  grows night after night, it is a leak; more memory only postpones the next
  OOM.
"""

from __future__ import annotations

import itertools

from xenaudit.analysis import evidence as ev
from xenaudit.analysis.interface import DomainInput, Evidence, Finding, Severity
from xenaudit.analysis.signals import Signals

#: Unreclaimable slab above this share of MemTotal is worth a finding of its own.
SUNRECLAIM_WARNING_SHARE = 0.20
#: Nights of growth (tonight included) that make unreclaimable slab a leak.
LEAK_NIGHTS = 3
#: Touched pages above these shares of memory put a PoD guest at risk.
POD_TOUCHED_CRITICAL = 0.90
POD_TOUCHED_WARNING = 0.75
#: The libxl message for a passthrough domain asked to start in PoD mode.
LIBXL_PASSTHROUGH_POD = "IOMMU required for device passthrough but not supported together with PoD"


def _lru_kib(item: DomainInput) -> int | None:
    meminfo = item.facts.meminfo if item.facts else None
    if meminfo is None:
        return None
    active, inactive = meminfo.get("Active"), meminfo.get("Inactive")
    if active is None or inactive is None:
        return None
    return active + inactive + (meminfo.get("Unevictable") or 0)


def _sunreclaim_growth(s: Signals) -> list[int]:
    """SUnreclaim over the last nights and tonight, when it grew on each of them."""
    series = [n.sunreclaim_kib for n in s.nights[-(LEAK_NIGHTS - 1) :]] + [s.sunreclaim_kib]
    values = [v for v in series if v is not None]
    if len(values) < LEAK_NIGHTS or any(b <= a for a, b in itertools.pairwise(values)):
        return []
    return values


def slab_dominates(item: DomainInput, s: Signals) -> bool:
    lru = _lru_kib(item)
    return s.sunreclaim_kib is not None and lru is not None and s.sunreclaim_kib > lru


def slab_holds(item: DomainInput, s: Signals) -> str | None:
    """Why memory is held for a slab leak, or None when slab is not a leak."""
    if s.sunreclaim_kib is None or not (slab_dominates(item, s) or _sunreclaim_growth(s)):
        return None
    slab = item.facts.slabinfo if item.facts else None
    cache = slab.caches[0] if slab is not None and slab.caches else None
    named = f", largest cache {ev.clean(cache.name, 40)}" if cache else ""
    return (
        f"unreclaimable slab is a leak ({s.sunreclaim_kib // 1024} MiB{named}): more memory "
        "only delays the next OOM"
    )


def slab_finding(item: DomainInput, s: Signals) -> Finding | None:
    if not s.mem_total_kib or s.sunreclaim_kib is None:
        return None
    share = s.sunreclaim_kib / s.mem_total_kib
    dominates = slab_dominates(item, s)
    growth = _sunreclaim_growth(s)
    if share < SUNRECLAIM_WARNING_SHARE and not dominates and not growth:
        return None
    evidence = [Evidence("meminfo", f"SUnreclaim: {s.sunreclaim_kib} kB ({share:.0%} of MemTotal)")]
    lru = _lru_kib(item)
    if lru is not None:
        evidence.append(
            Evidence("meminfo", f"Active + Inactive + Unevictable (all user pages): {lru} kB")
        )
    slab = item.facts.slabinfo if item.facts else None
    cache = None
    if slab is not None and slab.caches:
        cache = slab.caches[0]
        top = ", ".join(
            f"{ev.clean(c.name, 40)} {round(c.size_kib / 1024)} MiB" for c in slab.caches[:3]
        )
        evidence.append(Evidence("slabinfo", f"largest caches: {top}"))
    if growth:
        evidence.append(
            Evidence(
                "history",
                "SUnreclaim night after night: " + " → ".join(f"{v // 1024} MiB" for v in growth),
            )
        )
    named = (
        f" The largest cache is {ev.clean(cache.name, 40)} ({round(cache.size_kib / 1024)} MiB)."
        if cache
        else ""
    )
    leak = dominates or bool(growth)
    if leak:
        why = []
        if dominates:
            why.append(
                "it exceeds all user pages together (the kernel's own test before it lists slab "
                "caches in an OOM report)"
            )
        if growth:
            why.append(f"it grew on each of the last {len(growth)} nights")
        detail = (
            f"{share:.0%} of memory is unreclaimable slab and {' and '.join(why)}: a leak in a "
            f"driver or module, not a working set.{named} Memory is held at its size: more "
            "would only delay the next OOM. Find the cache that grows and the module that "
            "fills it."
        )
        severity: Severity = "warning"
        title = "Kernel memory leak: unreclaimable slab dominates"
    else:
        detail = (
            f"{share:.0%} of memory is unreclaimable slab.{named} If it grows night after night "
            "it is a leak in a driver or module; more memory only postpones it."
        )
        severity = "warning"
        title = "Kernel memory that cannot be reclaimed is large"
    return Finding("slab_unreclaimable", severity, title, detail, tuple(evidence))


def hvm_pod_finding(item: DomainInput, s: Signals) -> Finding | None:
    """maxmem above memory on an HVM/PVH guest without a confirmed balloon driver."""
    if not s.pod or s.balloon_confirmed or s.passthrough:
        return None
    memory, maxmem = s.pod_memory_mib, s.pod_maxmem_mib
    kind = (s.guest_type or "hvm").upper()
    where = item.config.path if item.config and item.config.path else s.pod_source
    return Finding(
        "hvm_pod_risk",
        "warning",
        f"{kind} guest with maxmem above memory and no confirmed balloon driver",
        f"maxmem {maxmem} MiB > memory {memory} MiB starts this {kind} guest in "
        "populate-on-demand mode (libxl does so for every non-PV guest): it boots believing it "
        "has maxmem and Xen backs only memory. Without a balloon driver to give the difference "
        f"back, the domain is killed once it touches more than memory ({s.balloon_basis}). Set "
        "maxmem = memory, or confirm the driver (balloon_driver = true in the inventory).",
        (Evidence(s.pod_source, f"memory = {memory}, maxmem = {maxmem} ({ev.clean(where, 200)})"),),
    )


def pod_touched_finding(s: Signals) -> Finding | None:
    """A guest in PoD mode judged by the pages it touched, against what Xen backs."""
    if not s.pod or s.pod_memory_mib is None or s.touched_kib is None:
        return None
    memory_kib = s.pod_memory_mib * 1024
    share = s.touched_kib / memory_kib
    if share < POD_TOUCHED_WARNING:
        return None
    severity: Severity = "critical" if share >= POD_TOUCHED_CRITICAL else "warning"
    kind = (s.guest_type or "hvm").upper()
    backed = ""
    if s.balloon_current_kib is not None:
        backed = f"; the balloon driver holds {s.balloon_current_kib // 1024} MiB"
    live = (
        f" Back every page now with `xl mem-set {s.domain} {s.pod_maxmem_mib}m` if the host has "
        "the room, and restart with maxmem = memory."
        if s.pod_maxmem_mib
        else ""
    )
    return Finding(
        "pod_exhaustion",
        severity,
        f"{kind} guest in populate-on-demand mode has touched {share:.0%} of what Xen backs",
        f"This {kind} guest runs in populate-on-demand mode (memory {s.pod_memory_mib} MiB < "
        f"maxmem {s.pod_maxmem_mib} MiB): it sees about {(s.mem_total_kib or 0) // 1024} MiB but "
        f"Xen backs only {s.pod_memory_mib} MiB. It has touched at least "
        f"{s.touched_kib // 1024} MiB (MemTotal − MemFree){backed}: once it touches more than "
        "Xen backs, Xen kills the domain. MemAvailable is measured against the memory it "
        "believes it has, so it is not a reason to shrink it." + live,
        (
            Evidence(
                "meminfo",
                f"MemTotal {s.mem_total_kib} kB − MemFree {s.mem_free_kib} kB = "
                f"{s.touched_kib} kB touched, against memory {memory_kib} kB",
            ),
        ),
    )


def passthrough_finding(item: DomainInput, s: Signals) -> Finding | None:
    """A passthrough domain whose cfg asks for PoD: libxl refuses to start it."""
    if not s.passthrough or s.guest_type not in ("hvm", "pvh"):
        return None
    memory, maxmem = s.cfg_memory_mib, s.cfg_maxmem_mib
    if memory is None or maxmem is None or maxmem <= memory:
        return None
    where = item.config.path if item.config and item.config.path else "cfg"
    return Finding(
        "passthrough_pod",
        "critical",
        "This cfg cannot start the domain: passthrough with maxmem above memory",
        f"The domain passes hardware through ({ev.clean(s.passthrough, 120)}), and libxl refuses "
        f"to create a non-PV domain with an IOMMU in populate-on-demand mode (memory {memory} "
        f'< maxmem {maxmem}): "{LIBXL_PASSTHROUGH_POD}". The next start fails. Set maxmem = '
        "memory.",
        (Evidence("cfg", f"memory = {memory}, maxmem = {maxmem} ({ev.clean(where, 200)})"),),
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
