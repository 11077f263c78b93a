"""Merge: the contracts between many Dom0s' report folders and one fleet report.

Each Dom0 audits its own guests and writes a report folder; `xenaudit merge`
joins the folders of a whole fleet. They arrive from many machines (fetched by
Ansible, copied by hand) and are data, not instructions: every field is
checked before use, nothing in them is followed or run, and one bad folder is
named and left out while the rest are merged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from xenaudit.analysis.interface import Severity
from xenaudit.errors import SourcedError, XenauditError
from xenaudit.fleet.defaults import DEFAULT_STALE_AFTER_H as DEFAULT_STALE_AFTER_H

#: fleet.json's contract version (xenaudit/schemas/fleet.schema.json).
FLEET_SCHEMA_VERSION = 1
FLEET_HTML = "fleet.html"
FLEET_JSON = "fleet.json"


class MergeError(XenauditError):
    """The merge as a whole cannot go on (no usable output folder, nothing to merge)."""


class InputError(SourcedError):
    """One input folder cannot be merged. Names the folder, the file and what is wrong."""

    @property
    def folder(self) -> str:
        return self.subject


@dataclass(frozen=True)
class FleetAction:
    """One change proposed for tonight, as a row of the fleet page."""

    severity: Severity
    #: Folder of the Dom0's report under the fleet folder (the link target).
    dom0: str
    #: Hypervisor the domain runs on, as that report names it.
    host: str
    domain: str
    #: "resize" (the cfg's memory/maxmem), "sysctl" (inside the guest only), "unread"
    #: (the guest could not be read) or "review" (a warning without a size change).
    kind: str
    #: What changes, e.g. "memory 512 → 576 MiB, maxmem 768".
    change: str
    #: Why, in the report's own words (one line).
    why: str
    fits: bool
    live_change_safe: bool
    #: The cfg diff, relative to the Dom0's folder, or None (e.g. libvirt-defined domains).
    patch: str | None
    #: Anchor of the domain's section in the Dom0's report.html ("d3"), or None.
    anchor: str | None


@dataclass(frozen=True)
class Dom0Summary:
    """One merged report folder: the per-Dom0 totals of the fleet page."""

    #: Folder under the fleet folder holding the copy of the report folder.
    folder: str
    #: The input folder as it was given.
    source: str
    hosts: tuple[str, ...]
    generated_at: str
    tool_version: str
    age_h: float
    stale: bool
    #: The audit could not read some guest or hypervisor (it exited 3).
    incomplete: bool
    demo: bool
    domains: int
    #: Findings by severity, e.g. (("critical", 2), ("warning", 5), ("info", 1), ("ok", 9)).
    findings: tuple[tuple[str, int], ...]
    #: Domains by their worst severity, same order.
    domain_severities: tuple[tuple[str, int], ...]
    #: The worst severity of any domain.
    worst_severity: str
    actions: int
    #: Hosts whose plan does not fit, with the shortfall in MiB.
    shortfalls: tuple[tuple[str, int], ...]
    #: The report's own errors (the first few) and how many there were.
    errors: tuple[str, ...]
    error_count: int
    #: What the copy left out (symlinks, special files, caps), each naming the file.
    copy_problems: tuple[str, ...] = ()
    #: The copy holds the Dom0's report.html (the fleet page links into it).
    has_page: bool = False

    @property
    def shortfall_mib(self) -> int:
        return sum(mib for _, mib in self.shortfalls)

    def findings_of(self, severity: str) -> int:
        return dict(self.findings).get(severity, 0)


@dataclass(frozen=True)
class MissingDom0:
    """A Dom0 that was expected (`--expect`) but no merged report covers it."""

    name: str
    note: str


@dataclass(frozen=True)
class LeftOut:
    """An input folder that was not merged, and why."""

    source: str
    reason: str


class ActionRows(ABC):
    """The fleet's actions, most severe first; may be read more than once.

    Kept out of memory on purpose (a fleet of hundreds of Dom0s has tens of
    thousands of rows); implementations read them back from disk.
    """

    @abstractmethod
    def __iter__(self) -> Iterator[FleetAction]: ...

    @abstractmethod
    def __len__(self) -> int: ...


class ListedActions(ActionRows):
    """Rows already in memory (small fleets, tests)."""

    def __init__(self, rows: Iterable[FleetAction]) -> None:
        self._rows = list(rows)

    def __iter__(self) -> Iterator[FleetAction]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


@dataclass(frozen=True)
class FleetReport:
    """Everything the fleet outputs show."""

    generated_at: str
    tool_version: str
    stale_after_h: float
    dom0s: tuple[Dom0Summary, ...]
    missing: tuple[MissingDom0, ...]
    left_out: tuple[LeftOut, ...]
    actions: ActionRows
    #: Most action rows fleet.html lists (fleet.json has them all).
    page_actions: int = 1000

    @property
    def incomplete(self) -> bool:
        """Something is missing from the fleet picture (the merge exits 3)."""
        return bool(
            self.missing
            or self.left_out
            or any(d.stale or d.incomplete or d.copy_problems for d in self.dom0s)
        )

    def attention(self) -> Sequence[Dom0Summary]:
        """Merged Dom0s whose report is stale, incomplete or not wholly copied."""
        return [d for d in self.dom0s if d.stale or d.incomplete or d.copy_problems]


class FleetFormat(ABC):
    """One output of the merge (fleet.html, fleet.json)."""

    name: str = ""

    @abstractmethod
    def write(self, fleet: FleetReport, fleet_dir: Path) -> list[Path]:
        """Write this output under `fleet_dir` atomically; return the paths written."""
