"""Builders of DomainInput for the analysis tests.

Each builder takes the numbers a test cares about and fills the rest with
plain, healthy values, so a test reads as the situation it describes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from xenaudit.analysis.interface import ConfigFacts, DomainInput, HistoryNight
from xenaudit.collector.interface import GuestSnapshot
from xenaudit.hypervisor.interface import Domain, GuestType, HostView
from xenaudit.inventory.interface import DomainOverride, Thresholds
from xenaudit.parsers.interface import (
    Buddyinfo,
    BuddyZone,
    GuestFacts,
    KernelEvent,
    KernelLog,
    Meminfo,
    OomKill,
    PageAllocFailure,
    Process,
    Psi,
    PsiLine,
    SysVm,
    Vmstat,
)

MIB = 1024
GIB = 1024 * 1024

ATOMIC_FLAGS = ("GFP_ATOMIC",)
KERNEL_FLAGS = ("GFP_KERNEL",)


def meminfo(
    total_kib: int,
    available_kib: int,
    swap_total_kib: int = 0,
    swap_free_kib: int | None = None,
    sunreclaim_kib: int = 20 * MIB,
    **extra: int,
) -> Meminfo:
    fields = {
        "MemTotal": total_kib,
        "MemFree": max(available_kib // 4, 0),
        "MemAvailable": available_kib,
        "Buffers": max(available_kib // 16, 0),
        "Cached": max(available_kib // 2, 0),
        "SwapTotal": swap_total_kib,
        "SwapFree": swap_total_kib if swap_free_kib is None else swap_free_kib,
        "SUnreclaim": sunreclaim_kib,
    }
    fields.update(extra)
    return Meminfo(fields)


def failure(
    order: int = 0,
    *,
    atomic: bool = True,
    process: str = "swapper",
    line: int = 10,
    timestamp: str | None = None,
    buddy_lines: Sequence[str] = (),
) -> PageAllocFailure:
    return PageAllocFailure(
        line=line,
        timestamp=timestamp if timestamp is not None else f"{1000 + line}.000000",
        process=process,
        order=order,
        gfp_mask="0x20" if atomic else "0xd0",
        gfp_flags=ATOMIC_FLAGS if atomic else KERNEL_FLAGS,
        gfp_flags_source="decoded",
        buddy_lines=tuple(buddy_lines),
    )


def swapper_failures(count: int, first_line: int = 20) -> tuple[PageAllocFailure, ...]:
    """`swapper: page allocation failure. order:0, mode:0x20`, `count` times."""
    return tuple(failure(0, line=first_line + 40 * i) for i in range(count))


def oom_kill(
    victim: str = "java",
    rss_kib: int = 300 * MIB,
    *,
    pid: int = 4242,
    line: int = 50,
    memcg: bool = False,
) -> OomKill:
    return OomKill(
        line=line,
        timestamp=f"{2000 + line}.000000",
        victim_pid=pid,
        victim_process=victim,
        total_vm_kib=rss_kib * 2,
        anon_rss_kib=rss_kib,
        file_rss_kib=0,
        shmem_rss_kib=0,
        memcg=memcg,
    )


def psi(some_avg60: float = 0.0, full_avg60: float = 0.0) -> Psi:
    return Psi(
        some=PsiLine(some_avg60, some_avg60, some_avg60, 1000),
        full=PsiLine(full_avg60, full_avg60, full_avg60, 100),
    )


def buddy(*zones: tuple[str, Sequence[int]]) -> Buddyinfo:
    return Buddyinfo(tuple(BuddyZone(0, name, tuple(blocks)) for name, blocks in zones))


def facts(
    total_kib: int,
    available_kib: int,
    *,
    swap_total_kib: int = 0,
    swap_free_kib: int | None = None,
    events: Sequence[KernelEvent] = (),
    vmstat: dict[str, int] | None = None,
    pressure: Psi | None = None,
    buddyinfo: Buddyinfo | None = None,
    min_free_kbytes: int | None = None,
    balloon_target_kib: int | None = None,
    balloon_current_kib: int | None = None,
    processes: Sequence[Process] = (),
    sunreclaim_kib: int = 20 * MIB,
    errors: Sequence[str] = (),
) -> GuestFacts:
    sysvm = None
    if min_free_kbytes is not None:
        # What `grep -H '' /proc/sys/vm/*` lists on a 5.10 guest, for the knobs the advice names.
        sysvm = SysVm(
            {
                "min_free_kbytes": str(min_free_kbytes),
                "extfrag_threshold": "500",
                "watermark_scale_factor": "10",
                "watermark_boost_factor": "15000",
                "compaction_proactiveness": "20",
                "swappiness": "60",
            }
        )
    return GuestFacts(
        meminfo=meminfo(
            total_kib, available_kib, swap_total_kib, swap_free_kib, sunreclaim_kib=sunreclaim_kib
        ),
        buddyinfo=buddyinfo,
        vmstat=Vmstat(vmstat if vmstat is not None else {"pswpin": 0, "pgmajfault": 1000}),
        psi=pressure if pressure is not None else psi(),
        sysvm=sysvm,
        processes=tuple(processes),
        kernlog=KernelLog(tuple(events), lines_read=500),
        balloon_target_kib=balloon_target_kib,
        balloon_current_kib=balloon_current_kib,
        errors=tuple(errors),
    )


def snapshot(
    name: str, host: str = "xen1", status: str = "ok", error: str | None = None
) -> GuestSnapshot:
    return GuestSnapshot(
        domain=name,
        host=host,
        status=status,  # type: ignore[arg-type]
        collected_at="2026-11-25T02:30:00Z",
        error=error,
        sections={"uname": "5.10.0-26-amd64\n"} if status == "ok" else {},
        section_status={"meminfo": "ok"} if status == "ok" else {},
        kernlog_source="dmesg",
    )


def host_view(
    domains: Sequence[Domain] = (),
    *,
    name: str = "xen1",
    total_mib: int | None = 16384,
    dom0_mib: int = 2048,
) -> HostView:
    dom0 = Domain(
        "Domain-0", 0, None, "running", "pv", 2, dom0_mib * MIB, dom0_mib * MIB, is_dom0=True
    )
    return HostView(
        name=name,
        backend="xl",
        total_memory_kib=total_mib * MIB if total_mib is not None else None,
        free_memory_kib=None,
        domains=(dom0, *domains),
    )


def domain(
    name: str = "web",
    memory_mib: int = 512,
    maxmem_mib: int | None = None,
    *,
    guest_type: GuestType = "pv",
    state: str = "blocked",
    target_mib: int | None = None,
) -> Domain:
    return Domain(
        name=name,
        domid=3 if state != "shutoff" else None,
        uuid=None,
        state=state,  # type: ignore[arg-type]
        guest_type=guest_type,
        vcpus=1,
        target_kib=(target_mib if target_mib is not None else memory_mib) * MIB,
        max_kib=(maxmem_mib or memory_mib) * MIB,
    )


def night(
    run_at: str,
    total_kib: int,
    available_kib: int,
    *,
    pswpin: int | None = 0,
    pgmajfault: int | None = 1000,
    oom_kill_counter: int | None = None,
    psi_some_avg60: float | None = 0.0,
    page_alloc_failures: int = 0,
    oom_kills: int = 0,
    codes: Sequence[str] = ("healthy",),
) -> HistoryNight:
    return HistoryNight(
        run_at=run_at,
        mem_total_kib=total_kib,
        mem_available_kib=available_kib,
        swap_used_kib=0,
        pswpin=pswpin,
        pgmajfault=pgmajfault,
        oom_kill_counter=oom_kill_counter,
        psi_some_avg60=psi_some_avg60,
        page_alloc_failures=page_alloc_failures,
        oom_kills=oom_kills,
        finding_codes=tuple(codes),
    )


def quiet_nights(
    count: int, total_kib: int, available_kib: int, *, month: str = "2026-10"
) -> tuple[HistoryNight, ...]:
    """`count` calm nights, one per day, with the same memory use."""
    return tuple(
        night(f"{month}-{day + 1:02d}T02:30:00Z", total_kib, available_kib) for day in range(count)
    )


def case(
    guest_facts: GuestFacts | None,
    *,
    name: str = "web",
    memory_mib: int = 512,
    maxmem_mib: int | None = None,
    guest_type: GuestType = "pv",
    state: str = "blocked",
    target_mib: int | None = None,
    status: str = "ok",
    history: Sequence[HistoryNight] = (),
    override: DomainOverride | None = None,
    thresholds: Thresholds | None = None,
    drift: Sequence[str] = (),
    host_total_mib: int | None = 16384,
    config: bool = True,
) -> DomainInput:
    dom = domain(
        name, memory_mib, maxmem_mib, guest_type=guest_type, state=state, target_mib=target_mib
    )
    cfg = (
        ConfigFacts(f"/etc/xen/{name}.cfg", memory_mib, maxmem_mib, guest_type) if config else None
    )
    return DomainInput(
        host=host_view((dom,), total_mib=host_total_mib),
        domain=dom,
        config=cfg,
        snapshot=snapshot(name, status=status) if state != "shutoff" else None,
        facts=guest_facts if status in ("ok", "partial") else None,
        override=override or DomainOverride(name),
        thresholds=thresholds or Thresholds(),
        history=tuple(history),
        drift=tuple(drift),
    )


#: The reference case's numbers: a 512 MiB PV guest reporting 503 MiB.
CLASSIC_TOTAL_KIB = 515_072
CLASSIC_AVAILABLE_KIB = 128_436
CLASSIC_SWAP_TOTAL_KIB = 524_284
CLASSIC_SWAP_FREE_KIB = 471_856


def classic_512(failures: int = 4, **changes: object) -> DomainInput:
    """512 MiB PV DomU logging `swapper: page allocation failure. order:0, mode:0x20`."""
    item = case(
        facts(
            CLASSIC_TOTAL_KIB,
            CLASSIC_AVAILABLE_KIB,
            swap_total_kib=CLASSIC_SWAP_TOTAL_KIB,
            swap_free_kib=CLASSIC_SWAP_FREE_KIB,
            events=swapper_failures(failures),
            min_free_kbytes=2_870,
            balloon_target_kib=512 * MIB,
            balloon_current_kib=512 * MIB,
            processes=(
                Process(1102, "memcached", 66_120, 331_000),
                Process(2311, "httpd", 24_421, 412_300),
            ),
        ),
        memory_mib=512,
    )
    return replace(item, **changes) if changes else item  # type: ignore[arg-type]


def corpus_text(corpus: Path, name: str) -> str:
    return (corpus / name).read_text(encoding="utf-8", errors="replace")


def classic_short(failures: int = 4, **changes: object) -> DomainInput:
    """The reference guest with only 10% available: its atomic failures come with a shortage."""
    item = classic_512(failures)
    squeezed = replace(
        item.facts,
        meminfo=meminfo(
            CLASSIC_TOTAL_KIB,
            CLASSIC_TOTAL_KIB // 10,
            swap_total_kib=CLASSIC_SWAP_TOTAL_KIB,
            swap_free_kib=CLASSIC_SWAP_FREE_KIB,
        ),
    )
    item = replace(item, facts=squeezed)
    return replace(item, **changes) if changes else item  # type: ignore[arg-type]


def damage_a_page(path: Path) -> bytes:
    """Checkpoint a SQLite store into its main file and scribble over a page in the middle;
    the damaged bytes, for checking that the store leaves them untouched."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * 4096
    data[2 * 4096 : 2 * 4096 + 512] = b"\xff" * 512
    path.write_bytes(bytes(data))
    return bytes(data)
