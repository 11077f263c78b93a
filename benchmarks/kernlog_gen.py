"""Generate a large, realistic kern.log for benchmarking ``xenaudit logscan``.

The noise is what a busy guest's /var/log/kern.log (plus some /var/log/messages
lines from daemons) looks like: link changes, firewall drops, audit/AppArmor
records, filesystem and block-layer messages, USB, Xen front-ends, docker
bridges. Page allocation failure reports from several kernel eras, complete
OOM reports and Xen balloon messages are sprinkled in, and a few noise lines
contain marker words without being events, so a scanner's pre-filter is
exercised honestly. The expected event counts are returned so the benchmark
can check the scanner found exactly them.
"""

# Log line templates are long by nature; splitting each would hide what the line looks like.
# ruff: noqa: E501

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

HOST = "web-frontend"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class Expected:
    """How many events of each kind were written."""

    counts: dict[str, int] = field(default_factory=dict)
    lines: int = 0
    size_bytes: int = 0

    def add(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n


def _mac(r: random.Random) -> str:
    return ":".join(f"{r.randrange(256):02x}" for _ in range(6))


def _ip(r: random.Random) -> str:
    return f"{r.choice((10, 172, 192, 185, 91))}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"


def _noise(r: random.Random) -> str:
    """One kernel message (without prefix), chosen among many realistic shapes."""
    pick = r.randrange(40)
    if pick < 8:
        proto = r.choice(("TCP", "UDP"))
        return (
            f"[UFW BLOCK] IN=eth0 OUT= MAC={_mac(r)}:{_mac(r)}:08:00 SRC={_ip(r)} DST={_ip(r)} "
            f"LEN={r.randrange(40, 1500)} TOS=0x00 PREC=0x00 TTL={r.randrange(30, 250)} "
            f"ID={r.randrange(65536)} {'DF ' if r.random() < 0.5 else ''}PROTO={proto} "
            f"SPT={r.randrange(1024, 65536)} DPT={r.choice((22, 23, 80, 443, 3389, 5900, 8080))} "
            f"{'WINDOW=29200 RES=0x00 SYN URGP=0' if proto == 'TCP' else f'LEN={r.randrange(8, 512)}'}"
        )
    if pick < 12:
        return (
            f"audit: type=1400 audit({r.randrange(1_600_000_000, 1_800_000_000)}.{r.randrange(1000):03d}"
            f':{r.randrange(100000)}): apparmor="DENIED" operation="{r.choice(("open", "exec", "file_mmap", "capable"))}" '
            f'profile="{r.choice(("/usr/sbin/ntpd", "/usr/bin/freshclam", "snap.lxd.daemon", "/usr/sbin/cupsd"))}" '
            f'name="{r.choice(("/proc/", "/sys/fs/cgroup/", "/etc/ssl/openssl.cnf", "/run/systemd/"))}'
            f'{r.randrange(9999)}" pid={r.randrange(100, 99999)} comm="{r.choice(("ntpd", "freshclam", "lxd", "cupsd"))}" '
            f'requested_mask="r" denied_mask="r" fsuid=0 ouid=0'
        )
    if pick < 14:
        dev = r.choice(("eth0", "eth1", "ens3", "enp0s31f6"))
        return r.choice(
            (
                f"e1000e: {dev} NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
                f"e1000e: {dev} NIC Link is Down",
                f"IPv6: ADDRCONF(NETDEV_CHANGE): {dev}: link becomes ready",
                f"ixgbe 0000:0{r.randrange(9)}:00.{r.randrange(2)}: {dev}: detected SFP+: {r.randrange(6)}",
                f"xen_netfront: {dev}: xennet_tx_buf_gc: warning -- grant still in use by backend domain",
                f"device {dev} entered promiscuous mode",
                f"device {dev} left promiscuous mode",
            )
        )
    if pick < 17:
        veth = f"veth{r.randrange(16**7):07x}"
        port = r.randrange(1, 40)
        return r.choice(
            (
                f"docker0: port {port}({veth}) entered blocking state",
                f"docker0: port {port}({veth}) entered disabled state",
                f"docker0: port {port}({veth}) entered forwarding state",
                f"IPv6: ADDRCONF(NETDEV_CHANGE): {veth}: link becomes ready",
                f"eth0: renamed from {veth}",
                f"br-{r.randrange(16**12):012x}: port {port}({veth}) entered blocking state",
            )
        )
    if pick < 20:
        disk = r.choice(("sda", "sdb", "xvda", "xvdb", "nvme0n1"))
        return r.choice(
            (
                f"EXT4-fs ({disk}{r.randrange(1, 4)}): mounted filesystem with ordered data mode. Opts: (null)",
                f"EXT4-fs ({disk}1): re-mounted. Opts: errors=remount-ro",
                f"XFS ({disk}{r.randrange(1, 4)}): Mounting V5 Filesystem",
                f"XFS ({disk}2): Ending clean mount",
                f"blk_update_request: I/O error, dev {disk}, sector {r.randrange(10**9)} op 0x0:(READ) "
                f"flags 0x80700 phys_seg {r.randrange(1, 32)} prio class 0",
                f"sd 0:0:0:0: [{disk}] {r.randrange(10**8, 10**10)} 512-byte logical blocks: "
                f"({r.randrange(10, 4000)} GB/{r.randrange(10, 4000)} GiB)",
                f"sd 0:0:0:0: [{disk}] Write cache: enabled, read cache: enabled, doesn't support DPO or FUA",
                f"blkfront: {disk}: flush diskcache: enabled; persistent grants: enabled; "
                f"indirect descriptors: enabled;",
                f"nvme nvme0: I/O {r.randrange(1024)} QID {r.randrange(8)} timeout, aborting",
            )
        )
    if pick < 22:
        bus, port = r.randrange(1, 5), r.randrange(1, 9)
        return r.choice(
            (
                f"usb {bus}-{port}: new high-speed USB device number {r.randrange(2, 120)} using xhci_hcd",
                f"usb {bus}-{port}: New USB device found, idVendor={r.randrange(16**4):04x}, "
                f"idProduct={r.randrange(16**4):04x}, bcdDevice= 1.00",
                f"usb {bus}-{port}: USB disconnect, device number {r.randrange(2, 120)}",
                f"usb-storage {bus}-{port}:1.0: USB Mass Storage device detected",
                f"scsi host{r.randrange(10)}: usb-storage {bus}-{port}:1.0",
            )
        )
    if pick < 25:
        return r.choice(
            (
                f"TCP: request_sock_TCP: Possible SYN flooding on port {r.choice((80, 443))}. "
                "Sending cookies.  Check SNMP counters.",
                "nf_conntrack: nf_conntrack: table full, dropping packet",
                f"net_ratelimit: {r.randrange(1, 400)} callbacks suppressed",
                f"perf: interrupt took too long ({r.randrange(2500, 9000)} > {r.randrange(2500, 9000)}), "
                f"lowering kernel.perf_event_max_sample_rate to {r.randrange(10000, 80000)}",
                f"hrtimer: interrupt took {r.randrange(100000, 9000000)} ns",
                f"clocksource: timekeeping watchdog on CPU{r.randrange(8)}: Marking clocksource 'tsc' "
                "as unstable because the skew is too large:",
                f"NFS: server {_ip(r)} not responding, still trying",
                f"NFS: server {_ip(r)} OK",
                f"rpc-srv/tcp: nfsd: got error -104 when sending {r.randrange(100, 9000)} bytes - shutting down socket",
            )
        )
    if pick < 27:
        return r.choice(
            (
                "xen:grant_table: Grant tables using version 1 layout",
                f"xenbus: xenbus_dev_shutdown: device/vif/{r.randrange(4)}: Initialising != Connected, skipping",
                f"xen-blkfront: xvd{r.choice('abcd')}: barrier or flush: disabled; persistent grants: "
                "enabled; indirect descriptors: enabled;",
                f"Freezing user space processes ... (elapsed 0.00{r.randrange(10)} seconds) done.",
                "OOM killer disabled.",
                "OOM killer enabled.",
                "Restarting tasks ... done.",
                f"Freezing of tasks failed after 20.00{r.randrange(10)} seconds",
                f"systemd[1]: Started Session {r.randrange(1, 99999)} of user root.",
            )
        )
    if pick < 29:
        return r.choice(
            (
                f"[drm] Initialized {r.choice(('qxl', 'cirrus', 'bochs-drm'))} 0.1.0 20120117 for 0000:00:02.0 on minor 0",
                "random: crng init done",
                f"EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#{r.randrange(4)}_DIMM#0 "
                f"(channel:{r.randrange(4)} slot:0 page:0x{r.randrange(16**6):x} offset:0x0 grain:32 "
                "syndrome:0x0 -  area:DRAM err_code:0001:0090 socket:0 ha:0 channel_mask:1 rank:1)",
                "mce: [Hardware Error]: Machine check events logged",
                f"kvm [{r.randrange(1000, 99999)}]: vcpu0, guest rIP: 0xffffffff{r.randrange(16**8):08x} "
                f"unhandled rdmsr: 0x{r.randrange(16**3):x}",
                f"traps: {r.choice(('php-fpm', 'node', 'java', 'python3'))}[{r.randrange(100, 99999)}] "
                f"general protection fault ip:{r.randrange(16**12):x} sp:7ffd{r.randrange(16**8):08x} "
                f"error:0 in libc-2.31.so[{r.randrange(16**12):x}+178000]",
                f"{r.choice(('php-fpm', 'node', 'java'))}[{r.randrange(100, 99999)}]: segfault at "
                f"{r.randrange(16**8):x} ip {r.randrange(16**12):012x} sp {r.randrange(16**12):012x} "
                f"error 4 in libfoo.so.1[{r.randrange(16**12):x}+2d000]",
            )
        )
    if pick < 31 and r.random() < 0.005:
        # Rare noise that contains marker words but is no event: a scanner must not count it.
        return r.choice(
            (
                f"vmalloc: allocation failure: {r.randrange(4096, 10**6)} bytes, mode:0xcc0(GFP_KERNEL), "
                "nodemask=(null),cpuset=/,mems_allowed=0",
                f"mlx5_core 0000:0{r.randrange(9)}:00.0: mlx5_cmd_check: firmware allocation failure "
                f"status bad resource(0x5), syndrome (0x{r.randrange(16**6):x})",
                f"virtio_balloon virtio{r.randrange(4)}: Balloon device registered",
                "cgroup: fork rejected by pids controller in /system.slice/cron.service",
                "Freezing remaining freezable tasks ... (elapsed 0.001 seconds) done.",
            )
        )
    if pick < 36:
        iface = r.choice(("eth0", "ens3"))
        return (
            f"IPv4: martian source {_ip(r)} from {_ip(r)}, on dev {iface}"
            if r.random() < 0.5
            else f"ll header: 00000000: {_mac(r).replace(':', ' ')} {_mac(r).replace(':', ' ')} 08 00"
        )
    return (
        f"CPU{r.randrange(8)}: Core temperature above threshold, cpu clock throttled "
        f"(total events = {r.randrange(1, 100000)})"
        if r.random() < 0.3
        else f"INFO: task {r.choice(('kworker/u8:2', 'jbd2/xvda1-8', 'mysqld', 'java'))}:"
        f"{r.randrange(100, 99999)} blocked for more than {r.choice((120, 241, 362))} seconds."
    )


# --- events ----------------------------------------------------------------------------


_TRACE_4X = (
    " dump_stack+0x6d/0x8b",
    " warn_alloc+0xff/0x1a0",
    " __alloc_pages_slowpath+0xdc5/0xe00",
    " __alloc_pages_nodemask+0x29a/0x2c0",
    " alloc_pages_current+0x6a/0xe0",
    " skb_page_frag_refill+0x71/0xc0",
    " sk_page_frag_refill+0x1d/0x80",
    " tcp_sendmsg_locked+0x24d/0xe90",
    " tcp_sendmsg+0x2c/0x50",
    " inet_sendmsg+0x31/0xb0",
    " sock_sendmsg+0x3e/0x50",
    " __sys_sendto+0x13f/0x180",
    " do_syscall_64+0x57/0x190",
    " entry_SYSCALL_64_after_hwframe+0x44/0xa9",
)


def _mem_info(r: random.Random) -> list[str]:
    free = r.randrange(2000, 40000)
    return [
        "Mem-Info:",
        f"active_anon:{r.randrange(10**5, 10**6)} inactive_anon:{r.randrange(10**4)} isolated_anon:0",
        f" active_file:{r.randrange(10**5)} inactive_file:{r.randrange(10**5)} isolated_file:0",
        f" unevictable:0 dirty:{r.randrange(999)} writeback:0 unstable:0",
        f" slab_reclaimable:{r.randrange(10**4)} slab_unreclaimable:{r.randrange(10**4)}",
        f" mapped:{r.randrange(10**4)} shmem:{r.randrange(10**4)} pagetables:{r.randrange(10**4)} bounce:0",
        f" free:{free} free_pcp:{r.randrange(999)} free_cma:0",
        f"Node 0 active_anon:{r.randrange(10**6)}kB inactive_anon:{r.randrange(10**5)}kB "
        f"active_file:{r.randrange(10**5)}kB inactive_file:{r.randrange(10**5)}kB unevictable:0kB "
        "isolated(anon):0kB isolated(file):0kB mapped:51200kB dirty:12kB writeback:0kB "
        "shmem:4804kB writeback_tmp:0kB unstable:0kB all_unreclaimable? no",
        f"Node 0 DMA free:{r.randrange(5000, 16000)}kB min:{r.randrange(100, 400)}kB low:508kB "
        "high:632kB active_anon:2048kB inactive_anon:0kB present:15992kB managed:15908kB",
        "lowmem_reserve[]: 0 1887 1887 1887",
        f"Node 0 DMA32 free:{free * 4}kB min:{r.randrange(4000, 45000)}kB low:56428kB high:67712kB",
        "lowmem_reserve[]: 0 0 0 0",
        "Node 0 DMA: 1*4kB (U) 2*8kB (UM) 1*16kB (M) 0*32kB 1*64kB (U) 1*128kB (U) 1*256kB (U) "
        "0*512kB 1*1024kB (U) 1*2048kB (M) 3*4096kB (M) = 15876kB",
        f"Node 0 DMA32: {r.randrange(10**4)}*4kB (UME) {r.randrange(10**4)}*8kB (UME) "
        f"{r.randrange(999)}*16kB (UME) 0*32kB 0*64kB 0*128kB 0*256kB 0*512kB 0*1024kB 0*2048kB "
        f"0*4096kB = {free * 4}kB",
        f"{r.randrange(10**5)} total pagecache pages",
        "0 pages in swap cache",
        "Swap cache stats: add 0, delete 0, find 0/0",
        "Free swap  = 0kB",
        "Total swap = 0kB",
        "524158 pages RAM",
        "0 pages HighMem/MovableOnly",
        "21113 pages reserved",
    ]


def _page_alloc_report(r: random.Random) -> list[str]:
    era = r.randrange(3)
    order = r.choice((0, 0, 1, 2, 3, 4, 9))
    proc = r.choice(
        ("swapper/0", "kworker/u4:2", "memcached", "java", "Web Content", "ksoftirqd/1")
    )
    pid = r.randrange(1, 99999)
    if era == 0:
        return [
            f"{proc}: page allocation failure. order:{order}, mode:0x20",
            f"Pid: {pid}, comm: {proc} Not tainted 2.6.32-573.7.1.el6.x86_64 #1",
            "Call Trace:",
            " <IRQ>  [<ffffffff8112c207>] ? __alloc_pages_nodemask+0x757/0x8d0",
            " [<ffffffff81166ab2>] ? kmem_getpages+0x62/0x170",
            " [<ffffffff811676ca>] ? fallback_alloc+0x1ba/0x270",
            " [<ffffffff8116711f>] ? cache_grow+0x2cf/0x320",
            " [<ffffffff811683cb>] ? kmem_cache_alloc+0x11b/0x190",
            *_mem_info(r),
        ]
    if era == 1:
        return [
            f"{proc}: page allocation failure: order:{order}, mode:0x2080020(GFP_ATOMIC)",
            f"CPU: {r.randrange(4)} PID: {pid} Comm: {proc} Not tainted 4.9.0-8-amd64 #1 Debian 4.9.144-3",
            "Hardware name: Xen HVM domU, BIOS 4.11.1 01/16/2020",
            " 0000000000000000 ffffffff9a92f4a4 ffff88003fc03c70 0000000000000000",
            "Call Trace:",
            " <IRQ>",
            *_TRACE_4X,
            *_mem_info(r),
        ]
    return [
        f"{proc}: page allocation failure: order:{order}, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), "
        "nodemask=(null),cpuset=/,mems_allowed=0",
        f"CPU: {r.randrange(4)} PID: {pid} Comm: {proc} Not tainted 5.10.0-21-amd64 #1 Debian 5.10.162-1",
        "Hardware name: Xen HVM domU, BIOS 4.14.5 04/12/2023",
        "Call Trace:",
        *_TRACE_4X,
        *_mem_info(r),
    ]


def _oom_report(r: random.Random, expected: Expected) -> list[str]:
    victim = r.choice(("java", "mysqld", "python3", "node", "Web Content"))
    pid = r.randrange(100, 99999)
    tasks = [
        f"[{r.randrange(100, 99999):7d}] {r.randrange(1000):5d} {r.randrange(100, 99999):5d} "
        f"{r.randrange(10**4, 10**6):8d} {r.randrange(10**2, 10**5):8d} {r.randrange(10**5, 10**6):8d} "
        f"{r.randrange(100):8d} {r.choice((0, 0, -1000, 200)):13d} "
        f"{r.choice(('systemd', 'sshd', 'cron', 'rsyslogd', 'nginx', 'php-fpm7.4'))}"
        for _ in range(r.randrange(20, 120))
    ]
    expected.add("oom_invoked")
    expected.add("oom_kill")
    if r.random() < 0.5:
        kill = [
            f"Out of memory: Kill process {pid} ({victim}) score {r.randrange(1, 1000)} or sacrifice child",
            f"Killed process {pid} ({victim}) total-vm:{r.randrange(10**6, 10**7)}kB, "
            f"anon-rss:{r.randrange(10**5, 10**6)}kB, file-rss:{r.randrange(10**4)}kB, shmem-rss:0kB",
        ]
        head = (
            f"{victim} invoked oom-killer: gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null), "
            "order=0, oom_score_adj=0"
        )
    else:
        kill = [
            "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
            f"task_memcg=/system.slice/{victim}.service,task={victim},pid={pid},uid=0",
            f"Out of memory: Killed process {pid} ({victim}) total-vm:{r.randrange(10**6, 10**7)}kB, "
            f"anon-rss:{r.randrange(10**5, 10**6)}kB, file-rss:{r.randrange(10**4)}kB, shmem-rss:0kB, "
            f"UID:0 pgtables:{r.randrange(10**3, 10**4)}kB oom_score_adj:0",
            f"oom_reaper: reaped process {pid} ({victim}), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
        ]
        head = f"{victim} invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0"
    return [
        head,
        f"CPU: 1 PID: {pid} Comm: {victim} Not tainted 5.10.0-21-amd64 #1 Debian 5.10.162-1",
        "Hardware name: Xen HVM domU, BIOS 4.14.5 04/12/2023",
        "Call Trace:",
        " dump_stack+0x6b/0x83",
        " dump_header+0x4a/0x1f4",
        " oom_kill_process.cold+0xb/0x10",
        " out_of_memory+0x1bd/0x4e0",
        " __alloc_pages_slowpath.constprop.0+0xbcc/0xc90",
        " __alloc_pages_nodemask+0x2de/0x310",
        " pagecache_get_page+0x175/0x390",
        " filemap_fault+0x6a2/0x900",
        *_mem_info(r),
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        *tasks,
        *kill,
    ]


_BALLOON = (
    "xen:balloon: Initialising balloon driver",
    "xen/balloon: Cannot add additional memory (-17)",
    "xen_balloon: Initialising balloon driver.",
)


class _Clock:
    """Syslog wall clock plus dmesg uptime, both moving forward."""

    def __init__(self, r: random.Random) -> None:
        self.r = r
        self.seconds = 0.0
        self.uptime = 5.0

    def tick(self) -> str:
        step = self.r.expovariate(1 / 0.8)
        self.seconds += step
        self.uptime += step
        total = int(self.seconds)
        day, rest = divmod(total, 86400)
        month = MONTHS[(day // 28) % 12]
        return f"{month} {day % 28 + 1:2d} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"

    def stamp(self) -> str:
        return f"[{self.uptime:12.6f}]"


def generate(
    path: Path,
    size_bytes: int,
    *,
    seed: int = 20261125,
    page_alloc_every: int = 4000,
    oom_every: int = 40000,
    balloon_every: int = 20000,
) -> Expected:
    """Write about ``size_bytes`` of log to ``path``; return what was planted in it.

    Events come on average once per ``*_every`` noise lines (randomised).
    """
    r = random.Random(seed)
    clock = _Clock(r)
    expected = Expected()
    written = 0
    lines = 0
    batch: list[str] = []
    with path.open("w", encoding="utf-8", newline="\n") as out:
        while written < size_bytes:
            wall = clock.tick()
            roll = r.randrange(page_alloc_every * oom_every * balloon_every)
            if roll % page_alloc_every == 0:
                body = _page_alloc_report(r)
                expected.add("page_alloc_failure")
            elif roll % oom_every == 1:
                body = _oom_report(r, expected)
            elif roll % balloon_every == 2:
                body = [r.choice(_BALLOON)]
                expected.add("balloon")
            else:
                body = [_noise(r)]
            if body[0].startswith("systemd[1]"):
                prefix = f"{wall} {HOST} "
                text = [f"{prefix}{body[0]}"]
            else:
                stamp = clock.stamp()
                text = [f"{wall} {HOST} kernel: {stamp} {message}" for message in body]
            for line in text:
                batch.append(line)
                written += len(line) + 1
            lines += len(text)
            if len(batch) >= 4096:
                out.write("\n".join(batch))
                out.write("\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch))
            out.write("\n")
    expected.lines = lines
    expected.size_bytes = path.stat().st_size
    return expected
