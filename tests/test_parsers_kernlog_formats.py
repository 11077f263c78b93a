"""Kernel-log parsing on synthetic logs: every wrapping, era and damage seen in the wild."""

from __future__ import annotations

import time

import pytest

from xenaudit.parsers.interface import BalloonMessage, OomInvoked, OomKill, PageAllocFailure
from xenaudit.parsers.kernlog import iter_kernlog_events, parse_kernlog

HEADER = "swapper/0: page allocation failure: order:2, mode:0x2080020(GFP_ATOMIC)"


def _events(text: str | bytes):
    return parse_kernlog(text).events


def _one(text: str | bytes, kind: type = PageAllocFailure):
    events = _events(text)
    assert len(events) == 1, events
    assert isinstance(events[0], kind)
    return events[0]


# --- prefixes ------------------------------------------------------------------------

PREFIXES = [
    ("", None),
    ("[ 1234.567890] ", "1234.567890"),
    ("[2313169.749777] ", "2313169.749777"),
    ("[Tue Nov 25 10:00:00 2026] ", "Tue Nov 25 10:00:00 2026"),
    ("[Mon Dec  8 17:51:31 2025] ", "Mon Dec  8 17:51:31 2025"),
    ("Nov 25 10:00:00 guest01 kernel: ", "Nov 25 10:00:00"),
    ("Nov  5 09:03:07 guest01 kernel: [   12.340000] ", "Nov  5 09:03:07"),
    ("Nov 25 10:00:00.123456 guest01 kernel: ", "Nov 25 10:00:00.123456"),
    ("2026-11-25T10:00:00+0000 guest01 kernel: ", "2026-11-25T10:00:00+0000"),
    ("2026-11-25T10:00:00.123456+01:00 guest01 kernel: ", "2026-11-25T10:00:00.123456+01:00"),
    ("Tue 2026-11-25 10:00:00 UTC guest01 kernel: ", "Tue 2026-11-25 10:00:00 UTC"),
    ("[ 1234.567890] guest01 kernel: ", "1234.567890"),
    ("kernel: ", None),
    ("<4>", None),
    ("<4>[   12.345678] ", "12.345678"),
    ("kern  :warn  : [   12.345678] ", "12.345678"),
    ("kern  :warn  : ", None),
    ("kern  :warn  : [Tue Nov 25 10:00:00 2026] ", "Tue Nov 25 10:00:00 2026"),
]


@pytest.mark.parametrize(("prefix", "timestamp"), PREFIXES)
def test_every_prefix_format(prefix: str, timestamp: str | None) -> None:
    event = _one(f"{prefix}{HEADER}\n{prefix}Call Trace:\n")
    assert event.process == "swapper/0"
    assert event.timestamp == timestamp
    assert (event.order, event.gfp_mask, event.gfp_flags) == (2, "0x2080020", ("GFP_ATOMIC",))
    assert event.context[0].text == "Call Trace:"
    assert event.context[0].timestamp == timestamp


@pytest.mark.parametrize(("prefix", "timestamp"), PREFIXES)
def test_every_prefix_format_for_kills_and_balloon(prefix: str, timestamp: str | None) -> None:
    text = (
        f"{prefix}Out of memory: Killed process 42 (java) total-vm:100kB, anon-rss:60kB, "
        f"file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:8kB oom_score_adj:0\n"
        f"{prefix}xen:balloon: Cannot add additional memory (-17)\n"
    )
    kill, balloon = _events(text)
    assert isinstance(kill, OomKill) and kill.timestamp == timestamp
    assert (kill.victim_pid, kill.victim_process, kill.anon_rss_kib) == (42, "java", 60)
    assert isinstance(balloon, BalloonMessage) and balloon.timestamp == timestamp
    assert balloon.message == "Cannot add additional memory (-17)"


def test_daemon_lines_in_a_syslog_file_are_not_kernel_events() -> None:
    text = (
        "Nov 25 10:00:00 guest01 earlyoom[611]: Killed process 42 (java) total-vm:100kB\n"
        "Nov 25 10:00:01 guest01 myapp[7]: swapper: page allocation failure: order:0, mode:0x20\n"
        "Nov 25 10:00:02 guest01 kernel: Killed process 43 (java) total-vm:200kB, anon-rss:1kB\n"
    )
    (kill,) = _events(text)
    assert isinstance(kill, OomKill)
    assert (kill.line, kill.victim_pid) == (3, 43)


# --- damage: line endings, encodings, escapes, long lines ------------------------------


def test_crlf_line_endings() -> None:
    text = (
        f"[ 1.000000] {HEADER}\r\n[ 1.000001] Call Trace:\r\n[ 1.000002]  dump_stack+0x6d/0x8b\r\n"
    )
    event = _one(text)
    assert [c.text for c in event.context] == ["Call Trace:", " dump_stack+0x6d/0x8b"]
    assert parse_kernlog(text).lines_read == 3


def test_lone_carriage_returns_split_a_line_without_changing_line_numbers() -> None:
    text = f"[ 1.0] progress 10%\r[ 1.0] progress 20%\r[ 1.1] {HEADER}\n[ 1.2] Call Trace:\n"
    event = _one(text)
    assert (event.line, event.timestamp, event.context[0].line) == (1, "1.1", 2)


def test_bytes_that_are_not_utf8() -> None:
    raw = (
        b"[ 1.0] \xff\xfe\xfd garbage \xc3\x28 line\n"
        b"[ 2.0] caf\xe9 app: page allocation failure: order:1, mode:0x20\n"
        b"[ 2.1] Call Trace:\n"
    )
    event = _one(raw)
    assert event.process == "caf\ufffd app"
    assert (event.line, event.order) == (2, 1)
    assert parse_kernlog(raw) == parse_kernlog(raw.decode("utf-8", "replace"))


def test_nul_bytes_and_ansi_colours_are_ignored() -> None:
    text = (
        "\x00\x00\x00\x00\n"
        "\x1b[32m[    1.000000] \x1b[0m\x1b[33mswapper: \x1b[0mpage allocation failure. order:0, "
        "mode:0x20\n"
        "[    1.000001] Pid: 0, comm: swapper Not tainted 3.2.0 #1\x00\x00\n"
    )
    event = _one(text)
    assert (event.line, event.timestamp, event.process, event.gfp_mask) == (
        2,
        "1.000000",
        "swapper",
        "0x20",
    )
    assert event.kernel_version == "3.2.0"
    assert event.context[0].text == "Pid: 0, comm: swapper Not tainted 3.2.0 #1"


def test_absurdly_long_lines_are_capped_and_stay_linear() -> None:
    giant = "x" * 2_000_000
    many_markers = ("page allocation failure " * 50_000)[:1_500_000]
    text = f"[ 1.0] {giant}\n[ 1.1] {many_markers}\n[ 2.0] {HEADER}\n[ 2.1] Call Trace: {giant}\n"
    started = time.perf_counter()
    log = parse_kernlog(text)
    assert time.perf_counter() - started < 5
    assert [e.line for e in log.events] == [3]
    assert len(log.events[0].context[0].text) <= 4096
    assert log.lines_read == 4


def test_marker_beyond_the_line_cap_is_not_read() -> None:
    text = "[ 1.0] " + "y" * 5000 + " swapper: page allocation failure: order:0, mode:0x20\n"
    assert _events(text) == ()
    assert _events(text.encode()) == ()


# --- wrapped and interleaved lines -------------------------------------------------------


def test_header_wrapped_inside_the_names_is_rejoined() -> None:
    text = (
        "[ 5.0] kworker/u16:2: page allocation failure: order:2, mode:0x2080020(GFP_AT\n"
        "OMIC|__GFP_COMP)\n"
        "[ 5.0] CPU: 1 PID: 77 Comm: kworker/u16:2 Not tainted 4.9.0-8-amd64 #1\n"
    )
    event = _one(text)
    assert (event.line, event.process) == (1, "kworker/u16:2")
    assert event.gfp_flags == ("GFP_ATOMIC", "__GFP_COMP")
    assert event.kernel_version == "4.9.0-8-amd64"


def test_header_wrapped_before_the_mode_is_rejoined_with_a_space() -> None:
    text = "[ 5.0] swapper: page allocation failure. order:0,\n mode:0x20\n[ 5.1] Call Trace:\n"
    event = _one(text)
    assert (event.gfp_mask, event.gfp_flags[0]) == ("0x20", "GFP_ATOMIC")


def test_header_cut_for_good_keeps_what_was_printed() -> None:
    text = (
        "[ 5.0] java: page allocation failure: order:3, mode:0x24201ca(GFP_HIGHUSER_MOVABLE|__GF\n"
    )
    text += "[ 5.1] CPU: 0 PID: 9 Comm: java Not tainted 4.4.0-21-generic #37\n"
    event = _one(text)
    assert (event.order, event.gfp_mask) == (3, "0x24201ca")
    assert (event.gfp_flags, event.gfp_flags_source) == (("GFP_HIGHUSER_MOVABLE",), "printed")
    assert event.context[0].line == 2


def test_lines_from_other_cpus_inside_a_report() -> None:
    text = "\n".join(
        [
            "[ 9.0] ksoftirqd/1: page allocation failure: order:1, mode:0x20",
            "[ 9.0] CPU: 1 PID: 14 Comm: ksoftirqd/1 Not tainted 3.16.0-4-amd64 #1",
            "[ 9.0] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex",
            "[ 9.0] Call Trace:",
            "[ 9.0] Mem-Info:",
            "[ 9.0] Node 0 DMA32: 4*4kB (UEM) 3*8kB (UM) 0*16kB 0*32kB = 40kB",
            "[ 9.1] usb 1-1: USB disconnect, device number 2",
            "[ 9.1] usb 1-2: new high-speed USB device number 3 using xhci_hcd",
            "[ 9.1] EXT4-fs (xvda1): re-mounted. Opts: errors=remount-ro",
            "[ 9.1] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready",
            "[ 9.2] Node 0 Normal: 1*4kB 0*8kB = 4kB",
            "",
        ]
    )
    event = _one(text)
    texts = [c.text for c in event.context]
    # One foreign line amid report lines is kept (it was printed amid the report);
    # four in a row end the report, so the later buddy line is not attached.
    assert "e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex" in texts
    assert event.buddy_lines == ("Node 0 DMA32: 4*4kB (UEM) 3*8kB (UM) 0*16kB 0*32kB = 40kB",)
    assert texts[-1].startswith("Node 0 DMA32")


def test_two_reports_interleaved_from_two_cpus() -> None:
    text = "\n".join(
        [
            "[ 9.0] swapper/0: page allocation failure: order:0, mode:0x20",
            "[ 9.0] java: page allocation failure: order:3, mode:0x20",
            "[ 9.0] Pid: 0, comm: swapper Not tainted 3.2.0 #1",
            "[ 9.0] Call Trace:",
            "",
        ]
    )
    first, second = _events(text)
    assert (first.process, first.line, first.context) == ("swapper/0", 1, ())
    assert (second.process, second.line, len(second.context)) == ("java", 2, 2)


def test_context_is_capped() -> None:
    lines = [f"[ 1.0] {HEADER}", "[ 1.0] Call Trace:"]
    lines += [f"[ 1.0]  func{i}+0x10/0x20" for i in range(1000)]
    event = _one("\n".join(lines) + "\n")
    assert len(event.context) == 200


# --- the three page-allocation-failure eras -------------------------------------------------


def test_era_2_6_and_3_x_period_separator_hex_only() -> None:
    event = _one("swapper: page allocation failure. order:0, mode:0x20\n")
    assert (event.process, event.order, event.gfp_mask) == ("swapper", 0, "0x20")
    assert (event.gfp_flags, event.gfp_flags_source) == (("GFP_ATOMIC", "__GFP_HIGH"), "decoded")
    assert event.gfp_era == "pre-4.4"
    assert event.is_atomic


def test_era_4_x_symbolic_names() -> None:
    event = _one("kworker/u16:2: page allocation failure: order:2, mode:0x2080020(GFP_ATOMIC)\n")
    assert (event.process, event.order, event.gfp_mask) == ("kworker/u16:2", 2, "0x2080020")
    assert (event.gfp_flags, event.gfp_flags_source) == (("GFP_ATOMIC",), "printed")
    assert event.is_atomic


def test_era_5_and_6_with_nodemask_and_cpuset() -> None:
    event = _one(
        "Web Content (deleted): page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), "
        "nodemask=(null),cpuset=/,mems_allowed=0\n"
    )
    assert (event.process, event.order, event.gfp_mask) == ("Web Content (deleted)", 0, "0xa20")
    assert event.gfp_flags == ("GFP_ATOMIC",)
    assert event.is_atomic


def test_sleeping_allocation_is_not_atomic() -> None:
    event = _one("mysqld: page allocation failure: order:4, mode:0xcc0(GFP_KERNEL)\n")
    assert not event.is_atomic


def test_decoding_uses_the_kernel_version_of_the_report() -> None:
    # 0x2080020 only means GFP_ATOMIC|__GFP_COMP with the 4.4 layout.
    text = (
        "swapper: page allocation failure: order:0, mode:0x2084020\n"
        "CPU: 0 PID: 0 Comm: swapper Not tainted 4.4.0-21-generic #37-Ubuntu\n"
    )
    event = _one(text)
    assert event.gfp_era == "4.4"
    assert {"GFP_ATOMIC", "__GFP_COMP", "__GFP_KSWAPD_RECLAIM"} <= set(event.gfp_flags)
    assert event.is_atomic


def test_decoding_uses_the_boot_banner_or_the_caller_hint() -> None:
    body = "java: page allocation failure: order:0, mode:0x24201ca\n"
    banner = "[    0.000000] Linux version 4.4.0-21-generic (buildd@lgw01) #37-Ubuntu SMP\n"
    assert _one(banner + body).gfp_era == "4.4"
    assert "GFP_HIGHUSER_MOVABLE" in _one(banner + body).gfp_flags
    hinted = parse_kernlog(body, kernel_release="4.4.0-21-generic").events[0]
    assert hinted.gfp_era == "4.4"
    assert _one(body).gfp_era == "pre-4.4"


def test_callbacks_suppressed_before_a_report() -> None:
    text = (
        "[ 7.0] warn_alloc: 12 callbacks suppressed\n"
        f"[ 7.0] {HEADER}\n"
        "[ 8.0] net_ratelimit: 5 callbacks suppressed\n"
        f"[ 8.0] {HEADER}\n"
    )
    first, second = _events(text)
    assert (first.callbacks_suppressed, second.callbacks_suppressed) == (12, 0)


# --- OOM formats ------------------------------------------------------------------------


def test_modern_oom_report_invoked_constraint_kill_and_reaper() -> None:
    text = "\n".join(
        [
            "[ 50.0] python3 invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), "
            "order=0, oom_score_adj=-250",
            "[ 50.0] CPU: 0 PID: 1532 Comm: python3 Not tainted 5.15.0-91-generic #101-Ubuntu",
            "[ 50.0] Call Trace:",
            "[ 50.0]  <TASK>",
            "[ 50.0]  dump_stack_lvl+0x4a/0x63",
            "[ 50.0] Mem-Info:",
            "[ 50.0] Node 0 DMA32: 3*4kB (U) 1*8kB (M) 0*16kB = 20kB",
            "[ 50.0] Tasks state (memory values in pages):",
            "[ 50.0] [  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents "
            "oom_score_adj name",
            "[ 50.0] [   1532]     0  1532    48829    41060   393216        0"
            "          -250 python3",
            "[ 50.0] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
            "mems_allowed=0,global_oom,task_memcg=/,task=python3,pid=1532,uid=0",
            "[ 50.0] Out of memory: Killed process 1532 (python3) total-vm:195316kB, "
            "anon-rss:164240kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:384kB "
            "oom_score_adj:-250",
            "[ 50.1] oom_reaper: reaped process 1532 (python3), now anon-rss:0kB, "
            "file-rss:0kB, shmem-rss:0kB",
            "",
        ]
    )
    invoked, kill = _events(text)
    assert isinstance(invoked, OomInvoked) and isinstance(kill, OomKill)
    assert (invoked.process, invoked.gfp_mask, invoked.order) == ("python3", "0x100cca", 0)
    assert (invoked.oom_score_adj, invoked.gfp_flags) == (-250, ("GFP_HIGHUSER_MOVABLE",))
    assert (invoked.constraint, invoked.memcg) == ("CONSTRAINT_NONE", False)
    assert invoked.buddy_lines == ("Node 0 DMA32: 3*4kB (U) 1*8kB (M) 0*16kB = 20kB",)
    assert invoked.kernel_version == "5.15.0-91-generic"
    assert (kill.line, kill.victim_pid, kill.victim_process) == (12, 1532, "python3")
    assert (kill.total_vm_kib, kill.anon_rss_kib, kill.file_rss_kib, kill.shmem_rss_kib) == (
        195316,
        164240,
        0,
        0,
    )
    assert (kill.uid, kill.pgtables_kib, kill.oom_score_adj, kill.memcg) == (0, 384, -250, False)


def test_memory_cgroup_kill_new_format() -> None:
    text = (
        "bash invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n"
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/system.slice/app.service,task_memcg=/system.slice/app.service,task=app,"
        "pid=900,uid=1000\n"
        "Memory cgroup out of memory: Killed process 900 (app) total-vm:8000kB, "
        "anon-rss:5000kB, file-rss:100kB, shmem-rss:0kB, UID:1000 pgtables:60kB "
        "oom_score_adj:0\n"
    )
    invoked, kill = _events(text)
    assert (invoked.constraint, invoked.memcg) == ("CONSTRAINT_MEMCG", True)
    assert kill.memcg and kill.uid == 1000


def test_memory_cgroup_kill_old_format_counts_once() -> None:
    text = (
        "[ 3.0] app invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=0\n"
        "[ 3.0] app cpuset=/ mems_allowed=0\n"
        "[ 3.0] Pid: 900, comm: app Not tainted 3.10.0-327.el7.x86_64 #1\n"
        "[ 3.0] Task in /app killed as a result of limit of /app\n"
        "[ 3.0] memory: usage 524288kB, limit 524288kB, failcnt 41\n"
        "[ 3.0] Memory cgroup out of memory: Kill process 900 (app) score 997 or sacrifice child\n"
        "[ 3.0] Killed process 900 (app) total-vm:600000kB, anon-rss:520000kB, file-rss:1000kB\n"
    )
    invoked, kill = _events(text)
    assert invoked.memcg and invoked.oom_score_adj == 0
    assert "GFP_KERNEL" in invoked.gfp_flags
    assert (kill.line, kill.victim_pid, kill.score, kill.memcg) == (7, 900, 997, True)
    assert (kill.total_vm_kib, kill.anon_rss_kib, kill.file_rss_kib, kill.shmem_rss_kib) == (
        600000,
        520000,
        1000,
        None,
    )


def test_sacrifice_child_then_child_killed_is_one_kill() -> None:
    text = (
        "Out of memory: Kill process 100 (parent) score 5 or sacrifice child\n"
        "Killed process 101 (child) total-vm:10kB, anon-rss:5kB, file-rss:1kB\n"
    )
    (kill,) = _events(text)
    assert (kill.victim_pid, kill.victim_process, kill.score) == (101, "child", None)


def test_sacrifice_line_without_killed_line_is_still_a_kill() -> None:
    text = (
        "[ 1.0] java invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=0\n"
        "[ 1.0] Out of memory: Kill process 77 (java) score 900 or sacrifice child\n"
        "[ 9.0] usb 1-1: USB disconnect, device number 2\n"
    )
    invoked, kill = _events(text)
    assert isinstance(invoked, OomInvoked)
    assert (kill.line, kill.victim_pid, kill.victim_process, kill.score) == (2, 77, "java", 900)
    assert kill.total_vm_kib is None and kill.anon_rss_kib is None


@pytest.mark.parametrize(
    ("line", "pid", "name", "numbers"),
    [
        # RHEL 6
        (
            "Killed process 3458, UID 27, (mysqld) total-vm:2338960kB, anon-rss:1624092kB, "
            "file-rss:92kB",
            3458,
            "mysqld",
            (2338960, 1624092, 92, None),
        ),
        # 2.6.3x
        (
            "Killed process 1234 (foo) vsz:1000kB, anon-rss:500kB, file-rss:20kB",
            1234,
            "foo",
            (1000, 500, 20, None),
        ),
        # 2.6.2x and older: no numbers
        ("Out of Memory: Killed process 1234 (foo).", 1234, "foo", (None, None, None, None)),
        # nested parentheses in the name
        (
            "Out of memory: Killed process 15925 ((sd-pam)) total-vm:1kB, anon-rss:2kB, "
            "file-rss:3kB, shmem-rss:4kB",
            15925,
            "(sd-pam)",
            (1, 2, 3, 4),
        ),
        ("Killed process 7 (Web Content) total-vm:9kB", 7, "Web Content", (9, None, None, None)),
    ],
)
def test_kill_line_formats(line: str, pid: int, name: str, numbers: tuple) -> None:
    kill = _one(line + "\n", OomKill)
    assert (kill.victim_pid, kill.victim_process) == (pid, name)
    assert (kill.total_vm_kib, kill.anon_rss_kib, kill.file_rss_kib, kill.shmem_rss_kib) == numbers


def test_old_oom_header_variants() -> None:
    text = (
        "java invoked oom-killer: gfp_mask=0x201d2, order=0, oomkilladj=0\n"
        "bash invoked oom-killer: gfp_mask=0x280da, order=0, oom_adj=0, oom_score_adj=0\n"
        "kworker/0:1 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=-1, oom_score_adj=0\n"
    )
    rhel5, mid, sysrq = _events(text)
    assert (rhel5.process, rhel5.oom_adj, rhel5.oom_score_adj) == ("java", 0, None)
    assert (mid.oom_adj, mid.oom_score_adj, mid.order) == (0, 0, 0)
    assert (sysrq.process, sysrq.order, sysrq.gfp_flags) == ("kworker/0:1", -1, ("GFP_KERNEL",))


# --- balloon -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["xen:balloon", "xen/balloon", "xen_balloon", "xen-balloon"])
def test_balloon_prefixes(prefix: str) -> None:
    event = _one(f"[ 0.5] {prefix}: Initialising balloon driver.\n", BalloonMessage)
    assert event.message == "Initialising balloon driver."


def test_other_balloons_are_not_xen_messages() -> None:
    assert _events("[ 1.0] virtio_balloon virtio3: Out of puff! Can't get 1 pages\n") == ()


# --- truncation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        (f"567890] swapper: hello\n[ 1.0] {HEADER}\n", True),
        (f"ov 25 10:00:00 host kernel: hello\nNov 25 10:00:01 host kernel: {HEADER}\n", True),
        (f"swapper: hello world\n[ 1.0] {HEADER}\n", True),
        (f"[ 1.0] {HEADER}\n[ 1.1] Call Trace:\n[ 1.2] mode:0x20(GFP_ATOM", True),
        (f"[ 1.0] {HEADER}\n[ 1.1", True),
        (f"[ 1.0] {HEADER}\n[ 1.1] CPU: 0 PID: 1 Comm: x Not tainted 4.9.0 (Debian", True),
        (f"[ 1.0] {HEADER}\n[ 1.1] Call Trace:", False),
        (f"[ 1.0] {HEADER}\n[ 1.1] Call Trace:\n", False),
        ("plain console output\nwithout any prefix", False),
        (
            "-- Logs begin at Mon 2026-11-23 08:00:01 UTC, end at Tue 2026-11-25 10:00:00 UTC. --\n"
            f"Nov 25 10:00:00 guest01 kernel: {HEADER}\n",
            False,
        ),
        ("", False),
    ],
)
def test_truncated_only_when_it_looks_cut(text: str, cut: bool) -> None:
    # A last line cut between two words ("Call Tr") cannot be told from a complete
    # one; what can be seen is a cut prefix, a cut header or an unclosed bracket.
    assert parse_kernlog(text).truncated is cut


# --- streaming ------------------------------------------------------------------------------


def test_iter_events_accepts_lines_with_or_without_terminators_and_bytes() -> None:
    lines = [f"[ 1.0] {HEADER}", "[ 1.1] Call Trace:", "[ 2.0] xen:balloon: hello"]
    expected = parse_kernlog("\n".join(lines) + "\n").events
    assert tuple(iter_kernlog_events(line + "\n" for line in lines)) == expected
    assert tuple(iter_kernlog_events(iter(lines))) == expected
    assert tuple(iter_kernlog_events(line.encode() + b"\n" for line in lines)) == expected


def test_events_come_in_input_order() -> None:
    text = (
        "[ 1.0] xen:balloon: Initialising balloon driver\n"
        f"[ 2.0] {HEADER}\n"
        "[ 2.1] Call Trace:\n"
        "[ 3.0] java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n"
        "[ 3.1] Out of memory: Killed process 9 (java) total-vm:1kB, anon-rss:1kB\n"
        "[ 4.0] xen:balloon: done\n"
    )
    log = parse_kernlog(text)
    assert [(e.kind, e.line) for e in log.events] == [
        ("balloon", 1),
        ("page_alloc_failure", 2),
        ("oom_invoked", 4),
        ("oom_kill", 5),
        ("balloon", 6),
    ]
    assert log.lines_read == 6


def test_events_keep_the_header_text_as_printed() -> None:
    log = (
        "<4>[ 8812.331204] swapper: page allocation failure. order:0, mode:0x20\n"
        "Nov 25 10:00:00 db kernel: [ 99.1] postgres invoked oom-killer: "
        "gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n"
        "Nov 25 10:00:00 db kernel: [ 99.2] Out of memory: Killed process 2231 (postgres) "
        "total-vm:1324556kB, anon-rss:912344kB, file-rss:4kB, shmem-rss:120032kB\n"
    )
    failure, invoked, kill = parse_kernlog(log).events
    assert failure.text == "swapper: page allocation failure. order:0, mode:0x20"
    assert invoked.text.startswith("postgres invoked oom-killer: gfp_mask=0x100cca(")
    assert kill.text.startswith("Out of memory: Killed process 2231 (postgres) total-vm:")


@pytest.mark.parametrize(
    ("line", "timestamp"),
    [
        (
            "<4>1 2026-11-25T10:00:02.000000+00:00 web01 kernel - - - Web Content: "
            "page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), nodemask=(null)",
            "2026-11-25T10:00:02.000000+00:00",
        ),
        (
            '<4>1 - web01 kernel - - [origin ip="192.0.2.1"] Web Content: '
            "page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), nodemask=(null)",
            None,
        ),
    ],
)
def test_rfc5424_syslog_lines(line: str, timestamp: str | None) -> None:
    (event,) = parse_kernlog(line + "\n").events
    assert isinstance(event, PageAllocFailure)
    assert event.process == "Web Content"
    assert event.timestamp == timestamp
    assert event.gfp_flags == ("GFP_ATOMIC",)


def test_rfc5424_lines_from_other_programs_are_not_kernel_events() -> None:
    line = (
        "<30>1 2026-11-25T10:00:02Z web01 myapp 99 - - myapp: page allocation failure: "
        "order:0, mode:0x20\n"
    )
    assert parse_kernlog(line).events == ()
