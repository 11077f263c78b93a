"""The finished audit: what every output format renders."""

from __future__ import annotations

from dataclasses import dataclass, field

from xenaudit.analysis.interface import Assessment, ConfigFacts, HostPlan, severity_rank
from xenaudit.collector.interface import GuestSnapshot
from xenaudit.hypervisor.interface import Domain, HostView
from xenaudit.parsers.interface import GuestFacts

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DomainReport:
    host: str
    domain: Domain
    config: ConfigFacts | None
    snapshot: GuestSnapshot | None
    facts: GuestFacts | None
    assessment: Assessment
    drift: tuple[str, ...] = ()
    #: Path of the patch relative to the output directory, e.g. "patches/web.cfg.diff".
    patch_path: str | None = None
    patch_text: str | None = None

    @property
    def name(self) -> str:
        return self.domain.name

    @property
    def collection_status(self) -> str:
        return self.snapshot.status if self.snapshot else "skipped"


@dataclass(frozen=True)
class HostReport:
    name: str
    backend: str
    view: HostView | None
    plan: HostPlan | None
    #: Why the host could not be read, when it could not.
    error: str | None = None
    #: How the host was reached, so `apply --live` can reach it the same way.
    uri: str | None = None
    ssh_host: str | None = None


@dataclass(frozen=True)
class AuditReport:
    generated_at: str
    tool_version: str
    hosts: tuple[HostReport, ...]
    domains: tuple[DomainReport, ...]
    inventory_path: str | None = None
    demo: bool = False
    #: Problems that did not stop the audit, each naming the domain or host and the source.
    errors: tuple[str, ...] = field(default_factory=tuple)
    #: An output format could not be written (the others were).
    output_failed: bool = False
    #: Tracebacks of unexpected exceptions the run survived (exit code 4).
    crashes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def incomplete(self) -> bool:
        """Some host or guest could not be read (exit code 3)."""
        if any(h.error for h in self.hosts):
            return True
        return any(
            d.snapshot is not None and d.snapshot.status not in ("ok", "skipped")
            for d in self.domains
        )

    def worst_severity_rank(self) -> int:
        return max((severity_rank(d.assessment.severity) for d in self.domains), default=0)

    def domains_by_severity(self) -> tuple[DomainReport, ...]:
        return tuple(
            sorted(
                self.domains,
                key=lambda d: (-severity_rank(d.assessment.severity), d.host, d.name),
            )
        )
