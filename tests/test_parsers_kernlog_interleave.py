"""Reports as multi-vCPU guests, vendor kernels, old kernels and mail deliver them.

Interleaved cases are built from real report text (tests/corpus) the way the
kernel's ring buffer interleaves CPUs: whole lines alternating, printk caller ids,
vendor task prefixes, and a second CPU's line glued into the middle of a line.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from xenaudit.logscan.cli import main as logscan_main
from xenaudit.logscan.mail import looks_like_mail, unmail
from xenaudit.parsers.events import counts_to_json, event_to_json
from xenaudit.parsers.interface import OomInvoked, OomKill, PageAllocFailure
from xenaudit.parsers.kernlog import EventKeeper, parse_kernlog


def _report(corpus: Path, name: str) -> list[str]:
    """Message texts (dmesg prefix removed) of a corpus report."""
    lines = (corpus / name).read_text().splitlines()
    return [line.split("] ", 1)[1] if line.startswith("[") else line for line in lines]


def _alternate(a: list[str], b: list[str]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            out.append((0, a[i]))
        if i < len(b):
            out.append((1, b[i]))
    return out


def test_caller_ids_keep_each_cpus_report_whole(corpus) -> None:
    a = _report(corpus, "pagealloc_3.8.0_order9_pfring.log")
    b = _report(corpus, "pagealloc_4.3.3_coreos_gce_softirq.log")
    text = "".join(
        f"[{100 + i / 1e6:12.6f}] [    C{cpu}] {line}\n"
        for i, (cpu, line) in enumerate(_alternate(a, b))
    )
    log = parse_kernlog(text)
    failures = [e for e in log.events if isinstance(e, PageAllocFailure)]
    assert [(f.order, f.pid is not None) for f in failures] == [(9, True), (0, True)]
    # Each report got its own dump line and kernel, not the other CPU's.
    assert failures[0].kernel_release.startswith("3.8.0")
    assert failures[1].kernel_release.startswith("4.3.3")
    assert failures[0].caller != failures[1].caller or failures[0].caller is None


def test_untagged_interleaving_matches_dump_lines_by_task(corpus) -> None:
    a = _report(corpus, "pagealloc_3.8.0_order9_pfring.log")
    b = _report(corpus, "pagealloc_4.3.3_coreos_gce_softirq.log")
    # Both headers first (two CPUs failing at once), then the bodies interleaved.
    lines = [a[0], b[0]] + [line for _, line in _alternate(a[1:], b[1:])]
    log = parse_kernlog("".join(f"[  50.{i:06d}] {line}\n" for i, line in enumerate(lines)))
    failures = [e for e in log.events if isinstance(e, PageAllocFailure)]
    assert len(failures) == 2
    assert failures[0].kernel_release.startswith("3.8.0")
    assert failures[1].kernel_release.startswith("4.3.3")


def test_a_storm_of_glued_lines_is_still_found(corpus) -> None:
    """A second CPU's message glued into the middle of a dump line (raw dmesg)."""
    report = _report(corpus, "pagealloc_4.3.3_coreos_gce_softirq.log")
    dump = next(i for i, line in enumerate(report) if line.startswith("CPU:"))
    lines = []
    for n in range(30):
        for i, line in enumerate(report):
            if i == dump and n % 2:
                cut = len(line) // 2
                lines.append(f"[ 9.{n:06d}] {line[:cut]}[ 9.{n:06d}] {report[0]}")
                lines.append(line[cut:])
            else:
                lines.append(f"[ 9.{n:06d}] {line}")
    log = parse_kernlog("\n".join(lines) + "\n", keep_per_kind=5)
    assert log.counts is not None
    assert log.counts.page_alloc_failures == 45  # 30 reports + 15 glued-in headers
    assert sum(isinstance(e, PageAllocFailure) for e in log.events) == 10
    glued = [e for e in log.events if isinstance(e, PageAllocFailure) and e.reconstructed]
    assert glued and all(e.process == report[0].split(":")[0] for e in glued)


def test_missing_process_name_comes_from_the_dump_line(corpus) -> None:
    report = _report(corpus, "pagealloc_4.3.3_coreos_gce_softirq.log")
    header = report[0]
    lines = [": " + header.split(": ", 1)[1], *report[1:]]
    log = parse_kernlog("".join(f"[ 1.{i:06d}] {line}\n" for i, line in enumerate(lines)))
    failure = next(e for e in log.events if isinstance(e, PageAllocFailure))
    dump = next(line for line in report if line.startswith("CPU:"))
    assert failure.process == dump.split("Comm: ", 1)[1].split(" ")[0]
    assert failure.pid == int(dump.split("PID: ", 1)[1].split()[0])


def test_vendor_task_prefix_is_stripped(corpus) -> None:
    report = _report(corpus, "pagealloc_4.3.3_coreos_gce_softirq.log")
    task = report[0].split(":")[0]
    text = "".join(
        f"[309805.{i:06d}s][pid:1361,cpu5,{task}]{line}\n" for i, line in enumerate(report)
    )
    failure = next(e for e in parse_kernlog(text).events if isinstance(e, PageAllocFailure))
    assert failure.process == task
    assert failure.timestamp == "309805.000000"


def test_call_trace_names_the_caller(corpus) -> None:
    log = parse_kernlog((corpus / "pagealloc_6.9.0-rc7_order4_gfp_names_cpuset.log").read_text())
    failure = next(e for e in log.events if isinstance(e, PageAllocFailure))
    assert "warn_alloc" in failure.call_trace
    assert failure.caller is not None
    assert not failure.caller.startswith(("__alloc_pages", "warn_alloc", "dump_stack"))
    assert failure.call_trace.index(failure.caller) > failure.call_trace.index("warn_alloc")
    assert failure.kernel_release.startswith("6.9.0-rc7")


def test_gfp_decoded_for_the_kernel_that_wrote_the_report() -> None:
    """0x10 was __GFP_WAIT before 4.4 and __GFP_RECLAIMABLE after: the log's own
    banner decides, not the running kernel."""
    text = (
        "[    0.000000] Linux version 3.2.0-4-amd64 (debian-kernel@lists.debian.org)\n"
        "[  100.000000] kworker/0:1: page allocation failure: order:0, mode:0x10\n"
    )
    failure = parse_kernlog(text, kernel_release="5.10.0-21-amd64").events[0]
    assert isinstance(failure, PageAllocFailure)
    assert failure.gfp_era == "pre-4.4"
    assert "__GFP_WAIT" in failure.gfp_flags
    assert failure.kernel_release == "3.2.0-4-amd64"
    assert not failure.is_atomic


def test_banner_after_a_reboot_changes_the_era() -> None:
    text = (
        "[    0.000000] Linux version 3.2.0-4-amd64 (x)\n"
        "[  100.000000] a: page allocation failure: order:0, mode:0x20\n"
        "[    0.000000] Linux version 4.4.0-21-generic (buildd@lgw01)\n"
        "[  200.000000] b: page allocation failure: order:0, mode:0x2000000\n"
    )
    first, second = parse_kernlog(text).events
    assert isinstance(first, PageAllocFailure) and isinstance(second, PageAllocFailure)
    assert (first.gfp_era, second.gfp_era) == ("pre-4.4", "4.4")
    assert second.gfp_flags[0] == "GFP_NOWAIT"
    assert second.opportunistic and not first.opportunistic


def test_opportunistic_requests_are_flagged() -> None:
    text = (
        "a: page allocation failure: order:3, mode:0x10cc0(GFP_KERNEL|__GFP_NORETRY), "
        "nodemask=(null)\n"
        "b: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), nodemask=(null)\n"
        "c: page allocation failure: order:0, mode:0x800(GFP_NOWAIT), nodemask=(null)\n"
    )
    log = parse_kernlog(text)
    assert [getattr(e, "opportunistic", None) for e in log.events] == [True, False, True]
    assert log.counts is not None and log.counts.opportunistic == 2


def test_lowercase_kill_line_is_a_kill(corpus) -> None:
    log = parse_kernlog((corpus / "oom_2.6.30-rc7_memcg_lowercase_kill_or_a_child.log").read_text())
    kills = [e for e in log.events if isinstance(e, OomKill)]
    invoked = [e for e in log.events if isinstance(e, OomInvoked)]
    assert [(k.victim_pid, k.victim_process, k.memcg, k.score) for k in kills] == [
        (2801, "big_memory", True, 0)
    ]
    assert invoked and invoked[0].memcg and invoked[0].kernel_release == "2.6.30-rc7"
    assert invoked[0].pid == 2801


def test_lowercase_kill_line_without_tail() -> None:
    log = parse_kernlog("[ 5.000000] Out of memory: kill process 2716 (mysqld)\n")
    (kill,) = log.events
    assert isinstance(kill, OomKill)
    assert (kill.victim_pid, kill.victim_process, kill.score) == (2716, "mysqld", None)
    assert parse_kernlog("systemd[1]: kill process 1 (x) with SIGKILL\n").events == ()


def test_mail_with_glued_kill_lines(corpus, capsys) -> None:
    data = (corpus / "mail_2.6.20_oom_kill_lines_glued.eml").read_bytes()
    assert looks_like_mail(data)
    code = logscan_main(["--json", str(corpus / "mail_2.6.20_oom_kill_lines_glued.eml")])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["kind"], e["victim_pid"]) for e in events] == [
        ("oom_kill", 19271),
        ("oom_kill", 12475),
        ("oom_kill", 12475),
    ]
    assert all(e["reconstructed"] for e in events)


def test_mail_quoted_printable_and_nested_quotes(corpus, capsys) -> None:
    path = corpus / "mail_2.6.32_oom_qp_nested_quotes.eml"
    text = unmail(path.read_bytes())
    assert "gfp_mask=0xd0, order=0, oom_adj=-17" in text
    assert "=3D" not in text and "\n>" not in text
    code = logscan_main(["--json", str(path)])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    invoked = [e for e in events if e["kind"] == "oom_invoked"]
    kills = [e for e in events if e["kind"] == "oom_kill"]
    assert [(e["process"], e["gfp_mask"], e["order"]) for e in invoked] == [
        ("redis-server", "0xd0", 0)
    ] * 3
    # The kernel chose the same victim three times without killing it (the bug the
    # mail reports): one kill, not three.
    assert [(k["victim_pid"], k["victim_process"], k["memcg"]) for k in kills] == [
        (6016, "java", True)
    ]
    assert all(e["reconstructed"] for e in events)


def test_plain_logs_are_not_taken_for_mail(corpus) -> None:
    for path in sorted(corpus.glob("*.log")):
        assert not looks_like_mail(path.read_bytes()[:262144]), path.name


def test_cap_keeps_first_and_last_and_counts_all(corpus) -> None:
    report = (corpus / "pagealloc_4.3.3_coreos_gce_softirq.log").read_text()
    oom = (corpus / "oom_2.6.30-rc7_memcg_lowercase_kill_or_a_child.log").read_text()
    text = report * 150 + oom + report * 150
    full = parse_kernlog(text)
    capped = parse_kernlog(text, keep_per_kind=4)
    assert capped.counts == full.counts
    assert capped.counts is not None and capped.counts.page_alloc_failures == 300
    assert capped.counts.oom_kills == 1 and capped.counts.oom_kills_memcg == 1
    keeper = EventKeeper(4)
    for event in full.events:
        keeper.add(event)
    assert capped.events == keeper.events()
    failures = [e for e in capped.events if isinstance(e, PageAllocFailure)]
    assert len(failures) == 8
    assert failures[0].line == full.events[0].line
    assert failures[-1].line == [e for e in full.events if isinstance(e, PageAllocFailure)][-1].line
    # The rare kill in the middle of the storm is kept.
    assert any(isinstance(e, OomKill) for e in capped.events)
    assert (capped.lines_read, capped.truncated) == (full.lines_read, full.truncated)
    assert capped.events_dropped == full.counts.total - len(capped.events)
    data = counts_to_json(capped)
    assert data["events_total"] == full.counts.total
    assert data["by_kind"]["page_alloc_failure"] == 300


def test_new_fields_are_in_the_event_json(corpus) -> None:
    log = parse_kernlog((corpus / "pagealloc_6.9.0-rc7_order4_gfp_names_cpuset.log").read_text())
    data = event_to_json(log.events[0], "dmesg")
    for key in ("kernel_release", "call_trace", "caller", "cpu", "pid", "opportunistic"):
        assert key in data
    assert data["call_trace"] and data["kernel_release"].startswith("6.9.0-rc7")
    assert json.loads(json.dumps(data)) == data


def test_logscan_reads_stdin_mail(corpus, monkeypatch, capsys) -> None:
    data = (corpus / "mail_2.6.20_oom_kill_lines_glued.eml").read_bytes()

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]

    monkeypatch.setattr("sys.stdin", Stdin)
    assert logscan_main(["--json", "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_journal_pasted_as_dmesg_keeps_the_process_and_names_the_caller(corpus) -> None:
    """ "[21161.092614] kernel: earlyoom: page allocation failure ..." (journal lines
    pasted in dmesg form): the tag is not part of the process; the trace was cut
    before any frame the unwinder was sure of past the slab allocator."""
    log = parse_kernlog((corpus / "pagealloc_5.9_fedora_earlyoom_gfp_nowait.log").read_text())
    (failure,) = [e for e in log.events if isinstance(e, PageAllocFailure)]
    assert failure.process == "earlyoom"
    assert (failure.cpu, failure.pid) == (5, 84786)
    assert failure.kernel_release is not None and failure.kernel_release.startswith("5.9.0")
    assert failure.opportunistic
    assert failure.caller == "avc_alloc_node"
