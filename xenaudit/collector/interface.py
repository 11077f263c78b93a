"""Guest collection: the raw text each DomU showed us, and how we got it.

A collector never interprets what it reads; it returns sections of text
(hostile, capped) plus an honest status so the parsers and the analysis can
decide what the text is worth.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from xenaudit.errors import DomainError

CollectionStatus = Literal[
    "ok", "partial", "unreachable", "auth_failed", "host_key_rejected", "timeout", "skipped"
]

SectionStatus = Literal["ok", "missing", "denied", "truncated", "error"]

#: Section names, which are also the snapshot file names.
SECTIONS: tuple[str, ...] = (
    "meminfo",
    "buddyinfo",
    "vmstat",
    "psi_memory",
    "slabinfo",
    "sysvm",
    "ps",
    "kernlog",
    "balloon",
    "uname",
)


class CollectorError(DomainError):
    """A guest could not be read. The message names the domain and the source."""


@dataclass(frozen=True)
class GuestTarget:
    """Where and how to reach one DomU."""

    domain: str
    host: str
    ssh_host: str
    ssh_port: int = 22
    ssh_user: str = "root"
    identity_file: str | None = None


@dataclass(frozen=True)
class GuestSnapshot:
    """Everything collected from one guest in one run."""

    domain: str
    host: str
    status: CollectionStatus
    #: ISO-8601 UTC time the collection finished.
    collected_at: str
    error: str | None = None
    #: Section name -> raw text (decoded with errors="replace").
    sections: Mapping[str, str] = field(default_factory=dict)
    #: Section name -> status; a section absent here was not attempted.
    section_status: Mapping[str, SectionStatus] = field(default_factory=dict)
    #: Where the kernel log came from: "dmesg", "journalctl", "kern.log" or None.
    kernlog_source: str | None = None
    #: Fingerprint of the host key seen, when the key was rejected.
    host_key_fingerprint: str | None = None


class GuestCollector(ABC):
    """Collects snapshots from many guests."""

    @abstractmethod
    def collect(
        self,
        targets: Iterable[GuestTarget],
        on_done: Callable[[GuestSnapshot], None] | None = None,
    ) -> Iterator[GuestSnapshot]:
        """Yield one snapshot per target, never raising for a single bad guest."""
