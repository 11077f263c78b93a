"""The kernel-log events the analysis counts, split by kind.

Shared by the signals (tonight) and the history rows (what tomorrow compares
with), so both count the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from xenaudit.analysis.failures import kind
from xenaudit.parsers.interface import (
    EventCounts,
    KernelLog,
    OomInvoked,
    OomKill,
    PageAllocFailure,
)


def split_events(
    kernlog: KernelLog | None,
) -> tuple[
    tuple[PageAllocFailure, ...],
    tuple[OomKill, ...],
    tuple[OomKill, ...],
    tuple[OomInvoked, ...],
    int,
]:
    if kernlog is None:
        return (), (), (), (), 0
    failures = tuple(e for e in kernlog.events if isinstance(e, PageAllocFailure))
    kills = tuple(e for e in kernlog.events if isinstance(e, OomKill))
    invoked = tuple(
        e for e in kernlog.events if isinstance(e, OomInvoked) and not getattr(e, "memcg", False)
    )
    suppressed = sum(max(0, getattr(f, "callbacks_suppressed", 0) or 0) for f in failures)
    return (
        failures,
        tuple(k for k in kills if not k.memcg),
        tuple(k for k in kills if k.memcg),
        invoked,
        suppressed,
    )


def guest_oom_events(kernlog: KernelLog | None) -> int:
    """Guest-wide OOM events in a log: kill lines, or invocations when the kill lines are cut.

    Excerpts and rotated logs often keep the "invoked oom-killer" header but
    lose the "Killed process" line (or the reverse); either proves the guest
    ran out. This count is what history stores as a night's oom_kills.
    """
    _, kills, _, invoked, _ = split_events(kernlog)
    counted = max(_counted(kernlog, "oom_kill"), _counted(kernlog, "oom_invoked"))
    return max(len(kills), len(invoked), counted)


def _counted(kernlog: KernelLog | None, kind: str) -> int:
    """How many events of `kind` the parser saw, including those it did not keep.

    A storm can print thousands of reports; a parser that keeps only the first
    and last few still counts them all (``KernelLog.counts`` where it has one).
    """
    counts = getattr(kernlog, "counts", None) if kernlog is not None else None
    if isinstance(counts, EventCounts):
        # Guest-wide numbers: a memory cgroup's OOM is not the guest running out.
        counts = {
            "page_alloc_failure": counts.page_alloc_failures,
            "page_alloc_suppressed": counts.page_alloc_suppressed,
            "oom_kill": counts.oom_kills - counts.oom_kills_memcg,
            "oom_kill_memcg": counts.oom_kills_memcg,
            "oom_invoked": counts.oom_invoked - counts.oom_invoked_memcg,
        }
    if not isinstance(counts, dict):
        return 0
    value = counts.get(kind, 0)
    return value if isinstance(value, int) and value > 0 else 0


def failure_count(kernlog: KernelLog | None) -> int:
    """Page allocation failures in a log: reports seen, kept or not, plus those suppressed."""
    failures, _, _, _, _ = split_events(kernlog)
    reports = max(len(failures), _counted(kernlog, "page_alloc_failure"))
    return reports + suppressed_count(kernlog)


def suppressed_count(kernlog: KernelLog | None) -> int:
    """Failure reports the kernel suppressed ("N callbacks suppressed"), next to kept or not."""
    _, _, _, _, suppressed = split_events(kernlog)
    return max(suppressed, _counted(kernlog, "page_alloc_suppressed"))


def guest_kill_count(kernlog: KernelLog | None) -> int:
    """Guest-wide "Killed process" lines in a log, kept or not."""
    _, kills, _, _, _ = split_events(kernlog)
    return max(len(kills), _counted(kernlog, "oom_kill"))


def memcg_kill_count(kernlog: KernelLog | None) -> int:
    """Memory-cgroup OOM kills in a log, kept or not."""
    _, _, memcg, _, _ = split_events(kernlog)
    return max(len(memcg), _counted(kernlog, "oom_kill_memcg"))


# --- failures by kind, exactly -------------------------------------------------------------

#: The analysis' kinds of failure: order-0 atomic, order-0 that could wait, order >= 1,
#: each without those that may fail by design, which are a kind of their own.
FailureBucket = Literal["atomic_order0", "reclaim_order0", "high_order", "opportunistic"]
BUCKETS: tuple[FailureBucket, ...] = (
    "atomic_order0",
    "reclaim_order0",
    "high_order",
    "opportunistic",
)


@dataclass(frozen=True)
class Tally:
    """How many failures of one kind: exactly, or, when the reports the parser did not keep
    may be of this kind or another, the fewest and the most there can be."""

    low: int
    high: int

    @property
    def exact(self) -> bool:
        return self.low == self.high

    def __str__(self) -> str:
        return f"{self.low:,}" if self.exact else f"{self.low:,} to {self.high:,}"


@dataclass(frozen=True)
class FailureTallies:
    """Failures of each kind in the whole log, and among the newest `fresh` reports."""

    total: dict[FailureBucket, Tally]
    fresh: dict[FailureBucket, Tally]
    #: Reports counted but not kept (0 when every report was kept).
    dropped: int = 0


def bucket_of(event: PageAllocFailure) -> FailureBucket:
    """The analysis' kind of one kept failure (see failures.py)."""
    found = kind(event)
    if found == "opportunistic":
        return "opportunistic"
    if event.order >= 1:
        return "high_order"
    return "atomic_order0" if found == "atomic" else "reclaim_order0"


def _parser_bucket(event: PageAllocFailure) -> str:
    """How EventCounts files a failure: by order and is_atomic, opportunistic or not."""
    if event.order >= 1:
        return "high_order"
    return "atomic_order0" if event.is_atomic else "reclaim_order0"


def _exact(events: Sequence[PageAllocFailure]) -> dict[FailureBucket, Tally]:
    found = Counter(bucket_of(e) for e in events)
    return {b: Tally(found[b], found[b]) for b in BUCKETS}


def _add(
    a: dict[FailureBucket, Tally], b: dict[FailureBucket, Tally]
) -> dict[FailureBucket, Tally]:
    return {k: Tally(a[k].low + b[k].low, a[k].high + b[k].high) for k in BUCKETS}


def _taken(part: int, whole: int, tally: Tally) -> Tally:
    """How many of `part` reports taken from `whole` can be of a kind `whole` holds `tally` of."""
    return Tally(max(0, part - (whole - tally.low)), min(part, tally.high))


def failure_tallies(
    kernlog: KernelLog | None, failures: Sequence[PageAllocFailure], fresh: int
) -> FailureTallies:
    """Exact failures of each kind, from the kept reports and the parser's counts.

    The parser keeps the first and the last `keep_per_kind` reports and counts
    all of them by order, by whether they could sleep, and by whether they may
    fail by design. Those counts pin each kind down exactly unless the reports
    it did not keep include some that may fail by design and of more than one
    order or sleep kind; then a kind is known within bounds. `fresh`: how many
    of the newest reports no earlier run saw.
    """
    counts = kernlog.counts if kernlog is not None else None
    dropped = 0 if counts is None else max(0, counts.page_alloc_failures - len(failures))
    keep = kernlog.keep_per_kind if kernlog is not None else None
    if counts is None or not dropped or keep is None or len(failures) < keep:
        fresh_events = failures[len(failures) - min(max(fresh, 0), len(failures)) :]
        return FailureTallies(_exact(failures), _exact(fresh_events))
    kept = Counter(_parser_bucket(e) for e in failures)
    gap: dict[FailureBucket, int] = {
        "atomic_order0": max(0, counts.atomic_order0 - kept["atomic_order0"]),
        "reclaim_order0": max(0, counts.reclaim_order0 - kept["reclaim_order0"]),
        "high_order": max(0, counts.high_order - kept["high_order"]),
    }
    gap_opportunistic = max(0, counts.opportunistic - sum(e.opportunistic for e in failures))
    in_gap: dict[FailureBucket, Tally] = {
        "opportunistic": Tally(gap_opportunistic, gap_opportunistic)
    }
    for name, size in gap.items():
        others = dropped - size
        # Of this order/sleep kind's dropped reports, those that may fail by design are
        # at least what the other kinds cannot hold, at most all of them.
        most = min(gap_opportunistic, size)
        least = max(0, gap_opportunistic - others)
        in_gap[name] = Tally(max(0, size - most), max(0, size - least))
    total = _add(_exact(failures), in_gap)
    first, last = failures[:keep], failures[keep:]
    fresh = max(0, fresh)
    if fresh <= len(last):
        fresh_tally = _exact(last[len(last) - fresh :])
    else:
        from_gap = min(fresh - len(last), dropped)
        from_first = min(fresh - len(last) - from_gap, len(first))
        seen = _exact([*first[len(first) - from_first :], *last])
        fresh_tally = _add(seen, {b: _taken(from_gap, dropped, in_gap[b]) for b in BUCKETS})
    return FailureTallies(total, fresh_tally, dropped)
