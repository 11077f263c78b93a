"""Typed results of the kernel-log parser (part of the parsers' interface).

Kept apart from the /proc types so that ``xenaudit logscan`` imports only these;
``xenaudit.parsers.interface`` re-exports every name. Frozen dataclasses, like all
data between stages. The module imports neither ``typing`` nor the parser itself.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (start-up of small scans)
if TYPE_CHECKING:
    from typing import Literal

    GfpFlagsSource = Literal["printed", "decoded"]
else:
    GfpFlagsSource = str


class _Record:
    """repr, == and hash of a dataclass, written once for all the types below.

    ``@dataclass`` would generate and compile these three methods for every class
    (about a millisecond each at import, which ``xenaudit logscan`` on a small file
    would pay on every start); these behave the same: the repr lists every field,
    equality compares the fields of two instances of the same class, and the hash
    is that of the field values (the classes are frozen).
    """

    __slots__ = ()
    __dataclass_fields__: dict[str, object]

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__dataclass_fields__)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())


@dataclass(frozen=True, repr=False, eq=False)
class LogLine(_Record):
    """One kernel-log line with its prefix stripped, keeping where it came from."""

    line: int
    timestamp: str | None
    text: str


@dataclass(frozen=True, repr=False, eq=False)
class PageAllocFailure(_Record):
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


@dataclass(frozen=True, repr=False, eq=False)
class OomInvoked(_Record):
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


@dataclass(frozen=True, repr=False, eq=False)
class OomKill(_Record):
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


@dataclass(frozen=True, repr=False, eq=False)
class BalloonMessage(_Record):
    kind = "balloon"
    line: int
    timestamp: str | None
    message: str
    #: True when the text had to be put back together (see PageAllocFailure).
    reconstructed: bool = False


KernelEvent = PageAllocFailure | OomInvoked | OomKill | BalloonMessage


@dataclass(frozen=True, repr=False, eq=False)
class EventCounts(_Record):
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


@dataclass(frozen=True, repr=False, eq=False)
class KernelLog(_Record):
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
