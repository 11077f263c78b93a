"""Kernel-log samples from the corpus: the values a careful reader takes from each file."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenaudit.parsers.interface import BalloonMessage, OomInvoked, OomKill, PageAllocFailure
from xenaudit.parsers.kernlog import parse_kernlog


def _log(corpus: Path, name: str):
    return parse_kernlog((corpus / name).read_text(encoding="utf-8", errors="replace"))


def _only(corpus: Path, name: str, kind: type):
    log = _log(corpus, name)
    assert len(log.events) == 1, log.events
    event = log.events[0]
    assert isinstance(event, kind)
    assert not log.truncated
    return event


# --- page allocation failures ------------------------------------------------------

# file, line, timestamp, process, order, mode, kernel release on the dump line
HEX_ONLY = [
    ("pagealloc_3.18.18_order8_dmwriteboost.log", 1, "41923.154238", "dmwb_writeback_", 8,
     "0x204010", "3.18.18+40-ph"),
    ("pagealloc_3.3.0_gentoo_zfs_with_context.log", 9, "2448.162738", "z_wr_iss/2", 0, "0x20",
     "3.3.0-gentoo-r1"),
    ("pagealloc_3.19.0_i386_order4_netmap.log", 4, "8360.120691", "pkt-gen", 4, "0x8020",
     "3.19.0-32-generic"),
    ("pagealloc_3.8.0_order9_pfring.log", 1, "2313169.749777", "tcpdump", 9, "0x20",
     "3.8.0-29-generic"),
    ("pagealloc_2.6.32-573.el6_syslog_order3.log", 1, "Nov 13 10:34:16", "ProbeReader", 3,
     "0x8020", "2.6.32-573.7.1.el6.x86_64"),
    ("pagealloc_arm_raspbian_usbnet.log", 1, "599.883068", "ntfs-3g", 0, "0x20", None),
    ("pagealloc_4.3.3_coreos_gce_softirq.log", 1, "664629.887223", "ksoftirqd/0", 0, "0x20",
     "4.3.3-coreos-r2"),
    ("pagealloc_3.4.0_fc17_syslog_plus_dmesg_ts.log", 1, "Jun 15 12:08:50", "splat", 0, "0x10d0",
     "3.4.0-1.fc17.x86_64"),
    ("pagealloc_2.6.32-358.el6_redhat_swapper_order1.log", 1, None, "swapper", 1, "0x20",
     "2.6.32-358.2.1.el6.x86_64"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "line", "ts", "process", "order", "mode", "release"), HEX_ONLY)
def test_hex_only_failures(corpus, name, line, ts, process, order, mode, release) -> None:
    event = _only(corpus, name, PageAllocFailure)
    assert (event.line, event.timestamp, event.process) == (line, ts, process)
    assert (event.order, event.gfp_mask) == (order, mode)
    assert event.gfp_flags_source == "decoded"
    # Every one of these kernels predates 4.4, so the old bit layout applies.
    assert event.gfp_era == "pre-4.4"
    assert event.kernel_version == release


@pytest.mark.parametrize(
    ("name", "flags", "atomic"),
    [
        ("pagealloc_3.3.0_gentoo_zfs_with_context.log", {"GFP_ATOMIC", "__GFP_HIGH"}, True),
        ("pagealloc_3.19.0_i386_order4_netmap.log", {"GFP_ATOMIC", "__GFP_ZERO"}, True),
        ("pagealloc_2.6.32-573.el6_syslog_order3.log", {"GFP_ATOMIC", "__GFP_ZERO"}, True),
        ("pagealloc_4.3.3_coreos_gce_softirq.log", {"GFP_ATOMIC"}, True),
        # 0x10d0 before 4.4: __GFP_WAIT|__GFP_IO|__GFP_FS (GFP_KERNEL) | __GFP_NORETRY.
        ("pagealloc_3.4.0_fc17_syslog_plus_dmesg_ts.log", {"GFP_KERNEL", "__GFP_NORETRY"}, False),
        # 0x204010 before 4.4: __GFP_WAIT | __GFP_COMP | __GFP_NOTRACK.
        (
            "pagealloc_3.18.18_order8_dmwriteboost.log",
            {"__GFP_WAIT", "__GFP_COMP", "__GFP_NOTRACK"},
            False,
        ),
    ],
)
def test_decoded_flags_and_atomicity(corpus, name, flags, atomic) -> None:
    event = _only(corpus, name, PageAllocFailure)
    assert flags <= set(event.gfp_flags)
    assert event.is_atomic is atomic


def test_classic_swapper_0x20_is_atomic(corpus) -> None:
    event = _only(corpus, "pagealloc_2.6.32-358.el6_redhat_swapper_order1.log", PageAllocFailure)
    assert event.gfp_flags == ("GFP_ATOMIC", "__GFP_HIGH")
    assert event.is_atomic
    # The call trace follows; its first line is the "Pid:" header of old kernels.
    assert event.context[0].text.startswith("Pid: 0, comm: swapper")
    assert event.context[1].text == "Call Trace:"
    assert event.context[-1].line == 19


@pytest.mark.parametrize(
    ("name", "line", "ts", "process", "order", "mode", "flags"),
    [
        ("pagealloc_6.9.0-rc7_order4_gfp_names_cpuset.log", 1, "1976.217652", "perf", 4, "0xdc0",
         ("GFP_KERNEL", "__GFP_ZERO")),
        ("pagealloc_5.4.19_dmesgT_order4_qemu.log", 1, "Mon Apr 20 15:08:07 2020",
         "kworker/u16:3", 4, "0x40dc0", ("GFP_KERNEL", "__GFP_COMP", "__GFP_ZERO")),
        ("pagealloc_4.9.56_csky_order10_meminfo.log", 1, "2161.623563", "xxxx", 10, "0x2084020",
         ("GFP_ATOMIC", "__GFP_COMP")),
    ],
)  # fmt: skip
def test_printed_names(corpus, name, line, ts, process, order, mode, flags) -> None:
    event = _only(corpus, name, PageAllocFailure)
    assert (event.line, event.timestamp, event.process) == (line, ts, process)
    assert (event.order, event.gfp_mask, event.gfp_flags) == (order, mode, flags)
    assert event.gfp_flags_source == "printed"
    assert event.gfp_era is None
    assert event.is_atomic is ("GFP_ATOMIC" in flags)


def test_csky_report_keeps_untimestamped_trace_and_mem_info(corpus) -> None:
    event = _only(corpus, "pagealloc_4.9.56_csky_order10_meminfo.log", PageAllocFailure)
    texts = [c.text for c in event.context]
    # The header names "xxxx" (anonymised in the source) while the dump line says AiApp;
    # the process is taken as printed in the header.
    assert texts[0].startswith("CPU: 0 PID: 179 Comm: AiApp")
    assert "Call Trace:" in texts
    trace = next(c for c in event.context if c.text == "Call Trace:")
    assert trace.timestamp is None and trace.line == 4
    assert "[<8004a246>] csky_systemcall+0x96/0xe0" in texts
    assert "Mem-Info:" in texts
    assert " free:62086 free_pcp:199 free_cma:60234" in texts
    assert texts[-1].startswith("Node 0 active_anon:13072kB")
    assert event.buddy_lines == ()
    assert event.kernel_version == "4.9.56"


def test_zfs_sample_ignores_the_boot_lines_before(corpus) -> None:
    event = _only(corpus, "pagealloc_3.3.0_gentoo_zfs_with_context.log", PageAllocFailure)
    assert [c.line for c in event.context] == list(range(10, 23))
    assert event.context[2].text.startswith(" <IRQ>  [<ffffffff81080e63>] ? warn_alloc_failed")


def test_arm_backtrace_is_context(corpus) -> None:
    event = _only(corpus, "pagealloc_arm_raspbian_usbnet.log", PageAllocFailure)
    assert len(event.context) == 12
    assert event.context[0].text.startswith("[<c0014a70>] (unwind_backtrace+0x0/0x130) from")


def test_rhel6_headers_only_summary(corpus) -> None:
    log = _log(corpus, "pagealloc_2.6.32-220_el6_headers_only_summary.log")
    assert [(e.line, e.timestamp, e.process) for e in log.events] == [
        (1, "Mar 18 14:39:17", "glusterfsd"),
        (2, "Mar 18 14:39:17", "swapper"),
        (3, "Mar 21 11:27:06", "swapper"),
        (4, "Mar 21 18:25:45", "swapper"),
        (5, "Mar 21 21:59:18", "swapper"),
    ]
    for event in log.events:
        assert isinstance(event, PageAllocFailure)
        assert (event.order, event.gfp_mask, event.context) == (1, "0x20", ())
        assert event.is_atomic
    assert log.lines_read == 5


# --- OOM --------------------------------------------------------------------------


def test_oom_2_6_30_full_report(corpus) -> None:
    event = _only(corpus, "oom_2.6.30_full_report_syslog.log", OomInvoked)
    assert (event.line, event.timestamp, event.process) == (1, "Jun 18 07:44:52", "apt-check")
    assert (event.gfp_mask, event.order) == ("0x201da", 0)
    # 2.6.30 printed oom_adj; oom_score_adj did not exist yet.
    assert (event.oom_adj, event.oom_score_adj) == (0, None)
    # 0x201da = HARDWALL|COLD|FS|IO|WAIT|MOVABLE|HIGHMEM: a page-cache readahead fault.
    assert event.gfp_flags_source == "decoded"
    assert {"GFP_HIGHUSER_MOVABLE", "__GFP_COLD"} <= set(event.gfp_flags)
    assert event.buddy_lines == (
        "DMA: 64*4kB 77*8kB 45*16kB 18*32kB 4*64kB 2*128kB 2*256kB 3*512kB 1*1024kB "
        "1*2048kB 0*4096kB = 7800kB",
        "DMA32: 871*4kB 149*8kB 1*16kB 2*32kB 1*64kB 0*128kB 1*256kB 1*512kB 0*1024kB "
        "0*2048kB 0*4096kB = 5588kB",
    )
    assert event.context[-1].text == "248816 pages non-shared"
    assert event.kernel_version == "2.6.30"
    assert not event.memcg


def test_oom_4_15_header_with_space_and_slash_in_name(corpus) -> None:
    event = _only(corpus, "oom_4.15.0-108_kvm_header_only.log", OomInvoked)
    assert (event.process, event.timestamp) == ("CPU 0/KVM", "Jul 16 11:53:24")
    assert (event.gfp_mask, event.gfp_flags) == ("0x15000c0", ("GFP_KERNEL_ACCOUNT",))
    assert (event.order, event.oom_score_adj, event.oom_adj) == (0, 0, None)
    assert event.kernel_version == "4.15.0-108-generic"
    assert len(event.context) == 3


def test_oom_kill_process_or_sacrifice_child_counts_once(corpus) -> None:
    kill = _only(corpus, "oom_4.x_journal_kill_process_sacrifice_child.log", OomKill)
    assert (kill.line, kill.timestamp) == (2, "May 07 21:43:54")
    assert (kill.victim_pid, kill.victim_process) == (27438, "R")
    assert (kill.total_vm_kib, kill.anon_rss_kib, kill.file_rss_kib, kill.shmem_rss_kib) == (
        38349780,
        1041924,
        4,
        0,
    )
    assert kill.score == 31
    assert not kill.memcg


def test_oom_killed_and_reaper_burst(corpus) -> None:
    log = _log(corpus, "oom_5.x_killed_and_oom_reaper_burst.log")
    kills = [
        (e.line, e.victim_pid, e.victim_process, e.total_vm_kib, e.anon_rss_kib, e.file_rss_kib,
         e.shmem_rss_kib)
        for e in log.events
    ]  # fmt: skip
    # oom_reaper lines report the same processes after the fact: not kills.
    assert kills == [
        (1, 15784, "python3", 11964, 4288, 3028, 0),
        (3, 15925, "(resolved)", 168424, 4064, 3584, 0),
        (5, 15783, "python3", 11964, 4288, 3028, 0),
        (7, 15934, "(resolved)", 168424, 4064, 3584, 0),
    ]
    assert all(isinstance(e, OomKill) and not e.memcg for e in log.events)
    assert log.events[0].timestamp == "May 15 23:09:30"


@pytest.mark.parametrize(
    "name",
    [
        "oom_5.x_sparc64_meminfo_fragment_kernel_misc.log",
        "oom_6.8_tasks_state_example_commit.log",
        "oom_6.x_dmesgT_tasks_state_rss_anon.log",
        "oom_6.x_rpi_cma_node_zone_fragment.log",
    ],
)
def test_oom_fragments_without_header_or_kill_have_no_events(corpus, name) -> None:
    # These excerpts hold only the middle of a report (Mem-Info, task table): a reader
    # sees no "invoked oom-killer" line and no "Killed process" line.
    log = _log(corpus, name)
    assert log.events == ()
    assert log.lines_read == len((corpus / name).read_text().splitlines())
    assert not log.truncated


# --- Xen balloon --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "line", "ts", "lines"),
    [
        ("balloon_dom0_journal_init.log", 3, "May 02 08:02:43", 6),
        ("balloon_pv_guest_console_no_timestamps.log", 9, None, 18),
        ("balloon_arm64_dmesg_init.log", 4, "2.039515", 7),
    ],
)
def test_balloon_init(corpus, name, line, ts, lines) -> None:
    event = _only(corpus, name, BalloonMessage)
    assert (event.line, event.timestamp, event.message) == (
        line,
        ts,
        "Initialising balloon driver",
    )
    assert _log(corpus, name).lines_read == lines


def test_every_kernlog_sample_parses_the_same_from_bytes(corpus) -> None:
    names = [
        line.split("\t")[0]
        for line in (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]
        if line.split("\t")[1].startswith("kernlog-")
    ]
    assert len(names) >= 24
    for name in names:
        raw = (corpus / name).read_bytes()
        assert parse_kernlog(raw) == parse_kernlog(raw.decode("utf-8", "replace")), name
