"""Tonight's history row for one domain: what tomorrow's run compares with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xenaudit.analysis.interface import ConfigFacts, HistoryNight
from xenaudit.analysis.logevents import failure_count, guest_oom_events
from xenaudit.analysis.memavail import meminfo_damage
from xenaudit.parsers.interface import GuestFacts


def _counter_sum(vmstat: Any, prefix: str) -> int | None:
    """The sum of a counter split per zone or per type (allocstall_normal, ...)."""
    if vmstat is None:
        return None
    values = [
        v
        for k, v in vmstat.counters.items()
        if (k == prefix or k.startswith(prefix + "_")) and not k.endswith("_throttle")
    ]
    return sum(values) if values else None


def night_from_facts(
    facts: GuestFacts | None,
    run_at: str,
    finding_codes: Iterable[str] = (),
    config: ConfigFacts | None = None,
    live_target_kib: int | None = None,
    boot_time: int | None = None,
) -> HistoryNight:
    """Tonight's row for one domain, from what its guest showed.

    Event counts are those in tonight's kernel log (old reports included,
    plus reports the kernel suppressed), so tomorrow's run can tell new
    events from ones it already saw. Cumulative counters are kept as read,
    so tomorrow's run sees the pressure in between.
    """
    meminfo = facts.meminfo if facts else None
    vmstat = facts.vmstat if facts else None
    psi = facts.psi if facts else None
    swap_total = meminfo.get("SwapTotal") if meminfo else None
    swap_free = meminfo.get("SwapFree") if meminfo else None
    return HistoryNight(
        run_at=run_at,
        mem_total_kib=meminfo.mem_total_kib if meminfo else None,
        mem_available_kib=meminfo.mem_available_kib if meminfo else None,
        swap_used_kib=(
            max(0, swap_total - swap_free)
            if swap_total is not None and swap_free is not None
            else None
        ),
        pswpin=vmstat.get("pswpin") if vmstat else None,
        pgmajfault=vmstat.get("pgmajfault") if vmstat else None,
        oom_kill_counter=vmstat.get("oom_kill") if vmstat else None,
        psi_some_avg60=psi.some.avg60 if psi and psi.some else None,
        page_alloc_failures=failure_count(facts.kernlog if facts else None),
        oom_kills=guest_oom_events(facts.kernlog if facts else None),
        finding_codes=tuple(sorted(set(finding_codes))),
        mem_free_kib=meminfo.get("MemFree") if meminfo else None,
        sunreclaim_kib=meminfo.get("SUnreclaim") if meminfo else None,
        psi_some_total_us=psi.some.total_us if psi and psi.some else None,
        psi_full_total_us=psi.full.total_us if psi and psi.full else None,
        allocstall=_counter_sum(vmstat, "allocstall"),
        pgscan_direct=_counter_sum(vmstat, "pgscan_direct"),
        compact_stall=vmstat.get("compact_stall") if vmstat else None,
        workingset_refault=_counter_sum(vmstat, "workingset_refault"),
        cfg_memory_mib=config.memory_mib if config else None,
        cfg_maxmem_mib=config.maxmem_mib if config else None,
        live_target_kib=live_target_kib,
        boot_time=boot_time,
        damaged=meminfo_damage(meminfo, None) is not None if meminfo else True,
    )
