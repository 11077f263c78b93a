"""Apply: the contracts between reading a reviewed report and changing things.

An audit only proposes. `apply` acts on what an admin reviewed, so every
value it uses is read back from the report folder (hostile until checked),
every change is one the admin saw, and every change can be undone from the
action log.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from xenaudit.errors import DomainError


class ApplyError(DomainError):
    """One domain's change could not be made. Names the domain and the source."""


@dataclass(frozen=True)
class LiveMemory:
    """The live values the audit saw, as report.json's `live` object holds them."""

    target_kib: int | None
    max_kib: int | None
    current_kib: int | None


@dataclass(frozen=True)
class HostEntry:
    """One hypervisor as far as live changes need it.

    Read from report.json's `hosts` only to compare; the entry a live change
    uses comes from the inventory (see livehosts.py).
    """

    name: str
    backend: str
    #: libvirt URI, when there is one.
    uri: str | None = None
    #: This host is reached over SSH (xl commands would run elsewhere).
    remote: bool = False
    #: The xl binary (the inventory's `xl_command`).
    xl_command: str = "xl"


@dataclass(frozen=True)
class ProposedChange:
    """One domain's reviewed cfg change, validated for type but not yet for place."""

    domain: str
    host: str
    state: str
    guest_type: Literal["pv", "pvh", "hvm"] | None
    domid: int | None
    uuid: str | None
    #: The cfg's absolute path as the audit read it (before any --root).
    cfg_path: str
    #: sha256 hex of the cfg's bytes when the audit read it.
    cfg_sha256: str
    cfg_memory_mib: int | None
    cfg_maxmem_mib: int | None
    memory_mib: int
    maxmem_mib: int
    change: str
    fits: bool
    not_fitting_reason: str | None
    live_change_safe: bool
    #: Tonight's measured need (MemTotal - MemAvailable), MiB.
    need_mib: int | None
    live: LiveMemory | None
    #: The diff's path relative to the report folder, e.g. "patches/web.cfg.diff".
    patch_relpath: str
    reasons: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.host}/{self.domain}"


@dataclass(frozen=True)
class LiveStep:
    """One change to a running domain: its ceiling ("max") or its balloon target."""

    kind: Literal["max", "target"]
    memory_mib: int


@dataclass(frozen=True)
class LivePlan:
    """What `--live` would do to one domain, and why not more."""

    domain: str
    host: str
    steps: tuple[LiveStep, ...]
    #: Why nothing (or less than recommended) is changed live, each a sentence.
    notes: tuple[str, ...] = ()


LiveStatus = Literal["done", "failed", "unsupported"]


@dataclass(frozen=True)
class LiveResult:
    step: LiveStep
    #: What was run, as shown to the admin (e.g. "xl mem-set web 768m").
    command: str
    status: LiveStatus
    detail: str = ""


class LiveChanger(ABC):
    """Changes the memory of running domains on one hypervisor."""

    @abstractmethod
    def describe(self, domain: str, step: LiveStep) -> str:
        """The command or call, printed before it is made."""

    @abstractmethod
    def check_identity(self, change: ProposedChange) -> str | None:
        """Why the running domain may not be the one the audit saw, or None when it is."""

    @abstractmethod
    def run(self, domain: str, step: LiveStep) -> LiveResult:
        """Make one change. Must not raise for hypervisor errors: report them in the result."""


Outcome = Literal[
    "applied", "restored", "unchanged", "declined", "skipped", "failed", "rolled_back"
]


@dataclass(frozen=True)
class DomainOutcome:
    """What happened to one domain in one run."""

    domain: str
    host: str
    outcome: Outcome
    message: str = ""
    backup_path: str | None = None
    live: tuple[LiveResult, ...] = ()
    #: Why a live change that was planned was not attempted (e.g. the domain restarted).
    live_error: str | None = None

    @property
    def ok(self) -> bool:
        if self.outcome not in ("applied", "restored", "unchanged") or self.live_error:
            return False
        # A driver that cannot raise the ceiling live is not a failure: the target
        # step that follows never needs it (see live_plan).
        return all(r.status != "failed" for r in self.live)


@dataclass(frozen=True)
class RunSummary:
    outcomes: tuple[DomainOutcome, ...]
    #: Problems not tied to one planned change (malformed report entries, log lines).
    errors: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 when everything was applied or there was nothing to do, else 1."""
        if self.errors or not all(o.ok for o in self.outcomes):
            return 1
        return 0
