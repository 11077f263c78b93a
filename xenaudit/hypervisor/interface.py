"""What a hypervisor source tells us about one Dom0 and its domains.

Every backend (`xl`, libvirt, a replayed snapshot) yields the same frozen
`HostView`, so the rest of the pipeline never learns which one was used.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from xenaudit.errors import SourcedError

if TYPE_CHECKING:
    from xenaudit.hypervisor.signals import HypervisorSignals

GuestType = Literal["pv", "pvh", "hvm"]

#: Domain states as the report names them; `xl list` flags map onto these.
DomainState = Literal[
    "running", "blocked", "paused", "shutdown", "crashed", "dying", "shutoff", "unknown"
]


class HypervisorError(SourcedError):
    """A hypervisor could not be read. The message names the host and the source."""

    @property
    def host(self) -> str:
        return self.subject


@dataclass(frozen=True)
class Domain:
    """One domain as the hypervisor sees it (live values, not the cfg)."""

    name: str
    domid: int | None
    uuid: str | None
    state: DomainState
    guest_type: GuestType | None
    vcpus: int | None
    #: Balloon target in KiB (`b_info.target_memkb`, libvirt currentMemory).
    target_kib: int | None
    #: Ceiling in KiB (`b_info.max_memkb`, libvirt memory).
    max_kib: int | None
    #: Memory the domain holds right now (`xl list` Mem column), when known.
    current_kib: int | None = None
    is_dom0: bool = False
    #: The paging pool (shadow or HAP p2m) Xen allocates beside the domain's memory
    #: (`b_info.shadow_memkb`; HVM and PVH), KiB.
    shadow_kib: int | None = None
    #: HVM video RAM (`b_info.video_memkb`), taken out of `memory`, KiB.
    video_kib: int | None = None
    #: How the domain passes hardware through (`c_info.passthrough`, `pcidevs`), or None.
    passthrough: str | None = None


@dataclass(frozen=True)
class HostView:
    """One Dom0 and everything it reported, plus the raw text it was read from."""

    name: str
    backend: str
    total_memory_kib: int | None
    free_memory_kib: int | None
    domains: tuple[Domain, ...]
    outstanding_claims_kib: int | None = None
    free_cpus: int | None = None
    xen_version: str | None = None
    #: `dom0_mem=` from the Xen command line, in KiB, when set.
    dom0_mem_kib: int | None = None
    #: `autoballoon` from /etc/xen/xl.conf ("on", "off", "auto"), when read.
    autoballoon: str | None = None
    #: Raw outputs by file name (e.g. "xl-info.txt"), saved as the host's snapshot.
    raw: Mapping[str, str] = field(default_factory=dict)
    #: Things the source noticed that did not stop it (partial output, suspicious
    #: values), each naming the command or file. Derived from `raw` only, so a
    #: replayed snapshot carries the same warnings.
    warnings: tuple[str, ...] = ()
    #: Hypervisor-side signals (xenstore, xentop, the hypervisor log), when they were read.
    signals: HypervisorSignals | None = None

    @property
    def dom0(self) -> Domain | None:
        return next((d for d in self.domains if d.is_dom0), None)

    @property
    def guests(self) -> tuple[Domain, ...]:
        return tuple(d for d in self.domains if not d.is_dom0)


class HypervisorSource(ABC):
    """Reads one Dom0."""

    #: Short backend name used in reports and snapshots ("xl", "libvirt", "snapshot").
    backend: str = ""

    @abstractmethod
    def read(self) -> HostView:
        """Return the host's view or raise `HypervisorError`."""
