"""What the hypervisor side shows of one domain tonight, in the analysis' terms.

Joins the Dom0 signals (hypervisor/signals.py) with the domain: what it
should hold at its balloon target, what it holds, and what its guest tools
publish, each with the source it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xenaudit.analysis.hypervisor_nights import HypervisorNight
from xenaudit.analysis.interface import DomainInput
from xenaudit.hypervisor.signals import DomainSignals
from xenaudit.hypervisor.xendmesg_parse import DomainCrashed, PodExhausted, XenEvent
from xenaudit.parsers.interface import ParseError
from xenaudit.parsers.meminfo import parse_meminfo


@dataclass(frozen=True)
class Tonight:
    """What the hypervisor side shows of one domain tonight."""

    domid: int | None
    state: str
    #: What the guest should hold at its balloon target, KiB, and where that came from.
    expected_kib: int | None
    expected_source: str
    held_kib: int | None
    held_source: str
    tools_total_kib: int | None
    tools_free_kib: int | None
    tools_source: str | None
    tools_note: str | None
    feature_balloon: bool | None
    #: Log events naming tonight's domid.
    events: tuple[XenEvent, ...]
    signals_read: bool
    log_source: str

    def night(self, run_at: str, codes: Sequence[str] = ()) -> HypervisorNight:
        """Tonight as a hypervisor-side night, filed under `run_at`."""
        return HypervisorNight(
            run_at=run_at,
            domid=self.domid,
            state=self.state,
            target_kib=self.expected_kib,
            held_kib=self.held_kib,
            tools_total_kib=self.tools_total_kib,
            tools_free_kib=self.tools_free_kib,
            tools_source=self.tools_source,
            feature_balloon=self.feature_balloon,
            pod_events=sum(1 for e in self.events if isinstance(e, PodExhausted)),
            crash_events=sum(1 for e in self.events if isinstance(e, DomainCrashed)),
            finding_codes=tuple(codes),
        )


def _tools(signals: DomainSignals) -> tuple[int | None, int | None, str | None, str | None]:
    store = signals.xenstore
    if store is None:
        return None, None, None, None
    total, free = store.agent_total_kib, store.agent_free_kib
    if total and free is not None and free <= total:
        return (
            total,
            free,
            "guest agent (xenstore data/meminfo_total, data/meminfo_free)",
            f"agent last wrote at {store.agent_updated!r}" if store.agent_updated else None,
        )
    if store.balloond_meminfo:
        try:
            meminfo = parse_meminfo(store.balloond_meminfo, "xenstore memory/meminfo")
        except ParseError:
            return None, None, None, "memory/meminfo holds no MemTotal line"
        total = meminfo.mem_total_kib
        available = meminfo.get("MemAvailable")
        note = None
        if available is None:
            parts = [meminfo.get(k) for k in ("MemFree", "Buffers", "Cached")]
            if parts[0] is None:
                return None, None, None, "memory/meminfo holds no MemFree line"
            available = sum(p or 0 for p in parts)
            note = "MemFree + Buffers + Cached (the guest kernel has no MemAvailable)"
        if "memory/meminfo" in store.truncated:
            note = (note + "; " if note else "") + "the value was cut by xenstore-ls"
        if total and available <= total:
            return total, available, "xenballoond (xenstore memory/meminfo)", note
    return None, None, None, None


def tonight(item: DomainInput) -> Tonight:
    domain = item.domain
    host = item.host
    log_source = "xm dmesg" if host.backend == "xm" else "xl dmesg"
    signals = (
        host.signals.for_domain(domain.name, domain.domid)
        if host.signals is not None
        else DomainSignals(None, None)
    )
    store = signals.xenstore
    expected: int | None = None
    expected_source = "unknown"
    if store is not None and store.target_kib is not None:
        expected = store.target_kib
        expected_source = "xenstore memory/target"
        if domain.guest_type == "hvm" and store.videoram_kib:
            # libxl writes the target without the video memory the guest also holds.
            expected += store.videoram_kib
            expected_source += f" + memory/videoram {store.videoram_kib} kB"
    elif domain.target_kib is not None:
        expected = domain.target_kib
        expected_source = f"{host.backend} list -l target"
    held: int | None = None
    held_source = "unknown"
    if signals.xentop is not None:
        held, held_source = signals.xentop.mem_kib, "xentop MEM(k)"
    elif domain.current_kib is not None:
        held = domain.current_kib
        held_source = "xentop MEM(k)" if host.backend == "xm" else "xl list Mem (MiB)"
    total, free, source, note = _tools(signals)
    return Tonight(
        domid=domain.domid,
        state=domain.state,
        expected_kib=expected,
        expected_source=expected_source,
        held_kib=held,
        held_source=held_source,
        tools_total_kib=total,
        tools_free_kib=free,
        tools_source=source,
        tools_note=note,
        feature_balloon=store.feature_balloon if store is not None else None,
        events=signals.events,
        signals_read=host.signals is not None,
        log_source=log_source,
    )


def night_record(item: DomainInput, run_at: str, codes: Sequence[str]) -> HypervisorNight:
    """Tonight as a row of the hypervisor-side history."""
    return tonight(item).night(run_at, codes)
