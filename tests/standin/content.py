"""Fixture text for stand-in guests: what a small Xen DomU shows in /proc and its logs.

The defaults describe the reference case, a 512 MiB DomU whose kernel logged
`swapper: page allocation failure. order:0, mode:0x20`. Formats follow the
kernel's own printers (fs/proc/meminfo.c, mm/vmstat.c, mm/page_alloc.c
warn_alloc and show_free_areas, kernel/sched/psi.c, mm/slab_common.c).
"""

from __future__ import annotations

from collections.abc import Mapping


def meminfo(
    total_kib: int = 505_416,
    free_kib: int = 12_344,
    available_kib: int = 38_912,
    swap_total_kib: int = 262_140,
    swap_free_kib: int = 98_304,
) -> str:
    rows = [
        ("MemTotal", total_kib),
        ("MemFree", free_kib),
        ("MemAvailable", available_kib),
        ("Buffers", 4_120),
        ("Cached", 31_880),
        ("SwapCached", 9_012),
        ("Active", 301_228),
        ("Inactive", 118_400),
        ("Active(anon)", 280_104),
        ("Inactive(anon)", 96_220),
        ("Active(file)", 21_124),
        ("Inactive(file)", 22_180),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", swap_total_kib),
        ("SwapFree", swap_free_kib),
        ("Dirty", 88),
        ("Writeback", 0),
        ("AnonPages", 371_004),
        ("Mapped", 20_412),
        ("Shmem", 5_320),
        ("KReclaimable", 9_404),
        ("Slab", 29_816),
        ("SReclaimable", 9_404),
        ("SUnreclaim", 20_412),
        ("KernelStack", 2_912),
        ("PageTables", 6_204),
        ("CommitLimit", 514_848),
        ("Committed_AS", 1_203_332),
        ("VmallocTotal", 34_359_738_367),
        ("VmallocUsed", 9_876),
        ("VmallocChunk", 0),
    ]
    return "".join(f"{name + ':':<16}{value:>8} kB\n" for name, value in rows)


def buddyinfo(dma: tuple[int, ...] | None = None, dma32: tuple[int, ...] | None = None) -> str:
    dma = dma or (1, 1, 0, 1, 2, 1, 1, 0, 1, 1, 0)
    dma32 = dma32 or (2_113, 611, 87, 9, 1, 0, 0, 0, 0, 0, 0)
    lines = []
    for zone, counts in (("DMA", dma), ("DMA32", dma32)):
        lines.append(f"Node 0, zone {zone:>8} " + "".join(f"{c:>7}" for c in counts) + "\n")
    return "".join(lines)


def vmstat(extra: Mapping[str, int] | None = None) -> str:
    counters = {
        "nr_free_pages": 3_086,
        "nr_zone_inactive_anon": 24_055,
        "nr_zone_active_anon": 70_026,
        "nr_zone_inactive_file": 5_545,
        "nr_zone_active_file": 5_281,
        "nr_slab_reclaimable": 2_351,
        "nr_slab_unreclaimable": 5_103,
        "pgpgin": 8_812_044,
        "pgpgout": 3_300_120,
        "pswpin": 120_334,
        "pswpout": 301_554,
        "pgfault": 91_233_004,
        "pgmajfault": 40_112,
        "allocstall_normal": 0,
        "allocstall_movable": 1_204,
        "pgscan_kswapd": 2_003_112,
        "pgscan_direct": 90_331,
        "pgsteal_kswapd": 1_803_002,
        "pgsteal_direct": 70_220,
        "compact_stall": 311,
        "compact_fail": 290,
        "compact_success": 21,
        "oom_kill": 0,
    }
    counters.update(extra or {})
    return "".join(f"{name} {value}\n" for name, value in counters.items())


def psi(some_avg10: float = 3.12, full_avg10: float = 1.04) -> str:
    return (
        f"some avg10={some_avg10:.2f} avg60=2.80 avg300=1.10 total=98123456\n"
        f"full avg10={full_avg10:.2f} avg60=0.95 avg300=0.40 total=41234567\n"
    )


def slabinfo() -> str:
    head = (
        "slabinfo - version: 2.1\n"
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
        " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs>"
        " <num_slabs> <sharedavail>\n"
    )
    rows = [
        ("skbuff_head_cache", 1_088, 1_152, 256, 16, 1, 72),
        ("kmalloc-2k", 304, 320, 2_048, 16, 8, 20),
        ("dentry", 20_115, 21_420, 192, 21, 1, 1_020),
        ("task_struct", 142, 165, 5_888, 5, 8, 33),
    ]
    body = "".join(
        f"{name:<17} {act:>6} {num:>6} {size:>6} {per:>4} {pages:>4} : tunables    0    0"
        f"    0 : slabdata {slabs:>6} {slabs:>6}      0\n"
        for name, act, num, size, per, pages, slabs in rows
    )
    return head + body


def sysvm(**overrides: str) -> dict[str, str]:
    values = {
        "admin_reserve_kbytes": "8192",
        "dirty_background_ratio": "10",
        "dirty_ratio": "20",
        "extfrag_threshold": "500",
        "lowmem_reserve_ratio": "256\t256\t32\t0\t0",
        "min_free_kbytes": "1448",
        "overcommit_memory": "0",
        "overcommit_ratio": "50",
        "panic_on_oom": "0",
        "swappiness": "60",
        "vfs_cache_pressure": "100",
        "watermark_scale_factor": "10",
    }
    values.update(overrides)
    return values


#: /proc/sys/vm files that are write-only (mode 0200) on a real kernel.
WRITE_ONLY_SYSVM = ("compact_memory", "drop_caches")


def kernlog_page_alloc_failure(boot_lines: int = 5) -> str:
    """A dmesg with the reference failure: an atomic order-0 allocation in softirq."""
    lines = [f"[    0.{i:06d}] Linux version 5.10.0-28-amd64 line {i}" for i in range(boot_lines)]
    lines += [
        "[    1.204511] xen:balloon: Initialising balloon driver",
        "[ 8812.331204] swapper: page allocation failure. order:0, mode:0x20",
        "[ 8812.331210] Pid: 0, comm: swapper Not tainted 2.6.32-5-xen-amd64 #1",
        "[ 8812.331213] Call Trace:",
        "[ 8812.331215]  <IRQ>  [<ffffffff810ba4c5>] ? __alloc_pages_nodemask+0x5a3/0x620",
        "[ 8812.331230]  [<ffffffff8125b1f2>] ? __netdev_alloc_skb+0x29/0x45",
        "[ 8812.331300] Mem-Info:",
        "[ 8812.331301] Node 0 DMA per-cpu:",
        "[ 8812.331320] Node 0 DMA: 1*4kB 1*8kB 0*16kB 1*32kB 2*64kB 1*128kB = 308kB",
        "[ 8812.331330] Node 0 DMA32: 12*4kB 3*8kB 0*16kB 0*32kB 0*64kB 0*128kB = 72kB",
    ]
    return "\n".join(lines) + "\n"
