"""Typed results of the pure text parsers.

Parsers take text (hostile, possibly truncated) and return these frozen
dataclasses. They never do I/O; a section that cannot be understood raises
`ParseError`, which callers turn into a per-domain, per-source finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# The kernel-log types live in their own module, so that `xenaudit logscan` imports
# them without the /proc types; they are part of this interface all the same.
from xenaudit.parsers.kernevents import (
    BalloonMessage,
    EventCounts,
    GfpFlagsSource,
    KernelEvent,
    KernelLog,
    LogLine,
    OomInvoked,
    OomKill,
    PageAllocFailure,
)

__all__ = [
    "BalloonMessage",
    "BuddyZone",
    "Buddyinfo",
    "EventCounts",
    "GfpFlagsSource",
    "GuestFacts",
    "KernelEvent",
    "KernelLog",
    "LogLine",
    "Meminfo",
    "OomInvoked",
    "OomKill",
    "PageAllocFailure",
    "ParseError",
    "Process",
    "Psi",
    "PsiLine",
    "SlabCache",
    "Slabinfo",
    "SysVm",
    "Vmstat",
]


class ParseError(ValueError):
    """Text that does not have the expected format. Names the source and line."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line
        self.message = message


# --- /proc/meminfo -----------------------------------------------------------


@dataclass(frozen=True)
class Meminfo:
    """/proc/meminfo; every field in KiB (HugePages_* counts kept as plain ints)."""

    fields_kib: Mapping[str, int]

    def get(self, name: str) -> int | None:
        return self.fields_kib.get(name)

    @property
    def mem_total_kib(self) -> int | None:
        return self.fields_kib.get("MemTotal")

    @property
    def mem_available_kib(self) -> int | None:
        """MemAvailable, or an estimate (free + buffers + cache - shmem) on pre-3.14 kernels."""
        if "MemAvailable" in self.fields_kib:
            return self.fields_kib["MemAvailable"]
        free = self.fields_kib.get("MemFree")
        if free is None:
            return None
        cache = self.fields_kib.get("Buffers", 0) + self.fields_kib.get("Cached", 0)
        return free + max(0, cache - self.fields_kib.get("Shmem", 0))

    @property
    def mem_available_estimated(self) -> bool:
        return "MemAvailable" not in self.fields_kib


# --- /proc/buddyinfo ---------------------------------------------------------


@dataclass(frozen=True)
class BuddyZone:
    node: int
    zone: str
    #: free_blocks[k] = number of free blocks of order k (2**k pages each).
    free_blocks: tuple[int, ...]


@dataclass(frozen=True)
class Buddyinfo:
    zones: tuple[BuddyZone, ...]
    page_size_kib: int = 4


# --- /proc/vmstat, /proc/sys/vm ----------------------------------------------


@dataclass(frozen=True)
class Vmstat:
    counters: Mapping[str, int]

    def get(self, name: str) -> int | None:
        return self.counters.get(name)


@dataclass(frozen=True)
class SysVm:
    """/proc/sys/vm/* as name -> raw value text; ints where a value is one integer."""

    values: Mapping[str, str]

    def get_int(self, name: str) -> int | None:
        raw = self.values.get(name)
        if raw is None:
            return None
        try:
            return int(raw.strip())
        except ValueError:
            return None


# --- /proc/pressure/memory ---------------------------------------------------


@dataclass(frozen=True)
class PsiLine:
    avg10: float
    avg60: float
    avg300: float
    total_us: int


@dataclass(frozen=True)
class Psi:
    some: PsiLine | None
    full: PsiLine | None


# --- /proc/slabinfo ----------------------------------------------------------


@dataclass(frozen=True)
class SlabCache:
    name: str
    active_objs: int
    num_objs: int
    objsize_bytes: int
    objperslab: int
    pagesperslab: int
    num_slabs: int | None

    @property
    def size_kib(self) -> int:
        return self.num_objs * self.objsize_bytes // 1024


@dataclass(frozen=True)
class Slabinfo:
    #: "ok", or "denied" when the file could not be read (not an error).
    state: Literal["ok", "denied", "missing"]
    version: str | None
    #: Caches sorted by size, largest first.
    caches: tuple[SlabCache, ...] = ()

    def top(self, n: int = 10) -> tuple[SlabCache, ...]:
        """The n largest caches (the list is already sorted)."""
        return self.caches[: max(0, n)]

    @property
    def total_kib(self) -> int:
        return sum(c.size_kib for c in self.caches)


# --- ps ----------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    pid: int
    comm: str
    rss_kib: int
    vsz_kib: int


# --- everything from one guest -------------------------------------------------


@dataclass(frozen=True)
class GuestFacts:
    """Parsed view of one guest snapshot; a missing or bad section is None."""

    meminfo: Meminfo | None = None
    buddyinfo: Buddyinfo | None = None
    vmstat: Vmstat | None = None
    psi: Psi | None = None
    slabinfo: Slabinfo | None = None
    sysvm: SysVm | None = None
    processes: tuple[Process, ...] = ()
    kernlog: KernelLog | None = None
    #: Balloon driver's view from /sys/devices/system/xen_memory, when present.
    balloon_target_kib: int | None = None
    balloon_current_kib: int | None = None
    #: Per-section problems, e.g. "meminfo: line 3: expected 'Name: value kB'".
    errors: tuple[str, ...] = ()
