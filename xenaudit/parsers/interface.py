"""Typed results of the pure text parsers.

Parsers take text (hostile, possibly truncated) and return these frozen
dataclasses. They never do I/O; a section that cannot be understood raises
`ParseError`, which callers turn into a per-domain, per-source finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


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


# --- kernel log events --------------------------------------------------------

GfpFlagsSource = Literal["printed", "decoded"]


@dataclass(frozen=True)
class LogLine:
    """One kernel-log line with its prefix stripped, keeping where it came from."""

    line: int
    timestamp: str | None
    text: str


@dataclass(frozen=True)
class PageAllocFailure:
    kind = "page_alloc_failure"
    line: int
    timestamp: str | None
    process: str
    order: int
    gfp_mask: str
    gfp_flags: tuple[str, ...]
    gfp_flags_source: GfpFlagsSource
    #: The lines of the report that followed (call trace, Mem-Info, buddy lists).
    context: tuple[LogLine, ...] = ()
    #: Per-zone free blocks by order, when the report printed buddy lists.
    buddy_lines: tuple[str, ...] = ()
    #: "N callbacks suppressed" printed just before this report: failures not shown.
    callbacks_suppressed: int = 0
    #: Kernel release named by the report's "CPU: ... Comm:" / "Pid: ..." line.
    kernel_version: str | None = None
    #: Bit layout used when the flags were decoded ("pre-4.4", "4.4", ...); None if printed.
    gfp_era: str | None = None
    #: The header as the kernel printed it (line prefix removed), for quoting.
    text: str = ""
    #: Release of the kernel that wrote the report: its own dump line ("CPU: 0 PID: 1
    #: Comm: x Not tainted 5.4.0-42", "Pid: 1, comm: x Tainted: P 2.6.32"), else the
    #: last "Linux version" banner before it in the same log. None when neither was
    #: printed (the running kernel is not assumed: a log may span reboots).
    kernel_release: str | None = None
    #: Function names of the report's call trace, in printed order (innermost first),
    #: without offsets or "?" markers. Empty when the trace was not printed or cut.
    call_trace: tuple[str, ...] = ()
    #: The first function in the trace outside the page allocator, warn and dump
    #: helpers: who asked for the memory (e.g. "alloc_thread_stack_node" for fork's
    #: kernel stack, "nf_ct_alloc_hashtable" for a conntrack resize, a NIC driver's
    #: receive refill). None without a trace.
    caller: str | None = None
    #: CPU and PID from the report's dump line, when printed.
    cpu: int | None = None
    pid: int | None = None
    #: True when the request was allowed to fail by design: __GFP_NORETRY, or no
    #: direct reclaim and no access to reserves (GFP_NOWAIT and kin). Such failures
    #: are reported but say little about the guest's size.
    opportunistic: bool = False
    #: True when the text had to be put back together before parsing (mail quoting
    #: or quoted-printable undone, a wrapped or glued line rejoined or split).
    reconstructed: bool = False

    @property
    def is_atomic(self) -> bool:
        """True for allocations that could not sleep to reclaim (GFP_ATOMIC and kin).

        Decoded flags list every bit that was set, so a decoded mask without any
        reclaim bit could not sleep either (pre-4.4 GFP_NOWAIT was 0).
        """
        flags = set(self.gfp_flags)
        if "GFP_ATOMIC" in flags or "GFP_NOWAIT" in flags:
            return True
        can_reclaim = {
            "__GFP_DIRECT_RECLAIM",
            "__GFP_WAIT",
            "__GFP_RECLAIM",
            "GFP_KERNEL",
            "GFP_USER",
            "GFP_HIGHUSER",
            "GFP_HIGHUSER_MOVABLE",
            "GFP_NOIO",
            "GFP_NOFS",
            "GFP_KERNEL_ACCOUNT",
            "GFP_TEMPORARY",
            "GFP_TRANSHUGE",
            "GFP_TRANSHUGE_LIGHT",
        }
        if flags & can_reclaim:
            return False
        if "__GFP_HIGH" in flags or "__GFP_ATOMIC" in flags:
            return True
        return self.gfp_flags_source == "decoded" and bool(self.gfp_mask)


@dataclass(frozen=True)
class OomInvoked:
    kind = "oom_invoked"
    line: int
    timestamp: str | None
    process: str
    gfp_mask: str | None
    order: int | None
    oom_score_adj: int | None
    #: Flags of the failed allocation, printed or decoded as for PageAllocFailure.
    gfp_flags: tuple[str, ...] = ()
    gfp_flags_source: GfpFlagsSource | None = None
    gfp_era: str | None = None
    #: Pre-2.6.36 kernels printed oom_adj (-17..15) instead of oom_score_adj.
    oom_adj: int | None = None
    #: "oom-kill:constraint=..." value (4.19+), e.g. "CONSTRAINT_MEMCG".
    constraint: str | None = None
    #: True when the report shows a memory cgroup limit was hit, not the guest's memory.
    memcg: bool = False
    kernel_version: str | None = None
    #: The lines of the report that followed (call trace, Mem-Info, task list).
    context: tuple[LogLine, ...] = ()
    buddy_lines: tuple[str, ...] = ()
    #: The header as the kernel printed it (line prefix removed), for quoting.
    text: str = ""
    #: As for PageAllocFailure: the writing kernel's release, the call trace's
    #: function names, the first caller outside the allocator, CPU and PID of the
    #: dump line, and whether the text was reconstructed.
    kernel_release: str | None = None
    call_trace: tuple[str, ...] = ()
    caller: str | None = None
    cpu: int | None = None
    pid: int | None = None
    reconstructed: bool = False


@dataclass(frozen=True)
class OomKill:
    kind = "oom_kill"
    line: int
    timestamp: str | None
    victim_pid: int
    victim_process: str
    total_vm_kib: int | None
    anon_rss_kib: int | None
    file_rss_kib: int | None
    shmem_rss_kib: int | None
    #: True for "Memory cgroup out of memory" kills (a limit, not the guest).
    memcg: bool = False
    #: Extra numbers printed by newer kernels (None where the era does not print them).
    uid: int | None = None
    pgtables_kib: int | None = None
    oom_score_adj: int | None = None
    #: Badness score from the old "Kill process N (x) score S or sacrifice child" line.
    score: int | None = None
    #: The "Killed process" line as the kernel printed it (prefix removed), for quoting.
    text: str = ""
    #: True when the text had to be put back together (see PageAllocFailure).
    reconstructed: bool = False


@dataclass(frozen=True)
class BalloonMessage:
    kind = "balloon"
    line: int
    timestamp: str | None
    message: str
    #: True when the text had to be put back together (see PageAllocFailure).
    reconstructed: bool = False


KernelEvent = PageAllocFailure | OomInvoked | OomKill | BalloonMessage


@dataclass(frozen=True)
class EventCounts:
    """Exact numbers of events in a log, whatever was kept of the events themselves.

    A hostile or storming guest can print millions of reports; only the first
    and last few of each kind are kept as events, but these counts cover all.
    """

    page_alloc_failures: int = 0
    #: Sum of "N callbacks suppressed" printed before failure reports.
    page_alloc_suppressed: int = 0
    #: Failures by what was asked: order 0 that could not sleep (atomic), order 0
    #: that could, and order >= 1. Each failure is in exactly one of the three.
    atomic_order0: int = 0
    reclaim_order0: int = 0
    high_order: int = 0
    #: Failures of requests allowed to fail by design (PageAllocFailure.opportunistic).
    opportunistic: int = 0
    oom_invoked: int = 0
    #: Of oom_invoked, those that hit a memory cgroup limit rather than the guest's memory.
    oom_invoked_memcg: int = 0
    oom_kills: int = 0
    #: Of oom_kills, the memory cgroup ones.
    oom_kills_memcg: int = 0
    balloon: int = 0

    @property
    def total(self) -> int:
        return self.page_alloc_failures + self.oom_invoked + self.oom_kills + self.balloon

    def by_kind(self) -> dict[str, int]:
        """Events per ``kind`` value, as the event classes name them."""
        return {
            "page_alloc_failure": self.page_alloc_failures,
            "oom_invoked": self.oom_invoked,
            "oom_kill": self.oom_kills,
            "balloon": self.balloon,
        }


@dataclass(frozen=True)
class KernelLog:
    #: The events kept, in log order: all of them, or when ``keep_per_kind`` is set
    #: the first and the last ``keep_per_kind`` of each kind.
    events: tuple[KernelEvent, ...]
    lines_read: int
    #: True when the text looked cut (first or last line partial).
    truncated: bool = False
    #: Exact counts over the whole log (None only for logs built by hand).
    counts: EventCounts | None = None
    #: The cap that applied (None: every event kept).
    keep_per_kind: int | None = None

    @property
    def events_dropped(self) -> int:
        """Events counted but not kept (0 when nothing was capped)."""
        if self.counts is None:
            return 0
        return max(0, self.counts.total - len(self.events))


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
