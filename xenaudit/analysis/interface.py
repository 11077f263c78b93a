"""Analysis: from what we saw to a diagnosis and a sized recommendation.

Every number the analysis produces carries the evidence and reasons that led
to it, because admins act on the recommendation only when they can check it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from xenaudit.analysis.hypervisor_nights import HypervisorNight
from xenaudit.collector.interface import GuestSnapshot
from xenaudit.errors import DomainError
from xenaudit.hypervisor.interface import Domain, HostView
from xenaudit.inventory.interface import DomainOverride, Thresholds
from xenaudit.parsers.interface import GuestFacts

Severity = Literal["ok", "info", "warning", "critical"]
SEVERITY_ORDER: tuple[Severity, ...] = ("ok", "info", "warning", "critical")

Confidence = Literal["low", "medium", "high"]


def severity_rank(severity: Severity) -> int:
    return SEVERITY_ORDER.index(severity)


class AnalysisError(DomainError):
    """The analysis could not run for a domain. Names the domain and the source."""


@dataclass(frozen=True)
class ConfigFacts:
    """The domain's xl.cfg as xl reads it."""

    path: str | None
    memory_mib: int | None
    maxmem_mib: int | None
    guest_type: Literal["pv", "pvh", "hvm"] | None
    #: sha256 of the file's bytes, so `apply` can refuse a stale patch.
    sha256: str | None = None
    #: Why the cfg could not be found or read, when it could not.
    error: str | None = None
    #: How the cfg passes hardware through (pci=, dtdev=, passthrough=), None when it does not.
    passthrough: str | None = None


@dataclass(frozen=True)
class HistoryNight:
    """One earlier night's key metrics for one domain (from the history store).

    A night is every run between noon and the next noon (local time): a
    manual check in the evening and the timer at 02:30 are one night. Peaks
    (need, swap, PSI) are the worst of its runs; cumulative counters and the
    log's event counts are those of its latest run, `run_at`.
    """

    run_at: str
    mem_total_kib: int | None
    mem_available_kib: int | None
    swap_used_kib: int | None
    pswpin: int | None
    pgmajfault: int | None
    oom_kill_counter: int | None
    psi_some_avg60: float | None
    page_alloc_failures: int
    oom_kills: int
    finding_codes: tuple[str, ...] = ()
    #: The night this row belongs to ("2026-11-24" for runs from its noon to the next).
    night: str | None = None
    #: How many runs were merged into this night.
    runs: int = 1
    mem_free_kib: int | None = None
    sunreclaim_kib: int | None = None
    #: Cumulative counters (since boot) as the night's latest run read them.
    psi_some_total_us: int | None = None
    psi_full_total_us: int | None = None
    allocstall: int | None = None
    pgscan_direct: int | None = None
    compact_stall: int | None = None
    workingset_refault: int | None = None
    #: The cfg and the live target the guest ran with that night.
    cfg_memory_mib: int | None = None
    cfg_maxmem_mib: int | None = None
    live_target_kib: int | None = None
    #: The night's meminfo was damaged (missing fields): its need sizes nothing down.
    damaged: bool = False
    #: When the guest booted (Unix seconds, /proc/stat btime): a different one is a reboot.
    boot_time: int | None = None
    #: What the night recommended (None when it proposed no change), so an
    #: unresolved finding keeps its recommendation on later nights.
    rec_memory_mib: int | None = None
    rec_maxmem_mib: int | None = None

    @property
    def need_kib(self) -> int | None:
        if self.mem_total_kib is None or self.mem_available_kib is None:
            return None
        return self.mem_total_kib - self.mem_available_kib


@dataclass(frozen=True)
class DomainInput:
    """Everything known about one domain when it is judged."""

    host: HostView
    domain: Domain
    config: ConfigFacts | None
    snapshot: GuestSnapshot | None
    facts: GuestFacts | None
    override: DomainOverride
    thresholds: Thresholds
    #: Earlier nights, oldest first (tonight not included).
    history: tuple[HistoryNight, ...] = ()
    #: Live-vs-cfg differences reported by the hypervisor stage.
    drift: tuple[str, ...] = ()
    #: Memory Xen itself keeps on this domain's host (HypervisorSpec.xen_reserve_mib),
    #: so the host plan can be checked without handing it the inventory.
    xen_reserve_mib: int = 256
    #: Earlier nights as Dom0 saw them (hypervisor-side signals), oldest first.
    hypervisor_nights: tuple[HypervisorNight, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """One observed fact behind a finding, quoted from where it was read."""

    source: str
    text: str
    line: int | None = None


@dataclass(frozen=True)
class Finding:
    #: Stable code: shortage, atomic_reserve, fragmentation, balloon_below_need,
    #: over_provisioned, healthy, insufficient_data, oom_kill, drift, hvm_pod_risk, ...
    code: str
    severity: Severity
    title: str
    detail: str
    evidence: tuple[Evidence, ...] = ()
    first_seen: str | None = None
    #: Nights in history on which this finding was also raised.
    nights_seen: int = 0


@dataclass(frozen=True)
class Advice:
    """Guest-side advice: goes in the report, never in the cfg diff."""

    title: str
    detail: str
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class MinFreeSuggestion:
    """A guest-side vm.min_free_kbytes proposal, sized to the guest.

    Kept apart from `Advice` so reports and tests can read the numbers, not
    only the prose: the kernel's own default for this size, what the guest
    runs with now and what we propose.
    """

    #: What the guest runs with now (/proc/sys/vm/min_free_kbytes), when read.
    current_kib: int | None
    #: What the kernel would pick by itself for the guest's low memory.
    kernel_default_kib: int
    suggested_kib: int
    #: The guest size (MemTotal, KiB) the proposal was scaled to.
    sized_for_kib: int
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class SysctlProposal:
    """A guest-side sysctl applied live (never part of a cfg diff), with its numbers."""

    #: Full name, e.g. "vm.watermark_scale_factor".
    name: str
    #: What the guest runs with now, when read.
    current: int | None
    proposed: int
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendation:
    memory_mib: int
    maxmem_mib: int
    reasons: tuple[str, ...]
    confidence: Confidence
    #: The measured need the sizing started from.
    need_mib: int | None
    #: "none" when the domain was sized and keeps its memory (the reasons say
    #: why); a domain that could not be sized has no Recommendation at all.
    change: Literal["increase", "decrease", "maxmem", "none"]
    #: False when the host plan could not make room for it.
    fits: bool = True
    not_fitting_reason: str | None = None
    #: Whether `xl mem-set` to the new memory is safe on the running domain.
    live_change_safe: bool = False


@dataclass(frozen=True)
class Assessment:
    domain: str
    host: str
    severity: Severity
    findings: tuple[Finding, ...]
    advice: tuple[Advice, ...] = ()
    recommendation: Recommendation | None = None
    #: Tonight's need (MemTotal - MemAvailable), MiB.
    need_mib: int | None = None
    #: Need over the nights in history plus tonight, oldest first, for the sparkline.
    need_history_mib: tuple[int, ...] = ()
    #: Proposed vm.min_free_kbytes for the guest (also spelled out in `advice`).
    min_free: MinFreeSuggestion | None = None
    #: Further live sysctls for the atomic reserve (watermark_scale_factor, extra_free_kbytes).
    sysctls: tuple[SysctlProposal, ...] = ()

    @property
    def diagnosis(self) -> tuple[str, ...]:
        return tuple(f.title for f in self.findings)


@dataclass(frozen=True)
class PlanEntry:
    domain: str
    current_mib: int
    planned_mib: int
    #: The change was kept in the plan (False: does not fit, current size kept).
    accepted: bool


@dataclass(frozen=True)
class HostPlan:
    host: str
    total_mib: int | None
    dom0_mib: int
    #: Xen's own heap beyond what is modelled below (HypervisorSpec.xen_reserve_mib).
    xen_reserve_mib: int
    entries: tuple[PlanEntry, ...]
    current_total_mib: int
    planned_total_mib: int
    #: MiB the plan is short of; 0 when everything fits.
    shortfall_mib: int
    notes: tuple[str, ...] = ()
    #: Xen's frame table: one 32-byte struct page_info per 4 KiB page of the host (~0.8%).
    frame_table_mib: int = 0
    #: Paging pools (shadow or HAP, `shadow_memkb`) of the HVM and PVH domains.
    paging_pool_mib: int = 0
    #: libxl's per-domain extra (1 MiB PV, 2 MiB HVM/PVH: LIBXL_*_EXTRA_MEMORY).
    domain_overhead_mib: int = 0
    #: HVM video RAM, for the record: it is part of those domains' memory, not extra.
    video_mib: int = 0
    #: `dom0_mem=` on Xen's command line, MiB, when set.
    dom0_mem_mib: int | None = None
    #: Whether xl balloons Dom0 down to start domains (xl.conf autoballoon and dom0_mem).
    autoballoon: bool | None = None
    #: How much xl could take from Dom0 when it balloons (down to libxl's 128 MiB floor).
    dom0_balloon_room_mib: int = 0
    #: `xl info` free_memory, and what the model expects free tonight, MiB.
    free_memory_mib: int | None = None
    modelled_free_mib: int | None = None

    @property
    def fits(self) -> bool:
        return self.shortfall_mib == 0

    @property
    def xen_total_mib(self) -> int:
        """Everything Xen keeps beside Dom0 and the guests' memory."""
        return (
            self.xen_reserve_mib
            + self.frame_table_mib
            + self.paging_pool_mib
            + self.domain_overhead_mib
        )


class Analyzer(ABC):
    @abstractmethod
    def assess(self, item: DomainInput) -> Assessment:
        """Judge one domain. Must not raise for bad guest data: report it as a finding."""

    @abstractmethod
    def plan_host(
        self, host: HostView, assessments: Sequence[Assessment], inputs: Sequence[DomainInput]
    ) -> tuple[HostPlan, tuple[Assessment, ...]]:
        """Check the host's recommendations against its memory; mark those that do not fit."""
