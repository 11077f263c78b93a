"""Events as data for machines (the `logscan --json` and report.json shape) and as text."""

from __future__ import annotations

from xenaudit.parsers.kernevents import (
    BalloonMessage,
    KernelEvent,
    KernelLog,
    OomInvoked,
    OomKill,
    PageAllocFailure,
)

TYPE_CHECKING = False  # typing is not imported at run time (start-up of small scans)
if TYPE_CHECKING:
    from typing import Any


def event_to_json(event: KernelEvent, file: str) -> dict[str, Any]:
    """The JSON object for one event (the logscan --json contract)."""
    base: dict[str, Any] = {
        "kind": event.kind,
        "file": file,
        "line": event.line,
        "timestamp": event.timestamp,
    }
    if not isinstance(event, BalloonMessage):
        base["text"] = event.text
    if isinstance(event, PageAllocFailure):
        base.update(
            process=event.process,
            order=event.order,
            gfp_mask=event.gfp_mask,
            gfp_flags=list(event.gfp_flags),
            gfp_flags_source=event.gfp_flags_source,
            gfp_era=event.gfp_era,
            atomic=event.is_atomic,
            callbacks_suppressed=event.callbacks_suppressed,
            kernel_version=event.kernel_version,
            buddy_lines=list(event.buddy_lines),
            kernel_release=event.kernel_release,
            call_trace=list(event.call_trace),
            caller=event.caller,
            cpu=event.cpu,
            pid=event.pid,
            opportunistic=event.opportunistic,
            reconstructed=event.reconstructed,
        )
    elif isinstance(event, OomInvoked):
        base.update(
            process=event.process,
            gfp_mask=event.gfp_mask,
            order=event.order,
            oom_score_adj=event.oom_score_adj,
            oom_adj=event.oom_adj,
            gfp_flags=list(event.gfp_flags),
            gfp_flags_source=event.gfp_flags_source,
            constraint=event.constraint,
            memcg=event.memcg,
            kernel_version=event.kernel_version,
            kernel_release=event.kernel_release,
            call_trace=list(event.call_trace),
            caller=event.caller,
            cpu=event.cpu,
            pid=event.pid,
            reconstructed=event.reconstructed,
        )
    elif isinstance(event, OomKill):
        base.update(
            victim_pid=event.victim_pid,
            victim_process=event.victim_process,
            total_vm_kib=event.total_vm_kib,
            anon_rss_kib=event.anon_rss_kib,
            file_rss_kib=event.file_rss_kib,
            shmem_rss_kib=event.shmem_rss_kib,
            memcg=event.memcg,
            uid=event.uid,
            pgtables_kib=event.pgtables_kib,
            oom_score_adj=event.oom_score_adj,
            score=event.score,
            reconstructed=event.reconstructed,
        )
    elif isinstance(event, BalloonMessage):
        base.update(message=event.message)
        if event.reconstructed:
            base["reconstructed"] = True
    return base


def counts_to_json(log: KernelLog) -> dict[str, Any]:
    """Exact event counts of a log and how many events were kept (report.json)."""
    counts = log.counts
    data: dict[str, Any] = {
        "events_kept": len(log.events),
        "keep_per_kind": log.keep_per_kind,
        "events_total": counts.total if counts is not None else len(log.events),
    }
    if counts is not None:
        data["by_kind"] = counts.by_kind()
        data.update(
            page_alloc_suppressed=counts.page_alloc_suppressed,
            atomic_order0=counts.atomic_order0,
            reclaim_order0=counts.reclaim_order0,
            high_order=counts.high_order,
            opportunistic=counts.opportunistic,
            oom_invoked_memcg=counts.oom_invoked_memcg,
            oom_kills_memcg=counts.oom_kills_memcg,
        )
    return data


def _kib(value: int | None) -> str:
    return "?" if value is None else f"{value} kB"


def describe(event: KernelEvent) -> str:
    """One readable line for an event."""
    where = f"line {event.line}" + (f" [{event.timestamp}]" if event.timestamp else "")
    if isinstance(event, PageAllocFailure):
        flags = "|".join(event.gfp_flags) or "?"
        how = "printed" if event.gfp_flags_source == "printed" else f"decoded as {event.gfp_era}"
        extra = " atomic" if event.is_atomic else ""
        if event.opportunistic:
            extra += ", allowed to fail"
        if event.caller:
            extra += f", from {event.caller}"
        if event.callbacks_suppressed:
            extra += f", {event.callbacks_suppressed} more suppressed before it"
        return (
            f"{where}: page allocation failure in {event.process!r}: order {event.order}, "
            f"mode {event.gfp_mask or '?'} ({flags}, {how}){extra}"
        )
    if isinstance(event, OomInvoked):
        adj = (
            f"oom_score_adj {event.oom_score_adj}"
            if event.oom_score_adj is not None
            else f"oom_adj {event.oom_adj}"
        )
        scope = " (memory cgroup)" if event.memcg else ""
        return (
            f"{where}: OOM killer invoked by {event.process!r}{scope}: gfp_mask "
            f"{event.gfp_mask or '?'}, order {event.order}, {adj}"
        )
    if isinstance(event, OomKill):
        scope = " (memory cgroup limit)" if event.memcg else ""
        return (
            f"{where}: OOM kill{scope} of pid {event.victim_pid} ({event.victim_process}): "
            f"total-vm {_kib(event.total_vm_kib)}, anon-rss {_kib(event.anon_rss_kib)}, "
            f"file-rss {_kib(event.file_rss_kib)}, shmem-rss {_kib(event.shmem_rss_kib)}"
        )
    return f"{where}: Xen balloon: {event.message}"
