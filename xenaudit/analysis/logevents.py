"""The kernel-log events the analysis counts, split by kind.

Shared by the signals (tonight) and the history rows (what tomorrow compares
with), so both count the same way.
"""

from __future__ import annotations

from xenaudit.parsers.interface import KernelLog, OomInvoked, OomKill, PageAllocFailure


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
    counted = _counted(kernlog, "oom_kill")
    return max(len(kills), len(invoked), counted)


def _counted(kernlog: KernelLog | None, kind: str) -> int:
    """How many events of `kind` the parser saw, including those it did not keep.

    A storm can print thousands of reports; a parser that keeps only the first
    and last few still counts them all (``KernelLog.counts`` where it has one).
    """
    counts = getattr(kernlog, "counts", None) if kernlog is not None else None
    if not isinstance(counts, dict):
        return 0
    value = counts.get(kind, 0)
    return value if isinstance(value, int) and value > 0 else 0


def failure_count(kernlog: KernelLog | None) -> int:
    """Page allocation failures in a log: reports seen, kept or not, plus those suppressed."""
    failures, _, _, _, suppressed = split_events(kernlog)
    return max(len(failures), _counted(kernlog, "page_alloc_failure")) + suppressed
