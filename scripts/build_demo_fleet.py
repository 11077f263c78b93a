#!/usr/bin/env python3
# ruff: noqa: E501  (recorded log lines and outputs are kept whole)
"""Write the bundled demo fleet: recorded `xl` outputs, cfg files and guest snapshots.

The demo replays these through the same code paths as a real run. The
numbers are chosen to be internally consistent (buddy lists add up to
MemFree, swap use matches vmstat, kernel logs use each era's real format),
so the demo shows what xenaudit says about realistic guests. Run it again
after changing the fleet: `python scripts/build_demo_fleet.py`.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from datetime import datetime
from pathlib import Path

FLEET = Path(__file__).resolve().parent.parent / "xenaudit" / "demo" / "fleet"
HOST = "xen-demo"
COLLECTED_AT = "2026-11-25T02:31:07Z"

MEMINFO_ORDER = [
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SwapCached",
    "Active",
    "Inactive",
    "Active(anon)",
    "Inactive(anon)",
    "Active(file)",
    "Inactive(file)",
    "Unevictable",
    "Mlocked",
    "SwapTotal",
    "SwapFree",
    "Dirty",
    "Writeback",
    "AnonPages",
    "Mapped",
    "Shmem",
    "KReclaimable",
    "Slab",
    "SReclaimable",
    "SUnreclaim",
    "KernelStack",
    "PageTables",
    "NFS_Unstable",
    "Bounce",
    "WritebackTmp",
    "CommitLimit",
    "Committed_AS",
    "VmallocTotal",
    "VmallocUsed",
    "VmallocChunk",
    "Percpu",
    "HardwareCorrupted",
    "AnonHugePages",
    "HugePages_Total",
    "HugePages_Free",
    "HugePages_Rsvd",
    "HugePages_Surp",
    "Hugepagesize",
    "DirectMap4k",
    "DirectMap2M",
]


def meminfo(values: dict[str, int], era: str = "modern") -> str:
    lines = []
    for key in MEMINFO_ORDER:
        if key not in values:
            continue
        if key.startswith("HugePages_"):
            lines.append(f"{key + ':':<16}{values[key]:>8}")
        else:
            lines.append(f"{key + ':':<16}{values[key]:>8} kB")
    return "\n".join(lines) + "\n"


def mem(
    total: int,
    free: int,
    available: int,
    cached: int,
    swap_total: int,
    swap_free: int,
    sunreclaim: int,
    shmem: int = 4000,
    extra: dict[str, int] | None = None,
) -> dict[str, int]:
    buffers = max(2048, cached // 12)
    anon = total - free - cached - buffers - sunreclaim - 30000
    values = {
        "MemTotal": total,
        "MemFree": free,
        "MemAvailable": available,
        "Buffers": buffers,
        "Cached": cached,
        "SwapCached": (swap_total - swap_free) // 25,
        "Active": anon * 2 // 3 + cached // 2,
        "Inactive": anon // 3 + cached // 2,
        "Active(anon)": anon * 2 // 3,
        "Inactive(anon)": anon // 3,
        "Active(file)": cached // 2,
        "Inactive(file)": cached - cached // 2,
        "Unevictable": 0,
        "Mlocked": 0,
        "SwapTotal": swap_total,
        "SwapFree": swap_free,
        "Dirty": 212,
        "Writeback": 0,
        "AnonPages": anon,
        "Mapped": cached // 5,
        "Shmem": shmem,
        "KReclaimable": sunreclaim // 2,
        "Slab": sunreclaim + sunreclaim // 2,
        "SReclaimable": sunreclaim // 2,
        "SUnreclaim": sunreclaim,
        "KernelStack": 3456,
        "PageTables": anon // 90,
        "NFS_Unstable": 0,
        "Bounce": 0,
        "WritebackTmp": 0,
        "CommitLimit": total // 2 + swap_total,
        "Committed_AS": anon * 2,
        "VmallocTotal": 34359738367,
        "VmallocUsed": 0,
        "VmallocChunk": 0,
        "Percpu": 912,
        "HardwareCorrupted": 0,
        "AnonHugePages": 0,
        "HugePages_Total": 0,
        "HugePages_Free": 0,
        "HugePages_Rsvd": 0,
        "HugePages_Surp": 0,
        "Hugepagesize": 2048,
        "DirectMap4k": total + 40000,
        "DirectMap2M": 0,
    }
    values.update(extra or {})
    return values


def buddyinfo(zones: list[tuple[str, list[int]]]) -> str:
    out = []
    for zone, blocks in zones:
        out.append(f"Node 0, zone {zone:>8} " + " ".join(f"{b:6d}" for b in blocks) + " ")
    return "\n".join(out) + "\n"


def buddy_free_kib(zones: list[tuple[str, list[int]]]) -> int:
    return sum(b * 4 * (2**k) for _, blocks in zones for k, b in enumerate(blocks))


def vmstat(counters: dict[str, int]) -> str:
    return "".join(f"{k} {v}\n" for k, v in counters.items())


def base_vmstat(free_pages: int, pswpin: int, pswpout: int, majflt: int, extra=None) -> dict:
    counters = {
        "nr_free_pages": free_pages,
        "nr_zone_inactive_anon": 21012,
        "nr_zone_active_anon": 52001,
        "nr_zone_inactive_file": 20411,
        "nr_zone_active_file": 18221,
        "nr_mlock": 0,
        "nr_bounce": 0,
        "nr_free_cma": 0,
        "pgpgin": 12002214,
        "pgpgout": 40122310,
        "pswpin": pswpin,
        "pswpout": pswpout,
        "pgalloc_dma": 21012,
        "pgalloc_dma32": 912002311,
        "pgalloc_normal": 0,
        "pgfree": 913212311,
        "pgactivate": 2201231,
        "pgdeactivate": 1201233,
        "pgfault": 401223112,
        "pgmajfault": majflt,
        "pgsteal_kswapd": 8212331,
        "pgsteal_direct": 120331,
        "pgscan_kswapd": 9012331,
        "pgscan_direct": 140221,
        "allocstall_normal": 0,
        "allocstall_dma32": 1201,
        "compact_stall": 81,
        "compact_fail": 12,
        "compact_success": 69,
    }
    counters.update(extra or {})
    return counters


def sysvm(min_free: int, swappiness: int = 60, extra=None, drop: tuple[str, ...] = ()) -> str:
    values = {
        "admin_reserve_kbytes": 8192,
        "compact_unevictable_allowed": 1,
        "dirty_background_ratio": 10,
        "dirty_ratio": 20,
        "drop_caches": 0,
        "extfrag_threshold": 500,
        "lowmem_reserve_ratio": "256\t256\t32\t0\t0",
        "min_free_kbytes": min_free,
        "overcommit_kbytes": 0,
        "overcommit_memory": 0,
        "overcommit_ratio": 50,
        "panic_on_oom": 0,
        "swappiness": swappiness,
        "vfs_cache_pressure": 100,
        "watermark_scale_factor": 10,
    }
    values.update(extra or {})
    return "".join(f"{k}={v}\n" for k, v in sorted(values.items()) if k not in drop)


def ps(rows: list[tuple[int, str, int, int]]) -> str:
    out = ["    PID COMMAND           RSS    VSZ"]
    for pid, comm, rss, vsz in sorted(rows, key=lambda r: -r[2]):
        out.append(f"{pid:>7} {comm:<15} {rss:>6} {vsz:>6}")
    return "\n".join(out) + "\n"


def psi(some: tuple[float, float, float, int], full: tuple[float, float, float, int]) -> str:
    def line(kind: str, v: tuple[float, float, float, int]) -> str:
        return f"{kind} avg10={v[0]:.2f} avg60={v[1]:.2f} avg300={v[2]:.2f} total={v[3]}"

    return line("some", some) + "\n" + line("full", full) + "\n"


SLAB_HEADER = (
    "slabinfo - version: 2.1\n"
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
    " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs>"
    " <sharedavail>\n"
)


def slabinfo(caches: list[tuple[str, int, int, int]]) -> str:
    out = [SLAB_HEADER.rstrip("\n")]
    for name, objs, size, perslab in caches:
        slabs = math.ceil(objs / perslab)
        out.append(
            f"{name:<17} {objs:>6} {objs:>6} {size:>6} {perslab:>4} {1 if size < 2048 else 2:>4}"
            f" : tunables    0    0    0 : slabdata {slabs:>6} {slabs:>6}      0"
        )
    return "\n".join(out) + "\n"


# --- kernel logs ---------------------------------------------------------------


def el6_swapper_failure(ts: float, pid: int = 0) -> list[str]:
    """A 2.6.32 (RHEL/CentOS 6) GFP_ATOMIC order-0 failure in netfront's receive path."""
    lines = [
        "swapper: page allocation failure. order:0, mode:0x20",
        f"Pid: {pid}, comm: swapper Not tainted 2.6.32-754.35.1.el6.x86_64 #1",
        "Call Trace:",
        " <IRQ>  [<ffffffff8113114a>] ? __alloc_pages_nodemask+0x74a/0x8d0",
        " [<ffffffff8117d2e2>] ? alloc_pages_current+0xaa/0x110",
        " [<ffffffffa0025c31>] ? xennet_alloc_rx_buffers+0x81/0x310 [xen_netfront]",
        " [<ffffffffa0026b2f>] ? xennet_poll+0x8bf/0xc00 [xen_netfront]",
        " [<ffffffff81469ec3>] ? net_rx_action+0x103/0x2f0",
        " [<ffffffff8107d931>] ? __do_softirq+0xc1/0x1e0",
        " [<ffffffff8100c38c>] ? call_softirq+0x1c/0x30",
        " [<ffffffff8100fa75>] ? do_softirq+0x65/0xa0",
        " [<ffffffff8107d7e5>] ? irq_exit+0x85/0x90",
        " [<ffffffff8134fcb5>] ? xen_evtchn_do_upcall+0x35/0x50",
        " [<ffffffff8100c3ee>] ? xen_do_hypervisor_callback+0x1e/0x30",
        " <EOI>  [<ffffffff810013aa>] ? xen_hypercall_sched_op+0xa/0x20",
        " [<ffffffff81009e2d>] ? xen_safe_halt+0x1d/0x30",
        " [<ffffffff81016bed>] ? default_idle+0x4d/0xb0",
        " [<ffffffff81009fc6>] ? cpu_idle+0xb6/0x110",
        "Mem-Info:",
        "Node 0 DMA per-cpu:",
        "CPU    0: hi:    0, btch:   1 usd:   0",
        "Node 0 DMA32 per-cpu:",
        "CPU    0: hi:  186, btch:  31 usd: 172",
        "active_anon:61923 inactive_anon:20644 isolated_anon:0",
        " active_file:14921 inactive_file:15022 isolated_file:0",
        " unevictable:0 dirty:41 writeback:0 unstable:0",
        " free:709 slab_reclaimable:4411 slab_unreclaimable:4702",
        " mapped:5012 shmem:525 pagetables:1840 bounce:0",
        "Node 0 DMA free:1424kB min:88kB low:108kB high:132kB active_anon:3212kB "
        "inactive_anon:1120kB active_file:1512kB inactive_file:1640kB unevictable:0kB "
        "isolated(anon):0kB isolated(file):0kB present:15324kB mlocked:0kB dirty:0kB "
        "writeback:0kB mapped:12kB shmem:0kB slab_reclaimable:120kB slab_unreclaimable:96kB "
        "kernel_stack:0kB pagetables:8kB unstable:0kB bounce:0kB writeback_tmp:0kB "
        "pages_scanned:0 all_unreclaimable? no",
        "lowmem_reserve[]: 0 489 489 489",
        "Node 0 DMA32 free:1412kB min:2744kB low:3428kB high:4116kB active_anon:244480kB "
        "inactive_anon:81456kB active_file:58172kB inactive_file:58448kB unevictable:0kB "
        "isolated(anon):0kB isolated(file):0kB present:500960kB mlocked:0kB dirty:164kB "
        "writeback:0kB mapped:20036kB shmem:2100kB slab_reclaimable:17524kB "
        "slab_unreclaimable:18712kB kernel_stack:1320kB pagetables:7352kB unstable:0kB "
        "bounce:0kB writeback_tmp:0kB pages_scanned:0 all_unreclaimable? no",
        "lowmem_reserve[]: 0 0 0 0",
        "Node 0 DMA: 2*4kB 3*8kB 2*16kB 1*32kB 1*64kB 0*128kB 1*256kB 0*512kB 1*1024kB "
        "0*2048kB 0*4096kB = 1424kB",
        "Node 0 DMA32: 187*4kB 61*8kB 9*16kB 2*32kB 0*64kB 0*128kB 0*256kB 0*512kB 0*1024kB "
        "0*2048kB 0*4096kB = 1444kB",
        "30561 total pagecache pages",
        "1046 pages in swap cache",
        "Swap cache stats: add 26214, delete 25168, find 9012/11203",
        "Free swap  = 943716kB",
        "Total swap = 1048572kB",
        "131072 pages RAM",
        "5522 pages reserved",
        "24617 pages shared",
        "111254 pages non-shared",
    ]
    return [f"[{ts:12.6f}] {line}" for line in lines]


def web_frontend_kernlog() -> str:
    boot = [
        "Initializing cgroup subsys cpuset",
        "Initializing cgroup subsys cpu",
        "Linux version 2.6.32-754.35.1.el6.x86_64 (mockbuild@x86-01.bsys.centos.org) "
        "(gcc version 4.4.7 20120313 (Red Hat 4.4.7-23) (GCC) ) #1 SMP Sat Nov 7 12:42:14 UTC 2020",
        "Command line: ro root=/dev/xvda1 console=hvc0 crashkernel=auto",
        "Xen: 0000000000000000 - 00000000000a0000 (usable)",
        "Xen: 00000000000a0000 - 0000000000100000 (reserved)",
        "Xen: 0000000000100000 - 0000000020000000 (usable)",
        "Booting paravirtualized kernel on Xen",
        "Xen version: 4.17.2 (preserve-AD)",
        "Memory: 486912k/524288k available (5447k kernel code, 448k absent, 36928k reserved, "
        "7104k data, 1300k init)",
        "xen_balloon: Initialising balloon driver.",
        "blkfront: xvda: barrier: enabled",
        "Initialising Xen virtual ethernet driver.",
        "EXT4-fs (xvda1): mounted filesystem with ordered data mode. Opts: ",
        "Adding 1048572k swap on /dev/xvda2.  Priority:-1 extents:1 across:1048572k SSD",
        "NET: Registered protocol family 10",
        "eth0: no IPv6 routers present",
    ]
    lines = [f"[{0.1 * i:12.6f}] {text}" for i, text in enumerate(boot)]
    lines.append(
        "[ 5123.774120] httpd[23112]: segfault at 0 ip 00007f5a2b1c2d3e sp 00007ffd1b2c3d40 "
        "error 4 in mod_php5.so[7f5a2b000000+3b2000]"
    )
    for ts in (86012.441203, 86012.452877, 171233.012991, 259801.667310, 344120.901224):
        lines.extend(el6_swapper_failure(ts))
    lines.append("[344121.003311] __ratelimit: 14 callbacks suppressed")
    return "\n".join(lines) + "\n"


def db_primary_kernlog() -> str:
    pre = [
        "[    0.000000] Linux version 5.10.0-26-amd64 (debian-kernel@lists.debian.org) "
        "(gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) "
        "#1 SMP Debian 5.10.197-1 (2023-09-29)",
        "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-5.10.0-26-amd64 root=/dev/xvda1 ro quiet",
        "[    0.000000] Booting paravirtualized kernel on Xen PVH",
        "[    0.412331] xen:balloon: Initialising balloon driver",
        "[    1.902114] EXT4-fs (xvda1): mounted filesystem with ordered data mode. Opts: (null)",
        "[    2.110234] Adding 1048572k swap on /dev/xvda2.  Priority:-2 extents:1 across:1048572k SSFS",
    ]
    out = list(pre)
    for ts, victim_pid, anon, shmem in (
        (61234.1, 2231, 912344, 120032),
        (148811.7, 3310, 948120, 121008),
    ):

        def t(offset: float, ts: float = ts) -> str:
            return f"[{ts + offset:12.6f}]"

        out += [
            f"{t(0)} postgres invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), "
            "order=0, oom_score_adj=0",
            f"{t(0)} CPU: 1 PID: 4120 Comm: postgres Not tainted 5.10.0-26-amd64 #1 Debian 5.10.197-1",
            f"{t(0)} Call Trace:",
            f"{t(0)}  dump_stack+0x6b/0x83",
            f"{t(0)}  dump_header+0x4a/0x1f4",
            f"{t(0)}  oom_kill_process.cold+0xb/0x10",
            f"{t(0)}  out_of_memory+0x1bd/0x4e0",
            f"{t(0)}  __alloc_pages_slowpath.constprop.0+0xcc8/0xd90",
            f"{t(0)}  __alloc_pages_nodemask+0x2de/0x310",
            f"{t(0)}  pagecache_get_page+0x175/0x390",
            f"{t(0)}  filemap_fault+0x6a2/0x900",
            f"{t(0)} Mem-Info:",
            f"{t(0)} active_anon:228012 inactive_anon:201223 isolated_anon:0",
            f"{t(0)}  active_file:312 inactive_file:402 isolated_file:0",
            f"{t(0)}  unevictable:0 dirty:0 writeback:0",
            f"{t(0)}  slab_reclaimable:5012 slab_unreclaimable:9311",
            f"{t(0)}  mapped:31022 shmem:30120 pagetables:3121 bounce:0",
            f"{t(0)}  free:3313 free_pcp:122 free_cma:0",
            f"{t(0)} Node 0 DMA32: 512*4kB (UME) 301*8kB (UME) 120*16kB (UME) 41*32kB (UM) "
            "12*64kB (UM) 3*128kB (U) 1*256kB (U) 0*512kB 0*1024kB 0*2048kB 0*4096kB = 9624kB",
            f"{t(0)} Free swap  = 0kB",
            f"{t(0)} Total swap = 1048572kB",
            f"{t(0)} Tasks state (memory values in pages):",
            f"{t(0)} [  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
            f"{t(0)} [   {victim_pid}]   106  {victim_pid}   331139   258094  2170880    51211             0 postgres",
            f"{t(0)} oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
            f"global_oom,task_memcg=/system.slice/system-postgresql.slice/postgresql@13-main.service,"
            f"task=postgres,pid={victim_pid},uid=106",
            f"{t(0.01)} Out of memory: Killed process {victim_pid} (postgres) total-vm:1324556kB, "
            f"anon-rss:{anon}kB, file-rss:4kB, shmem-rss:{shmem}kB, UID:106 pgtables:2120kB "
            "oom_score_adj:0",
            f"{t(0.08)} oom_reaper: reaped process {victim_pid} (postgres), now anon-rss:0kB, "
            f"file-rss:0kB, shmem-rss:{shmem}kB",
        ]
    return "\n".join(out) + "\n"


def cache_node_kernlog() -> str:
    out = [
        "[    0.000000] Linux version 4.15.0-213-generic (buildd@lcy02-amd64-079) (gcc version "
        "7.5.0 (Ubuntu 7.5.0-3ubuntu1~18.04)) #224-Ubuntu SMP Mon Jun 19 13:30:12 UTC 2023 "
        "(Ubuntu 4.15.0-213.224-generic 4.15.18)",
        "[    0.000000] Booting paravirtualized kernel on Xen",
        "[    0.521002] xen:balloon: Initialising balloon driver",
        "[    2.661203] xen_netfront: Initialising Xen virtual ethernet driver",
        "[    9.120331] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready",
    ]
    failures = [
        (40213.552, "memcached", 4, "0x14040c0(GFP_KERNEL|__GFP_COMP)", 1811),
        (40213.561, "kworker/u4:2", 2, "0x1480020(GFP_ATOMIC|__GFP_COMP)", 30122),
        (127755.009, "memcached", 4, "0x14040c0(GFP_KERNEL|__GFP_COMP)", 1811),
        (213990.482, "memcached", 3, "0x14040c0(GFP_KERNEL|__GFP_COMP)", 1811),
    ]
    for ts, proc, order, mode, pid in failures:
        t = f"[{ts:12.6f}]"
        out += [
            f"{t} {proc}: page allocation failure: order:{order}, mode:{mode}, nodemask=(null)",
            f"{t} {proc} cpuset=/ mems_allowed=0",
            f"{t} CPU: 0 PID: {pid} Comm: {proc} Not tainted 4.15.0-213-generic #224-Ubuntu",
            f"{t} Call Trace:",
            f"{t}  dump_stack+0x6d/0x8b",
            f"{t}  warn_alloc+0xff/0x1a0",
            f"{t}  __alloc_pages_slowpath+0xdc5/0xe00",
            f"{t}  __alloc_pages_nodemask+0x29a/0x2c0",
            f"{t}  kmalloc_order+0x1c/0x40"
            if order >= 3
            else f"{t}  __netdev_alloc_skb+0x72/0x100",
            f"{t}  kmalloc_order_trace+0x24/0xb0"
            if order >= 3
            else f"{t}  xennet_poll+0x5b7/0xa90 [xen_netfront]",
            f"{t}  __kmalloc+0x1e6/0x220" if order >= 3 else f"{t}  net_rx_action+0x140/0x3a0",
            f"{t} Mem-Info:",
            f"{t} active_anon:96021 inactive_anon:12033 isolated_anon:0",
            f"{t}  active_file:51223 inactive_file:49112 isolated_file:0",
            f"{t}  unevictable:0 dirty:211 writeback:0 unstable:0",
            f"{t}  slab_reclaimable:9120 slab_unreclaimable:11022",
            f"{t}  mapped:12011 shmem:1201 pagetables:1102 bounce:0",
            f"{t}  free:18102 free_pcp:301 free_cma:0",
            f"{t} Node 0 DMA: 1*4kB (U) 2*8kB (UM) 1*16kB (M) 0*32kB 1*64kB (U) 1*128kB (U) "
            "1*256kB (U) 0*512kB 1*1024kB (U) 1*2048kB (M) 0*4096kB = 3556kB",
            f"{t} Node 0 DMA32: 8311*4kB (UME) 4102*8kB (UME) 301*16kB (UME) 0*32kB 0*64kB "
            "0*128kB 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 70876kB",
        ]
    out.append("[213990.502113] warn_alloc: 3 callbacks suppressed")
    return "\n".join(out) + "\n"


def storm_proxy_kernlog() -> str:
    """A 4-vCPU proxy: GFP_ATOMIC order-0 failures on several CPUs at once, interleaved.

    Linux 5.10 prints the failure header with pr_cont pieces (",cpuset=/",
    ",mems_allowed=0") and the buddy lists piece by piece, so reports from
    different CPUs interleave in the ring buffer: a header's tail lands on a
    line of its own, and one report cuts another's buddy list in two.
    """
    boot = [
        "[    0.000000] Linux version 5.10.0-26-amd64 (debian-kernel@lists.debian.org) "
        "(gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) "
        "#1 SMP Debian 5.10.197-1 (2023-09-29)",
        "[    0.000000] Booting paravirtualized kernel on Xen",
        "[    0.000000] setup_percpu: NR_CPUS:8192 nr_cpumask_bits:4 nr_cpu_ids:4 nr_node_ids:1",
        "[    0.401223] xen:balloon: Initialising balloon driver",
        "[    1.820331] xen_netfront: Initialising Xen virtual ethernet driver",
    ]

    def trace(ts: str, cpu: int, pid: int, comm: str) -> list[str]:
        return [
            f"[{ts}] CPU: {cpu} PID: {pid} Comm: {comm} Not tainted 5.10.0-26-amd64 #1 "
            "Debian 5.10.197-1",
            f"[{ts}] Call Trace:",
            f"[{ts}]  <IRQ>",
            f"[{ts}]  dump_stack+0x6b/0x83",
            f"[{ts}]  warn_alloc.cold+0x7b/0xdf",
            f"[{ts}]  __alloc_pages_slowpath.constprop.0+0xd06/0xd90",
            f"[{ts}]  __alloc_pages_nodemask+0x2de/0x310",
            f"[{ts}]  page_frag_alloc+0x13e/0x170",
            f"[{ts}]  __netdev_alloc_skb+0x108/0x170",
            f"[{ts}]  xennet_alloc_rx_buffers+0x8a/0x1f0 [xen_netfront]",
            f"[{ts}]  xennet_poll+0x9e0/0xc70 [xen_netfront]",
            f"[{ts}]  net_rx_action+0x145/0x3e0",
            f"[{ts}]  __do_softirq+0xc5/0x279",
            f"[{ts}]  </IRQ>",
        ]

    header = "page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), nodemask=(null)"
    tail = ",cpuset=/,mems_allowed=0"
    meminfo_lines = [
        "Mem-Info:",
        "active_anon:41203 inactive_anon:30122 isolated_anon:0",
        " active_file:61220 inactive_file:58120 isolated_file:0",
        " unevictable:0 dirty:201 writeback:0",
        " slab_reclaimable:9120 slab_unreclaimable:12011",
        " mapped:12011 shmem:812 pagetables:1203 bounce:0",
        " free:1120 free_pcp:203 free_cma:0",
    ]
    out = list(boot)
    # A burst at 14:02 (uptime 51 203 s): CPUs 1 and 3 interleave line by line.
    ts = "51203.{:06d}"
    out += [
        f"[{ts.format(441203)}] haproxy: {header}",
        f"[{ts.format(441207)}] swapper/3: {header}",
        f"[{ts.format(441209)}] {tail}",
        f"[{ts.format(441211)}] {tail}",
    ]
    one = trace(ts.format(441220), 1, 1187, "haproxy")
    three = trace(ts.format(441222), 3, 0, "swapper/3")
    for a, b in zip(one, three, strict=True):
        out += [a, b]
    out += [f"[{ts.format(441290)}] {line}" for line in meminfo_lines]
    # CPU 2's report cuts CPU 1's buddy list in two (pr_cont pieces flushed apart).
    out += [
        f"[{ts.format(441301)}] Node 0 DMA32: 187*4kB (UME) 61*8kB (UME) 9*16kB (UME) 2*32kB (UM)",
        f"[{ts.format(441302)}] ksoftirqd/2: {header}",
        f"[{ts.format(441305)}] 0*64kB 0*128kB 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 1444kB",
        f"[{ts.format(441306)}] {tail}",
    ]
    out += trace(ts.format(441320), 2, 24, "ksoftirqd/2")
    # CPU 0: a header whose process name was lost to another CPU's line; its
    # "CPU: 0 PID: 0 Comm: swapper/0" line names it.
    out += [
        f"[{ts.format(441401)}] : {header}{tail}",
    ]
    out += trace(ts.format(441402), 0, 0, "swapper/0")
    out += [f"[{ts.format(441460)}] {line}" for line in meminfo_lines]
    out.append("[51203.452113] warn_alloc: 37 callbacks suppressed")
    # The same burst pattern a second later on CPUs 1 and 3 again.
    ts2 = "51204.{:06d}"
    out += [f"[{ts2.format(1203)}] haproxy: {header}{tail}"]
    out += trace(ts2.format(1210), 1, 1187, "haproxy")
    out += [f"[{ts2.format(1290)}] {line}" for line in meminfo_lines]
    out.append("[51204.011220] warn_alloc: 12 callbacks suppressed")
    return "\n".join(out) + "\n"


def quiet_kernlog(version_line: str, extra: list[str] | None = None) -> str:
    out = [
        f"[    0.000000] {version_line}",
        "[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root=/dev/xvda1 ro quiet",
        "[    0.443120] xen:balloon: Initialising balloon driver",
        "[    2.001231] EXT4-fs (xvda1): mounted filesystem with ordered data mode. Quota mode: none.",
        "[    3.120334] NET: Registered PF_INET6 protocol family",
    ]
    out += extra or []
    return "\n".join(out) + "\n"


# --- the fleet -----------------------------------------------------------------


#: Tonight's cumulative counters and memory per guest, so the history's nights lead up to them.
TONIGHT: dict[str, dict[str, int]] = {}


def _record_tonight(name: str, sections: dict[str, str]) -> None:
    values: dict[str, int] = {}
    for line in sections.get("vmstat", "").splitlines():
        key, _, number = line.partition(" ")
        if number.strip().isdigit():
            values[key] = int(number)
    for line in sections.get("psi_memory", "").splitlines():
        kind, *fields = line.split()
        for field in fields:
            if field.startswith("total="):
                values[f"psi_{kind}_total_us"] = int(field[6:])
    for line in sections.get("meminfo", "").splitlines():
        key, _, rest = line.partition(":")
        number = rest.split()[0] if rest.split() else ""
        if number.isdigit():
            values[f"mem_{key}"] = int(number)
    if "uname" in sections:
        values["boot_time"] = boot_time(sections)
    TONIGHT[name] = values


def write_guest(
    name: str,
    domid: int,
    status: str,
    sections: dict[str, str],
    *,
    error: str | None = None,
    kernlog_source: str | None = "dmesg",
    section_status: dict[str, str] | None = None,
    host: str = HOST,
) -> None:
    folder = FLEET / name
    folder.mkdir(parents=True)
    _record_tonight(name, sections)
    statuses = {name: "ok" for name in sections}
    statuses.update(section_status or {})
    if "uname" in sections:
        sections = {**sections, "uname": sections["uname"] + f"4096\nbtime {boot_time(sections)}\n"}
    for section, text in sections.items():
        (folder / section).write_text(text, encoding="utf-8")
    meta = {
        "domain": name,
        "host": host,
        "status": status,
        "collected_at": COLLECTED_AT,
        "error": error,
        "section_status": statuses,
        "kernlog_source": kernlog_source if "kernlog" in sections else None,
        "host_key_fingerprint": None,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def boot_time(sections: dict[str, str]) -> int:
    """A boot time that puts the guest's last kernel-log line a little over two days ago."""
    collected = int(datetime.fromisoformat(COLLECTED_AT.replace("Z", "+00:00")).timestamp())
    stamps = [
        float(m) for m in re.findall(r"^\[\s*(\d+\.\d+)\]", sections.get("kernlog", ""), re.M)
    ]
    uptime = (max(stamps) if stamps else 0) + 2 * 86400 + 5 * 3600
    return collected - int(uptime)


def min_free_default(total_kib: int) -> int:
    return max(128, min(65536, int(math.sqrt(total_kib * 16))))


def build_guests() -> None:
    # 1. The classic case: CentOS 6, 512 MiB, GFP_ATOMIC order-0 failures in netfront.
    zones = [
        ("DMA", [5, 4, 4, 3, 2, 2, 1, 1, 1, 1, 0]),
        ("DMA32", [1490, 610, 110, 12, 2, 0, 0, 0, 0, 0, 0]),
    ]
    total = 502168
    write_guest(
        "web-frontend",
        3,
        "ok",
        {
            "meminfo": meminfo(
                mem(
                    total,
                    buddy_free_kib(zones) + 870,
                    128436,
                    101380,
                    1048572,
                    943716,
                    18712,
                    shmem=2100,
                )
            ),
            "buddyinfo": buddyinfo(zones),
            "vmstat": vmstat(base_vmstat(4603, 18234, 40211, 51234)),
            "slabinfo": slabinfo(
                [
                    ("size-1024", 4120, 1024, 4),
                    ("dentry", 40211, 192, 20),
                    ("skbuff_head_cache", 9120, 256, 15),
                    ("buffer_head", 30122, 104, 37),
                    ("ext4_inode_cache", 8012, 1000, 4),
                ]
            ),
            "sysvm": sysvm(
                min_free_default(total),
                drop=("watermark_scale_factor", "compact_unevictable_allowed"),
            ),
            "ps": ps(
                [(1201, "haproxy", 24120, 61220)]
                + [(2300 + i, "httpd", 21000 + 311 * i, 412300) for i in range(12)]
                + [
                    (1102, "memcached", 66120, 331000),
                    (998, "rsyslogd", 3120, 249120),
                    (1001, "sshd", 1220, 66120),
                    (1, "init", 812, 19312),
                ]
            ),
            "kernlog": web_frontend_kernlog(),
            "balloon": "target_kb=524288\ncurrent_kb=524288\n",
            "uname": "2.6.32-754.35.1.el6.x86_64\n",
        },
        section_status={"psi_memory": "missing"},
    )

    # 2. OOM kills: PVH database guest, swap full, PSI stalls.
    zones = [
        ("DMA", [0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0]),
        ("DMA32", [812, 401, 130, 41, 12, 3, 1, 0, 0, 0, 0]),
    ]
    total = 2012884
    write_guest(
        "db-primary",
        5,
        "ok",
        {
            "meminfo": meminfo(
                mem(
                    total,
                    buddy_free_kib(zones) + 1100,
                    96240,
                    61210,
                    1048572,
                    221004,
                    38120,
                    shmem=121300,
                )
            ),
            "buddyinfo": buddyinfo(zones),
            "vmstat": vmstat(
                base_vmstat(
                    4500,
                    912345,
                    1401223,
                    712331,
                    {
                        "oom_kill": 2,
                        "workingset_refault_anon": 210331,
                        "workingset_refault_file": 512331,
                    },
                )
            ),
            "psi_memory": psi((23.51, 18.92, 12.10, 912331221), (9.80, 7.41, 4.02, 401223112)),
            "slabinfo": slabinfo(
                [
                    ("kmalloc-512", 9120, 512, 16),
                    ("dentry", 60211, 192, 21),
                    ("inode_cache", 12011, 600, 13),
                ]
            ),
            "sysvm": sysvm(min_free_default(total), swappiness=60),
            "ps": ps(
                [
                    (3310, "postgres", 702331, 1324556),
                    (3401, "postgres", 131201, 1302110),
                    (3402, "postgres", 98120, 1301220),
                    (3403, "postgres", 61200, 1300110),
                    (801, "pgbouncer", 8120, 31220),
                    (612, "systemd-journal", 21020, 81220),
                    (1, "systemd", 9120, 167220),
                ]
            ),
            "kernlog": db_primary_kernlog(),
            "balloon": "target_kb=2097152\ncurrent_kb=2097152\n",
            "uname": "5.10.0-26-amd64\n",
        },
    )

    # 3. Over-provisioned: a build runner that rarely uses a third of its memory.
    zones = [
        ("DMA", [1, 1, 0, 1, 2, 1, 1, 0, 1, 1, 3]),
        ("DMA32", [2011, 1203, 611, 301, 120, 61, 30, 12, 8, 4, 402]),
        ("Normal", [4012, 2301, 1201, 611, 301, 151, 80, 41, 20, 10, 480]),
    ]
    total = 6179032
    write_guest(
        "build-runner",
        7,
        "ok",
        {
            "meminfo": meminfo(
                mem(total, buddy_free_kib(zones), 4929310, 1612331, 2097148, 2097148, 41203)
            ),
            "buddyinfo": buddyinfo(zones),
            "vmstat": vmstat(base_vmstat(900000, 0, 0, 12011, {"oom_kill": 0})),
            "psi_memory": psi((0.0, 0.0, 0.0, 120331), (0.0, 0.0, 0.0, 80221)),
            "slabinfo": slabinfo(
                [("dentry", 120331, 192, 21), ("ext4_inode_cache", 60211, 1080, 30)]
            ),
            "sysvm": sysvm(min_free_default(total)),
            "ps": ps(
                [
                    (2011, "java", 612331, 4120331),
                    (2301, "dockerd", 81220, 1912331),
                    (2302, "containerd", 51203, 1512331),
                    (1, "systemd", 12011, 167331),
                ]
            ),
            "kernlog": quiet_kernlog(
                "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) "
                "(gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for "
                "Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"
            ),
            "balloon": "target_kb=6291456\ncurrent_kb=6291456\n",
            "uname": "6.1.0-18-amd64\n",
        },
    )

    # 4. Fragmentation: high-order failures while free memory sits in order 0-2 blocks.
    zones = [
        ("DMA", [1, 2, 1, 0, 1, 1, 1, 0, 1, 1, 0]),
        ("DMA32", [8311, 4102, 301, 0, 0, 0, 0, 0, 0, 0, 0]),
    ]
    total = 1004524
    write_guest(
        "cache-node",
        9,
        "ok",
        {
            "meminfo": meminfo(
                mem(total, buddy_free_kib(zones) + 1204, 402113, 301224, 1048572, 1031204, 44088)
            ),
            "buddyinfo": buddyinfo(zones),
            "vmstat": vmstat(
                base_vmstat(
                    18800,
                    1203,
                    4411,
                    20331,
                    {
                        "oom_kill": 0,
                        "compact_stall": 1203,
                        "compact_fail": 1011,
                        "compact_success": 192,
                    },
                )
            ),
            "psi_memory": psi((0.40, 0.31, 0.22, 4120331), (0.10, 0.08, 0.05, 1203311)),
            "slabinfo": slabinfo(
                [
                    ("kmalloc-8192", 2011, 8192, 4),
                    ("kmalloc-4096", 4012, 4096, 8),
                    ("skbuff_head_cache", 12011, 256, 16),
                    ("dentry", 30211, 192, 21),
                ]
            ),
            "sysvm": sysvm(min_free_default(total), extra={"extfrag_threshold": 500}),
            "ps": ps(
                [
                    (1811, "memcached", 402331, 1120331),
                    (1203, "nginx", 21203, 141220),
                    (1204, "nginx", 20331, 141220),
                    (1, "systemd", 9120, 160331),
                ]
            ),
            "kernlog": cache_node_kernlog(),
            "balloon": "target_kb=1048576\ncurrent_kb=1048576\n",
            "uname": "4.15.0-213-generic\n",
        },
    )

    # 5. HVM with maxmem > memory and no balloon driver: the guest believes it has 2 GiB
    #    while Xen backs 1 GiB (populate-on-demand), and it has touched 92% of that GiB.
    zones = [
        ("DMA", [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 2]),
        ("DMA32", [1201, 812, 401, 211, 120, 61, 30, 15, 8, 4, 219]),
        ("Normal", [301, 201, 120, 61, 30, 12, 8, 4, 2, 1, 12]),
    ]
    total = 2011220
    write_guest(
        "legacy-hvm",
        11,
        "ok",
        {
            "meminfo": meminfo(mem(total, buddy_free_kib(zones), 1381220, 512331, 0, 0, 21203)),
            "buddyinfo": buddyinfo(zones),
            "vmstat": vmstat(base_vmstat(290000, 0, 0, 3011, {"oom_kill": 0})),
            "psi_memory": psi((0.0, 0.0, 0.0, 12011), (0.0, 0.0, 0.0, 8011)),
            "slabinfo": slabinfo([("dentry", 40211, 192, 21)]),
            "sysvm": sysvm(min_free_default(total)),
            "ps": ps(
                [
                    (901, "java", 412331, 3120331),
                    (612, "systemd-journal", 12011, 81220),
                    (1, "systemd", 9120, 167220),
                ]
            ),
            "kernlog": quiet_kernlog(
                "Linux version 5.10.0-28-amd64 (debian-kernel@lists.debian.org) (gcc-10 (Debian "
                "10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) #1 SMP Debian "
                "5.10.209-2 (2024-01-31)",
                [
                    "[    0.000000] DMI: Xen HVM domU, BIOS 4.17.2 11/20/2025",
                    "[    0.000000] Hypervisor detected: Xen HVM",
                ],
            ).replace("[    0.443120] xen:balloon: Initialising balloon driver\n", ""),
            "uname": "5.10.0-28-amd64\n",
        },
        section_status={"balloon": "missing"},
    )

    # 6. Unreachable: nothing was collected.
    write_guest(
        "mail-relay",
        13,
        "unreachable",
        {},
        error="connect to mail-relay:22 failed: [Errno 113] No route to host",
        kernlog_source=None,
    )

    # 7. Healthy and right-sized.
    zones = [
        ("DMA", [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 2]),
        ("DMA32", [3011, 1812, 901, 411, 220, 101, 50, 21, 9, 4, 40]),
    ]
    total = 1000732
    write_guest(
        "monitor",
        15,
        "ok",
        {
            "meminfo": meminfo(
                mem(total, buddy_free_kib(zones), 521203, 331220, 1048572, 1040120, 31203)
            ),
            "buddyinfo": buddyinfo(zones),
            "vmstat": vmstat(base_vmstat(60000, 120, 2111, 8011, {"oom_kill": 0})),
            "psi_memory": psi((0.0, 0.01, 0.02, 231220), (0.0, 0.0, 0.0, 120331)),
            "slabinfo": slabinfo([("dentry", 50211, 192, 21)]),
            "sysvm": sysvm(min_free_default(total)),
            "ps": ps(
                [
                    (811, "prometheus", 312331, 1912331),
                    (812, "grafana", 121203, 1412331),
                    (1, "systemd", 9120, 167220),
                ]
            ),
            "kernlog": quiet_kernlog(
                "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) "
                "(gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for "
                "Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"
            ),
            "balloon": "target_kb=1048576\ncurrent_kb=1048576\n",
            "uname": "6.1.0-18-amd64\n",
        },
    )

    # 8. PCI passthrough: an HVM guest with a GPU, short of memory. Its balloon driver
    #    works, yet maxmem must stay equal to memory: libxl refuses PoD with an IOMMU.
    zones = [
        ("DMA", [0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 3]),
        ("DMA32", [1201, 601, 301, 120, 61, 30, 12, 6, 3, 1, 12]),
        ("Normal", [9120, 4011, 1203, 301, 61, 12, 3, 1, 0, 0, 0]),
    ]
    total = 3963248
    write_guest(
        "gpu-worker",
        17,
        "ok",
        {
            "meminfo": meminfo(
                mem(total, buddy_free_kib(zones) + 2048, 301220, 260331, 2097148, 1812331, 61203)
            ),
            "buddyinfo": buddyinfo(zones),
            "vmstat": vmstat(
                base_vmstat(
                    38000,
                    61203,
                    120331,
                    312331,
                    {
                        "oom_kill": 0,
                        "allocstall_normal": 4120,
                        "allocstall_dma32": 2011,
                        "pgscan_direct": 1203311,
                        "workingset_refault_anon": 41203,
                        "workingset_refault_file": 301220,
                    },
                )
            ),
            "psi_memory": psi((9.12, 7.41, 5.20, 120331221), (2.10, 1.80, 1.22, 40122331)),
            "slabinfo": slabinfo([("kmalloc-4k", 3011, 4096, 8), ("dentry", 80211, 192, 21)]),
            "sysvm": sysvm(min_free_default(total)),
            "ps": ps(
                [
                    (2120, "python3", 2412331, 9120331),
                    (2121, "python3", 612331, 4120331),
                    (1811, "nvidia-persiste", 2011, 12011),
                    (1, "systemd", 12011, 167331),
                ]
            ),
            "kernlog": quiet_kernlog(
                "Linux version 5.15.0-91-generic (buildd@lcy02-amd64-045) (gcc (Ubuntu "
                "11.4.0-1ubuntu1~22.04) 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38) "
                "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023",
                [
                    "[    0.000000] DMI: Xen HVM domU, BIOS 4.17.2 11/20/2025",
                    "[    0.000000] Hypervisor detected: Xen HVM",
                    "[    4.120331] nvidia: loading out-of-tree module taints kernel.",
                    "[    4.301220] nvidia 0000:00:05.0: enabling device (0000 -> 0003)",
                ],
            ),
            "balloon": "target_kb=4194304\ncurrent_kb=4194304\n",
            "uname": "5.15.0-91-generic\n",
        },
    )

    # 9. PVH appliance built without the balloon driver, maxmem above memory: libxl
    #    starts it in populate-on-demand mode like an HVM guest. It is calm, and would
    #    look over-provisioned if MemAvailable (measured against 2 GiB) were believed.
    zones = [
        ("DMA", [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 2]),
        ("DMA32", [2011, 1203, 601, 301, 120, 61, 30, 15, 8, 4, 340]),
    ]
    total = 2030212
    write_guest(
        "pvh-appliance",
        19,
        "ok",
        {
            "meminfo": meminfo(mem(total, buddy_free_kib(zones), 1731220, 212331, 0, 0, 18120)),
            "buddyinfo": buddyinfo(zones),
            "vmstat": vmstat(base_vmstat(360000, 0, 0, 4011, {"oom_kill": 0})),
            "psi_memory": psi((0.0, 0.0, 0.0, 20331), (0.0, 0.0, 0.0, 9120)),
            "slabinfo": slabinfo([("dentry", 30211, 192, 21)]),
            "sysvm": sysvm(min_free_default(total)),
            "ps": ps(
                [
                    (512, "nginx", 41203, 120331),
                    (610, "appliance-agent", 120331, 712331),
                    (1, "init", 1203, 4120),
                ]
            ),
            "kernlog": quiet_kernlog(
                "Linux version 6.6.31-0-virt (buildozer@build-3-20-x86_64) (gcc (Alpine "
                "13.2.1_git20240309) 13.2.1 20240309, GNU ld (GNU Binutils) 2.42) "
                "#1-Alpine SMP PREEMPT_DYNAMIC Fri, 17 May 2024 06:49:43 +0000",
                ["[    0.000000] Booting paravirtualized kernel on Xen PVH"],
            ).replace("[    0.443120] xen:balloon: Initialising balloon driver\n", ""),
            "uname": "6.6.31-0-virt\n",
        },
        section_status={"balloon": "missing"},
    )

    # 10. A 4-vCPU proxy whose CPUs failed GFP_ATOMIC allocations at the same moment: the
    #     reports interleave in the log. Calm and roomy tonight, so without the storm it
    #     would be a decrease; with it, the reserve is fixed live and nothing shrinks.
    zones = [
        ("DMA", [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 2]),
        ("DMA32", [3011, 1603, 812, 401, 201, 98, 49, 21, 11, 5, 60]),
    ]
    total = 1002748
    write_guest(
        "storm-proxy",
        21,
        "ok",
        {
            "meminfo": meminfo(
                mem(total, buddy_free_kib(zones), 631220, 402331, 1048572, 1048572, 24120)
            ),
            "buddyinfo": buddyinfo(zones),
            "vmstat": vmstat(
                base_vmstat(
                    90000,
                    0,
                    0,
                    9120,
                    {
                        "oom_kill": 0,
                        "kswapd_low_wmark_hit_quickly": 4120,
                        "kswapd_high_wmark_hit_quickly": 812,
                    },
                )
            ),
            "psi_memory": psi((0.0, 0.02, 0.03, 412331), (0.0, 0.0, 0.0, 120331)),
            "slabinfo": slabinfo(
                [("skbuff_head_cache", 20331, 256, 16), ("dentry", 30211, 192, 21)]
            ),
            "sysvm": sysvm(min_free_default(total)),
            "ps": ps(
                [
                    (1187, "haproxy", 212331, 412331),
                    (812, "rsyslogd", 8120, 220331),
                    (1, "systemd", 9120, 167220),
                ]
            ),
            "kernlog": storm_proxy_kernlog(),
            "balloon": "target_kb=1048576\ncurrent_kb=1048576\n",
            "uname": "5.10.0-26-amd64\n",
        },
    )


# name, domid, type, vcpus, target MiB, max MiB, cfg memory, cfg maxmem, state flags, cpu time
DOMAINS = [
    ("web-frontend", 3, "pv", 1, 512, 512, 512, None, "-b----", 98123.4),
    ("db-primary", 5, "pvh", 2, 2048, 2048, 2048, 2048, "-b----", 401223.9),
    ("build-runner", 7, "pv", 4, 6144, 6144, 6144, 6144, "-b----", 120331.2),
    ("cache-node", 9, "pv", 1, 1024, 1024, 1024, None, "-b----", 51203.3),
    ("legacy-hvm", 11, "hvm", 2, 1024, 2048, 1024, 2048, "-b----", 30122.0),
    ("mail-relay", 13, "pv", 1, 640, 768, 768, None, "-b----", 9012.8),
    ("monitor", 15, "pvh", 2, 1024, 1024, 1024, None, "r-----", 61220.1),
    ("gpu-worker", 17, "hvm", 4, 4096, 4096, 4096, 4096, "-b----", 201223.4),
    ("pvh-appliance", 19, "pvh", 1, 1024, 2048, 1024, 2048, "-b----", 12011.2),
    ("storm-proxy", 21, "pv", 4, 1024, 1024, 1024, None, "-b----", 88120.7),
    # A tenant's Windows guest: nobody has a login, it is judged from Dom0 alone.
    ("win-tenant", 23, "hvm", 2, 1024, 1024, 1024, 1024, "-b----", 7712.4),
]
#: Guests judged from the hypervisor side (`collect = "hypervisor"` in the demo inventory).
#: The reason is xenaudit's own (analysis/hypervisor_side.py HYPERVISOR_SIDE_REASON).
HYPERVISOR_SIDE_REASON = 'judged from the hypervisor side (collect = "hypervisor"): no login'
#: Domains with a PCI device passed through: (BDF, how libxl applied it).
PASSTHROUGH = {"gpu-worker": ("0000:81:00.0", "share_pt")}


#: 24 GiB host as `xl info` reports it (a few MiB below the nominal size).
HOST_TOTAL_MIB = 24575
DOM0_MIB = 2048
XEN_HEAP_MIB = 240


def shadow_kib(gtype: str, vcpus: int, maxmem_mib: int) -> int:
    """libxl's paging pool for HVM/PVH (Xen 4.17: 1 MiB per vCPU + 8 KiB per MiB); PV none."""
    if gtype == "pv":
        return 0
    return 4 * (256 * vcpus + 2 * maxmem_mib)


def host_free_mib() -> int:
    """What Xen has left: total − Dom0 − its own heap and frame table − what domains hold."""
    frame_table = round(HOST_TOTAL_MIB * 32 / 4096)
    held = 0
    for _name, _domid, gtype, vcpus, target, maxm, _m, _x, _state, _cpu in DOMAINS:
        extra_kib = 2048 if gtype != "pv" else 1024
        held += target + (shadow_kib(gtype, vcpus, maxm) + extra_kib) // 1024
    return HOST_TOTAL_MIB - DOM0_MIB - XEN_HEAP_MIB - frame_table - held


def uuid_for(domid: int) -> str:
    return f"6f1c{domid:04x}-2a41-4e3b-9d5c-{domid:012x}"


def build_host() -> None:
    folder = FLEET / "_hypervisor" / HOST
    folder.mkdir(parents=True)
    (folder / "host.json").write_text(
        json.dumps({"name": HOST, "backend": "xl", "collected_at": COLLECTED_AT}, indent=2) + "\n"
    )
    rows = [
        f"{'Name':<40}{'ID':>6}{'Mem':>6} VCPUs\tState\tTime(s)",
        f"{'Domain-0':<40}{0:>6}{2048:>6}{2:>6}     r-----  812331.2",
    ]
    details = []
    for name, domid, gtype, vcpus, target, maxm, _m, _x, state, cpu in DOMAINS:
        rows.append(f"{name:<40}{domid:>6}{target:>6}{vcpus:>6}     {state}{cpu:>10.1f}")
        # libxl reports the target with the video memory added back (retrieve_domain_configuration).
        target_kib = target * 1024
        b_info: dict = {
            "max_vcpus": vcpus,
            "avail_vcpus": list(range(vcpus)),
            "max_memkb": maxm * 1024,
            "target_memkb": target_kib,
            "video_memkb": 8192 if gtype == "hvm" else -1,
            "shadow_memkb": shadow_kib(gtype, vcpus, maxm),
            "sched_params": {},
            "claim_mode": "False",
        }
        if gtype == "pv":
            b_info["type.pv"] = {"bootloader": "pygrub"}
        elif gtype == "hvm":
            b_info["type.hvm"] = {"firmware": "", "bios": "rombios", "vga": {"kind": "cirrus"}}
        else:
            b_info["type.pvh"] = {"pvshim": "False"}
        details.append(
            {
                "domid": domid,
                "config": {
                    "c_info": {
                        "type": gtype,
                        "name": name,
                        "uuid": uuid_for(domid),
                        "run_hotplug_scripts": "True",
                        "passthrough": PASSTHROUGH[name][1] if name in PASSTHROUGH else "disabled",
                    },
                    "b_info": b_info,
                    "disks": [
                        {
                            "pdev_path": f"/dev/vg0/{name}-disk",
                            "vdev": "xvda",
                            "backend": "phy",
                            "format": "raw",
                            "readwrite": 1,
                        }
                    ],
                    "nics": [
                        {"devid": 0, "mac": f"00:16:3e:00:00:{domid:02x}", "bridge": "xenbr0"}
                    ],
                    "on_reboot": "restart",
                    "on_crash": "restart",
                },
            }
        )
        if name in PASSTHROUGH:
            bdf = PASSTHROUGH[name][0]
            bus, devfn = bdf.split(":")[1], bdf.split(":")[2]
            details[-1]["config"]["pcidevs"] = [
                {
                    "sbdf": int(bus, 16) << 8 | int(devfn.split(".")[0], 16) << 3,
                    "vdevfn": 40,
                    "rdm_policy": "strict",
                }
            ]
    (folder / "xl-list.txt").write_text("\n".join(rows) + "\n")
    (folder / "xl-list-l.json").write_text(json.dumps(details, indent=4) + "\n")
    info = {
        "host": HOST,
        "release": "6.1.0-27-amd64",
        "version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
        "machine": "x86_64",
        "nr_cpus": 8,
        "max_cpu_id": 7,
        "nr_nodes": 1,
        "cores_per_socket": 4,
        "threads_per_core": 2,
        "cpu_mhz": "2394.454",
        "hw_caps": "bfebfbff:77fef3ff:2c100800:00000121:0000000f:009c6fbf:00000000:00000100",
        "virt_caps": "pv hvm hvm_directio pv_directio hap shadow iommu_hap_pt_share",
        "total_memory": HOST_TOTAL_MIB,
        "free_memory": host_free_mib(),
        "sharing_freed_memory": 0,
        "sharing_used_memory": 0,
        "outstanding_claims": 0,
        "free_cpus": 0,
        "xen_major": 4,
        "xen_minor": 17,
        "xen_extra": ".2-pre",
        "xen_version": "4.17.2-pre",
        "xen_caps": "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 ",
        "xen_scheduler": "credit2",
        "xen_pagesize": 4096,
        "platform_params": "virt_start=0xffff800000000000, max_page=0x41ffff",
        "xen_changeset": "",
        "xen_commandline": "dom0_mem=2048M,max:2048M dom0_max_vcpus=2 no-real-mode edd=off",
        "cc_compiler": "x86_64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0",
        "cc_compile_by": "pkg-xen-devel",
        "cc_compile_domain": "lists.alioth.debian.org",
        "cc_compile_date": "Thu Oct 10 10:12:42 UTC 2024",
        "build_id": "0a3e6f1e6bd1b4ba4d8fb7d06c0c5b0ba0e3a2d1",
        "xend_config_format": 4,
    }
    (folder / "xl-info.txt").write_text("".join(f"{k:<23}: {v}\n" for k, v in info.items()))
    write_xen_demo_signals(folder)
    (folder / "xl.conf").write_text(
        "## Global XL config file ##\n\n# Control whether dom0 is ballooned down when xen doesn't have enough\n"
        '# free memory to create a domain.  "auto" means only balloon if dom0\n'
        '# starts with all the host\'s memory.\n#autoballoon="auto"\nautoballoon="off"\n\n'
        '# full path of the lockfile used by xl during domain creation\n#lockfile="/var/lock/xl"\n'
    )


def xenstore_listing(domains: list[tuple[int, str, dict[str, str]]]) -> str:
    """`xenstore-ls -f /local/domain`: each domain's node, then its keys (values sanitised)."""
    lines = []
    for domid, name, keys in domains:
        base = f"/local/domain/{domid}"
        lines += [f'{base} = ""', f'{base}/vm = "/vm/{uuid_for(domid)}"', f'{base}/name = "{name}"']
        lines.append(f'{base}/domid = "{domid}"')
        parents: set[str] = set()
        for key, value in keys.items():
            parent = key.rsplit("/", 1)[0]
            if "/" in key and parent not in parents:
                parents.add(parent)
                lines.append(f'{base}/{parent} = ""')
            lines.append(f'{base}/{key} = "{value}"')
    return "\n".join(lines) + "\n"


XENTOP_HEADER = (
    "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS "
    "NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID"
)


def xentop_rows(
    rows: list[tuple[str, str, float, int, int | None, int]], total_kib: int
) -> list[str]:
    """xentop -b -f rows: name, state, cpu seconds, MEM(k), MAXMEM(k) (None: no limit), vcpus."""
    out = []
    for name, state, cpu, mem, maxmem, vcpus in rows:
        limit = "no limit" if maxmem is None else str(maxmem)
        share = "n/a" if maxmem is None else f"{maxmem / total_kib * 100:.1f}"
        nets = 0 if name == "Domain-0" else 1
        out.append(
            f"{name:>10} {state} {int(cpu):>10} {0.2:>6.1f} {mem:>10} {mem / total_kib * 100:>6.1f} "
            f"{limit:>10} {share:>9} {vcpus:>5} {nets:>4} {0:>8} {0:>8} {nets:>4} {0:>8} "
            f"{0:>8} {0:>8} {0:>10} {0:>10} {0:>4}"
        )
    return out


def write_xen_demo_signals(folder: Path) -> None:
    """What Dom0 sees of xen-demo's guests: read because win-tenant is judged from Dom0."""
    total_kib = HOST_TOTAL_MIB * 1024
    dom0_kib = str(DOM0_MIB * 1024)
    store = [(0, "Domain-0", {"memory/target": dom0_kib, "memory/static-max": dom0_kib})]
    top: list[tuple[str, str, float, int, int | None, int]] = [
        ("Domain-0", "-----r", 812331.2, DOM0_MIB * 1024, None, 2)
    ]
    for name, domid, gtype, vcpus, target, maxm, _m, _x, state, cpu in DOMAINS:
        video = 8192 if gtype == "hvm" else 0
        keys = {
            # libxl writes the target without the video memory the guest also holds.
            "memory/target": str(target * 1024 - video),
            "memory/static-max": str(maxm * 1024),
            "memory/videoram": str(video) if video else "-1",
        }
        if name != "legacy-hvm":
            keys["control/feature-balloon"] = "1"
        if name == "win-tenant":
            keys.update(
                {
                    "data/meminfo_total": "1048084",
                    "data/meminfo_free": "88120",
                    "data/os_name": "Microsoft Windows Server 2019 Standard|C:\\\\Windows",
                    "attr/PVAddons/MajorVersion": "9",
                }
            )
        store.append((domid, name, keys))
        xentop_state = {"-b----": "--b---", "r-----": "-----r"}[state]
        top.append((name, xentop_state, cpu, target * 1024, maxm * 1024 + 1024, vcpus))
    (folder / "xenstore-ls.txt").write_text(xenstore_listing(store))
    iterations = []
    for _ in range(2):
        iterations += [XENTOP_HEADER, *xentop_rows(top, total_kib)]
    (folder / "xentop.txt").write_text("\n".join(iterations) + "\n")
    (folder / "xen-dmesg.txt").write_text(
        "(XEN) Xen version 4.17.2-pre (Debian 4.17.2+76-ge1f9cb16e2-1~deb12u1) "
        "(pkg-xen-devel@lists.alioth.debian.org) (x86_64-linux-gnu-gcc (Debian 12.2.0-14) "
        "12.2.0) debug=n Thu Oct 10 10:12:42 UTC 2024\n"
        "(XEN) Command line: placeholder dom0_mem=2048M,max:2048M dom0_max_vcpus=2 "
        "no-real-mode edd=off\n"
        "(XEN) Brought up 8 CPUs\n"
        "(XEN) Dom0 has maximum 2 VCPUs\n"
        "(XEN) Freed 644kB init memory\n"
        "(XEN) d17v0 VIRIDIAN GUEST_OS_ID: vendor: 1 os: 4 major: a minor: 0 sp: 0 build: 4563\n"
    )


# ------------------------------------------------------------ the xm-era Dom0
LEGACY = "xen-legacy"
LEGACY_TOTAL_MIB = 8191
# name, domid, type, vcpus, memory (target) MiB, maxmem MiB, state, cpu time
LEGACY_DOMAINS = [
    ("erp-legacy", 4, "pv", 2, 2048, 2048, "-b----", 918223.1),
    ("intranet-hvm", 6, "hvm", 1, 1024, 1536, "-b----", 40211.7),
]


def _sxp_domain(
    domid: int, name: str, gtype: str, vcpus: int, memory: int, maxmem: int, state: str, cpu: float
) -> list[str]:
    """One (domain ...) as xend's PrettyPrint lays out `xm list -l` (four spaces a level)."""
    uuid = (
        "00000000-0000-0000-0000-000000000000"
        if domid == 0
        else f"7a{domid:06x}-1c2d-4e5f-8a9b-{domid:012x}"
    )
    image = (
        [
            "    (image",
            "        (linux",
            "            (kernel '')",
            "            (superpages 0)",
            "            (notes (SUSPEND_CANCEL 1))",
            "        )",
            "    )",
        ]
        if gtype == "pv"
        else [
            "    (image",
            "        (hvm",
            "            (kernel '')",
            "            (videoram 4)",
            "            (loader /usr/lib/xen-4.1/boot/hvmloader)",
            "            (boot c)",
            "            (acpi 1)",
            "            (apic 1)",
            "            (pae 1)",
            "            (device_model /usr/lib/xen-4.1/bin/qemu-dm)",
            "            (notes (SUSPEND_CANCEL 1))",
            "        )",
            "    )",
        ]
    )
    lines = [
        "(domain",
        f"    (domid {domid})",
        "    (cpu_weight 256)",
        "    (cpu_cap 0)",
        "    (on_crash restart)",
        f"    (uuid {uuid})",
        "    (bootloader_args )",
        f"    (vcpus {vcpus})",
        f"    (name {name})",
        "    (on_poweroff destroy)",
        "    (on_reboot restart)",
        "    (bootloader )"
        if gtype != "pv" or domid == 0
        else "    (bootloader /usr/lib/xen-4.1/bin/pygrub)",
        f"    (maxmem {maxmem})",
        f"    (memory {memory})",
        "    (shadow_memory 0)",
        "    (features )",
        "    (on_xend_start ignore)",
        "    (on_xend_stop ignore)",
        f"    (cpu_time {cpu})",
        f"    (online_vcpus {vcpus})",
        *image,
        "    (status 2)",
        f"    (state {state})",
        ")",
    ]
    return lines


def build_legacy_host() -> None:
    """An xend Dom0 (Debian 7, Xen 4.1) whose guests nobody logs into."""
    folder = FLEET / "_hypervisor" / LEGACY
    folder.mkdir(parents=True)
    (folder / "host.json").write_text(
        json.dumps({"name": LEGACY, "backend": "xm", "collected_at": COLLECTED_AT}, indent=2) + "\n"
    )
    info = {
        "host": LEGACY,
        "release": "3.2.0-6-amd64",
        "version": "#1 SMP Debian 3.2.102-1",
        "machine": "x86_64",
        "nr_cpus": 4,
        "nr_nodes": 1,
        "cores_per_socket": 4,
        "threads_per_core": 1,
        "cpu_mhz": 2660,
        "hw_caps": "bfebfbff:20100800:00000000:00000940:0098e3fd:00000000:00000001:00000000",
        "virt_caps": "hvm",
        "total_memory": LEGACY_TOTAL_MIB,
        "free_memory": 3903,
        "free_cpus": 0,
        "xen_major": 4,
        "xen_minor": 1,
        "xen_extra": ".4",
        "xen_caps": "xen-3.0-x86_64 xen-3.0-x86_32p hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 ",
        "xen_scheduler": "credit",
        "xen_pagesize": 4096,
        "platform_params": "virt_start=0xffff800000000000",
        "xen_changeset": "unavailable",
        "xen_commandline": "placeholder dom0_mem=1024M",
        "cc_compiler": "gcc version 4.7.2 (Debian 4.7.2-5) ",
        "cc_compile_by": "carnil",
        "cc_compile_domain": "debian.org",
        "cc_compile_date": "Sat Dec 22 21:30:05 UTC 2018",
        "xend_config_format": 4,
    }
    (folder / "xm-info.txt").write_text("".join(f"{k:<23}: {v}\n" for k, v in info.items()))
    # xm/main.py xm_brief_list: "%-40s %5s %5d %5d %10s %8.1f"
    rows = [f"{'Name':<40} {'ID':>5} {'Mem':>5} {'VCPUs':>5} {'State':>10} {'Time(s)':>9}"]
    rows.append(f"{'Domain-0':<40} {'0':>5} {1024:>5} {4:>5} {'r-----':>10} {1822331.9:>8.1f}")
    sxp = _sxp_domain(0, "Domain-0", "pv", 4, 1024, 8191, "r-----", 1822331.9)
    store = [
        (0, "Domain-0", {"memory/target": str(1024 * 1024), "memory/static-max": str(8191 * 1024)})
    ]
    top: list[tuple[str, str, float, int, int | None, int]] = [
        ("Domain-0", "-----r", 1822331.9, 1024 * 1024, None, 4)
    ]
    for name, domid, gtype, vcpus, memory, maxmem, state, cpu in LEGACY_DOMAINS:
        rows.append(f"{name:<40} {domid:>5} {memory:>5} {vcpus:>5} {state:>10} {cpu:>8.1f}")
        sxp += _sxp_domain(domid, name, gtype, vcpus, memory, maxmem, state, cpu)
        keys = {"memory/target": str(memory * 1024), "memory/static-max": str(maxmem * 1024)}
        if name == "erp-legacy":
            # xenballoond (Xen 3.x/4.x tools/xenballoon) copies /proc/meminfo here; CentOS 5 has no MemAvailable.
            keys["memory/meminfo"] = "\\n".join(
                [
                    "MemTotal:      2052320 kB",
                    "MemFree:         31204 kB",
                    "Buffers:         12312 kB",
                    "Cached:          96120 kB",
                    "SwapCached:      20114 kB",
                    "Active:        1712204 kB",
                    "Inactive:       201332 kB",
                    "SwapTotal:     2096440 kB",
                    "SwapFree:      1412044 kB",
                    "Committed_AS:  3121004 kB",
                ]
            )
            keys["memory/selftarget"] = "3121004"
        store.append((domid, name, keys))
        top.append((name, "--b---", cpu, memory * 1024, maxmem * 1024 + 1024, vcpus))
    # A xend-managed domain that is not running: no ID, no state.
    rows.append(f"{'staging-template':<40} {'':>5} {512:>5} {1:>5} {'':>10} {0.0:>8.1f}")
    (folder / "xm-list.txt").write_text("\n".join(rows) + "\n")
    (folder / "xm-list-l.sxp").write_text("\n".join(sxp) + "\n")
    (folder / "xenstore-ls.txt").write_text(xenstore_listing(store))
    iterations = []
    for _ in range(2):
        iterations += [XENTOP_HEADER, *xentop_rows(top, LEGACY_TOTAL_MIB * 1024)]
    (folder / "xentop.txt").write_text("\n".join(iterations) + "\n")
    (folder / "xen-dmesg.txt").write_text(
        "(XEN) Xen version 4.1.4 (Debian 4.1.4-3+deb7u9) (carnil@debian.org) (gcc version 4.7.2 "
        "(Debian 4.7.2-5) ) Sat Dec 22 21:30:05 UTC 2018\n"
        "(XEN) Command line: placeholder dom0_mem=1024M\n"
        "(XEN) Brought up 4 CPUs\n"
        # Last night intranet-hvm ran as domid 3 and touched more than its PoD memory.
        "(XEN) p2m_pod_demand_populate: Dom3 out of PoD memory! (tot=262160 ents=120832 dom3)\n"
        "(XEN) domain_crash called from p2m-pod.c:1103\n"
        "(XEN) Domain 3 (vcpu#0) crashed on cpu#2:\n"
        "(XEN) ----[ Xen-4.1.4  x86_64  debug=n  Not tainted ]----\n"
    )
    (folder / "xend-config.sxp").write_text(
        "# -*- sh -*-\n#\n# Xend configuration file.\n#\n"
        "(xend-unix-server yes)\n(xend-relocation-server no)\n"
        "# dom0-min-mem is the lowest permissible memory level (in MB) for dom0.\n"
        "(dom0-min-mem 1024)\n(enable-dom0-ballooning no)\n(dom0-cpus 0)\n"
    )
    for name, domid, *_ in LEGACY_DOMAINS:
        write_guest(name, domid, "skipped", {}, error=HYPERVISOR_SIDE_REASON, host=LEGACY)
    # Not running, but judged from Dom0 like the others (what a live run saves for it).
    write_guest("staging-template", 0, "skipped", {}, error=HYPERVISOR_SIDE_REASON, host=LEGACY)


def build_legacy_cfgs(index: dict[str, dict[str, dict[str, str]]]) -> None:
    """xm-era cfg files: one of plain assignments, one that computes its values (never patched)."""
    folder = FLEET / "_cfg" / LEGACY
    folder.mkdir(parents=True)
    (folder / "erp-legacy.cfg").write_text(
        "#  -*- mode: python; -*-\n"
        "# ERP 2009 on CentOS 5; owner: finance IT\n"
        "bootloader = '/usr/lib/xen-4.1/bin/pygrub'\n"
        "memory = 2048\n"
        "maxmem = 2048\n"
        "name = 'erp-legacy'\n"
        "vcpus = 2\n"
        "vif = [ 'mac=00:16:3e:4c:00:04, bridge=xenbr0' ]\n"
        "disk = [ 'phy:/dev/vg_legacy/erp-legacy,xvda,w' ]\n"
        "on_reboot = 'restart'\n"
        "on_crash = 'restart'\n"
    )
    (folder / "intranet-hvm.cfg").write_text(
        "#  -*- mode: python; -*-\n"
        "import os\n"
        "builder = 'hvm'\n"
        "kernel = '/usr/lib/xen-4.1/boot/hvmloader'\n"
        "name = os.path.basename(__file__).rsplit('.', 1)[0]\n"
        "memory = 1024\n"
        "maxmem = memory + 512\n"
        "vcpus = 1\n"
        "disk = [ 'phy:/dev/vg_legacy/%s,hda,w' % name ]\n"
        "vif = [ 'type=ioemu, bridge=xenbr0' ]\n"
        "boot = 'c'\n"
    )
    index[LEGACY] = {
        name: {"path": f"/etc/xen/{name}.cfg", "file": f"{LEGACY}/{name}.cfg"}
        for name, *_ in LEGACY_DOMAINS
    }


def build_hypervisor_nights() -> None:
    """Earlier nights as Dom0 saw them (the hypervisor-side history), for the Dom0-judged guests."""
    rows = []
    for i, free in enumerate([101220, 94312]):
        rows.append(
            {
                "run_at": f"2026-11-{22 + i:02d}T02:31:00Z",
                "host": HOST,
                "domain": "win-tenant",
                "domid": 23,
                "state": "blocked",
                "target_kib": 1048576,
                "held_kib": 1048576,
                "tools_total_kib": 1048084,
                "tools_free_kib": free,
                "tools_source": "guest agent (xenstore data/meminfo_total, data/meminfo_free)",
                "feature_balloon": True,
                "finding_codes": ["hypervisor_side", "shortage"],
            }
        )
    for i, free in enumerate([151220, 140312]):
        rows.append(
            {
                "run_at": f"2026-11-{22 + i:02d}T02:31:00Z",
                "host": LEGACY,
                "domain": "erp-legacy",
                "domid": 4,
                "state": "blocked",
                "target_kib": 2097152,
                "held_kib": 2097152,
                "tools_total_kib": 2052320,
                "tools_free_kib": free,
                "tools_source": "xenballoond (xenstore memory/meminfo)",
                "feature_balloon": None,
                "finding_codes": ["hypervisor_side", "shortage"],
            }
        )
    rows.append(
        {
            "run_at": "2026-11-24T02:31:00Z",
            "host": LEGACY,
            "domain": "intranet-hvm",
            "domid": 3,
            "state": "blocked",
            "target_kib": 1048576,
            "held_kib": 1048576,
            "feature_balloon": None,
            "finding_codes": ["hypervisor_side", "hvm_pod_risk"],
        }
    )
    (FLEET / "hypervisor-nights.json").write_text(json.dumps(rows, indent=1) + "\n")


def build_cfgs() -> None:
    """The cfg files as `audit` saves them: snapshots/_cfg/<host>/<domain>.cfg plus an index."""
    folder = FLEET / "_cfg" / HOST
    folder.mkdir(parents=True)
    index: dict[str, dict[str, dict[str, str]]] = {HOST: {}}
    for name, domid, gtype, vcpus, _t, _mx, memory, maxmem, _s, _c in DOMAINS:
        lines = [f"# {name}: managed by hand, see the runbook before changing"]
        if gtype == "pv":
            lines += ['bootloader = "pygrub"']
        elif name == "win-tenant":
            lines += [
                'type = "hvm"',
                "",
                "# Tenant 4711's Windows Server; the tenant holds the only login",
                "viridian = 1",
                'boot = "c"',
                "vnc = 1",
                'vnclisten = "127.0.0.1"',
            ]
        elif gtype == "hvm":
            lines += [
                'type = "hvm"',
                "",
                "# Legacy application server; BIOS boot from the disk image",
                'boot = "c"',
                "vnc = 1",
                'vnclisten = "127.0.0.1"',
            ]
        else:
            lines += ['type = "pvh"', 'kernel = "/usr/lib/grub-xen/grub-i386-xen_pvh.bin"']
        lines += [f'name = "{name}"', "", "# Memory in MiB", f"memory = {memory}"]
        if maxmem is not None:
            lines.append(f"maxmem = {maxmem}")
        if name in PASSTHROUGH:
            lines += ["", "# The GPU, passed through", f"pci = [ '{PASSTHROUGH[name][0]}' ]"]
        lines += [
            f"vcpus = {vcpus}",
            "",
            f"disk = [ 'phy:/dev/vg0/{name}-disk,xvda,w' ]",
            f"vif  = [ 'mac=00:16:3e:00:00:{domid:02x},bridge=xenbr0' ]",
            "",
            'on_poweroff = "destroy"',
            'on_reboot   = "restart"',
            'on_crash    = "restart"',
        ]
        (folder / f"{name}.cfg").write_text("\n".join(lines) + "\n")
        index[HOST][name] = {"path": f"/etc/xen/{name}.cfg", "file": f"{HOST}/{name}.cfg"}
    build_legacy_cfgs(index)
    (FLEET / "_cfg" / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def _counter(values: dict[str, int], prefix: str) -> int | None:
    found = [v for k, v in values.items() if k == prefix or k.startswith(prefix + "_")]
    return sum(found) if found else None


#: Cumulative counters the history keeps, as (history key, how to read it from tonight).
COUNTERS = {
    "pswpin": lambda v: v.get("pswpin"),
    "pgmajfault": lambda v: v.get("pgmajfault"),
    "oom_kill_counter": lambda v: v.get("oom_kill"),
    "psi_some_total_us": lambda v: v.get("psi_some_total_us"),
    "psi_full_total_us": lambda v: v.get("psi_full_total_us"),
    "allocstall": lambda v: _counter(v, "allocstall"),
    "pgscan_direct": lambda v: _counter(v, "pgscan_direct"),
    "compact_stall": lambda v: v.get("compact_stall"),
    "workingset_refault": lambda v: _counter(v, "workingset_refault"),
}


def build_history() -> None:
    """Ten earlier nights per domain, as the history store would have recorded them.

    Cumulative counters lead up to tonight's values: flat for calm guests (no
    pressure between nights), growing by a nightly step for guests under
    pressure, so tonight's deltas read like the day before.
    """
    nights = []
    cfg = {name: (memory, target) for name, _d, _g, _v, target, _mx, memory, _x, _s, _c in DOMAINS}
    plans = {
        # domain: (available per night, swap_used_kib, psi_some_avg60, failures, ooms, growth)
        "web-frontend": (
            [171203, 160331, 151220, 148120, 140331, 139120, 135203, 131220, 129331, 130120],
            94120,
            None,
            [0, 0, 1, 0, 2, 0, 1, 0, 2, 1],
            [0] * 10,
            {"pswpin": 130, "pgmajfault": 400},
        ),
        "db-primary": (
            [301220, 280331, 251220, 240113, 210331, 190331, 150221, 120331, 110221, 101203],
            612331,
            9.5,
            [0] * 10,
            [0, 0, 0, 0, 0, 0, 1, 0, 0, 1],
            {
                "pswpin": 60000,
                "pgmajfault": 40000,
                "psi_some_total_us": 40_000_000,
                "psi_full_total_us": 15_000_000,
                "allocstall": 90,
                "pgscan_direct": 9000,
                "workingset_refault": 30000,
            },
        ),
        "build-runner": (
            [
                4712331,
                4601220,
                4412331,
                4801220,
                4612331,
                4299120,
                4712331,
                4501220,
                4612331,
                4412331,
            ],
            0,
            0.0,
            [0] * 10,
            [0] * 10,
            {},
        ),
        "cache-node": (
            [412331, 401220, 398120, 405331, 410221, 399120, 402331, 395120, 401331, 399331],
            16120,
            0.3,
            [1, 0, 0, 2, 0, 1, 0, 0, 1, 0],
            [0] * 10,
            {"compact_stall": 110, "pswpin": 110},
        ),
        "legacy-hvm": ([1390120 - 3000 * i for i in range(10)], 0, 0.0, [0] * 10, [0] * 10, {}),
        "monitor": (
            [531220, 520331, 512331, 529120, 525331, 518120, 523331, 519120, 527331, 521331],
            8120,
            0.0,
            [0] * 10,
            [0] * 10,
            {},
        ),
        "gpu-worker": (
            [520331, 480331, 450220, 430331, 401220, 380331, 350220, 330331, 318120, 310220],
            230331,
            6.8,
            [0] * 10,
            [0] * 10,
            {
                "pswpin": 5000,
                "pgmajfault": 20000,
                "psi_some_total_us": 9_000_000,
                "allocstall": 500,
                "pgscan_direct": 100000,
                "workingset_refault": 30000,
            },
        ),
        "pvh-appliance": (
            [1731220 - 1000 * (i % 3) for i in range(10)],
            0,
            0.0,
            [0] * 10,
            [0] * 10,
            {},
        ),
        "storm-proxy": (
            [640331, 652331, 630220, 661220, 641331, 650220, 638120, 645331, 659220, 648331],
            0,
            0.0,
            [0] * 10,
            [0] * 10,
            {},
        ),
    }
    for domain, (avail, swap, psi_avg, pagealloc, ooms, growth) in plans.items():
        tonight = TONIGHT[domain]
        total = tonight["mem_MemTotal"]
        free_share = tonight["mem_MemFree"] / max(tonight["mem_MemAvailable"], 1)
        for i, available in enumerate(avail):
            back = 10 - i
            row = {
                "run_at": f"2026-11-{14 + i:02d}T02:31:00Z",
                "host": HOST,
                "domain": domain,
                "mem_total_kib": total,
                "mem_available_kib": available,
                "mem_free_kib": int(available * free_share),
                "swap_used_kib": swap,
                "sunreclaim_kib": tonight.get("mem_SUnreclaim"),
                "psi_some_avg60": psi_avg,
                "page_alloc_failures": pagealloc[i],
                "oom_kills": ooms[i],
                "cfg_memory_mib": cfg[domain][0],
                "live_target_kib": cfg[domain][1] * 1024,
                # The same boot as tonight: the events in tonight's log are this boot's.
                "boot_time": tonight.get("boot_time"),
            }
            for key, read in COUNTERS.items():
                now = read(tonight)
                if now is None:
                    row[key] = None
                    continue
                if key == "oom_kill_counter":
                    later = sum(ooms[i + 1 :])
                    row[key] = max(0, now - later)
                    continue
                row[key] = max(0, now - growth.get(key, 0) * back)
            nights.append(row)
    (FLEET / "history.json").write_text(json.dumps(nights, indent=1) + "\n")


def main() -> None:
    if FLEET.exists():
        shutil.rmtree(FLEET)
    FLEET.mkdir(parents=True)
    build_guests()
    write_guest("win-tenant", 23, "skipped", {}, error=HYPERVISOR_SIDE_REASON)
    build_host()
    build_legacy_host()
    build_cfgs()
    build_history()
    build_hypervisor_nights()
    print(f"wrote {sum(1 for _ in FLEET.rglob('*') if _.is_file())} files under {FLEET}")


if __name__ == "__main__":
    main()
