"""Tonight's actions, the words and sizes of the report, and event times."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import jsonschema
import pytest

from tests import report_fixtures as rf
from xenaudit.analysis.interface import (
    Advice,
    ConfigFacts,
    Finding,
    MinFreeSuggestion,
    Recommendation,
)
from xenaudit.formats import units
from xenaudit.formats.actions import domain_action, tonight_actions
from xenaudit.formats.html import prose, render_html
from xenaudit.formats.json import report_schema, report_to_dict
from xenaudit.formats.times import ago, event_time, parse_instant
from xenaudit.parsers.guest import boot_time_of
from xenaudit.report import DomainReport
from xenaudit.wording import fold_repeats, plural


def _with_rec(
    dom: DomainReport, memory: int, maxmem: int, change: str, cfg: tuple[int, int | None]
) -> DomainReport:
    rec = Recommendation(memory, maxmem, ("r",), "high", 400, change)  # type: ignore[arg-type]
    config = ConfigFacts("/etc/xen/x.cfg", cfg[0], cfg[1], "pv")
    return dataclasses.replace(
        dom,
        config=config,
        assessment=dataclasses.replace(
            dom.assessment, recommendation=rec, min_free=None, advice=()
        ),
    )


def test_memory_and_maxmem_change_reads_like_the_issue() -> None:
    dom = _with_rec(rf.reference_case(), 576, 768, "increase", (512, 512))
    action = domain_action(dom, 3)
    assert action is not None
    assert action.change_text == "memory 512 → 576 MiB, maxmem 768"
    assert action.kind == "resize" and action.domain_index == 3
    assert action.why == "Real memory shortage"


def test_maxmem_only_change_shows_both_maxmem_values() -> None:
    dom = _with_rec(rf.reference_case(), 1024, 1024, "maxmem", (1024, 2048))
    action = domain_action(dom, 0)
    assert action is not None
    assert action.change_text == "maxmem 2048 → 1024 MiB"
    assert "1024 → 1024" not in action.change_text


def test_sysctl_only_row_and_current_value_from_the_guest() -> None:
    dom = rf.reference_case()
    advice = (Advice("Compact", "d", ("sysctl -w vm.extfrag_threshold=300", "echo …")),)
    dom = dataclasses.replace(
        dom,
        assessment=dataclasses.replace(
            dom.assessment, recommendation=None, min_free=None, advice=advice
        ),
    )
    action = domain_action(dom, 0)
    assert action is not None
    assert action.kind == "sysctl"
    assert action.change_text.startswith("in the guest: vm.extfrag_threshold")
    assert action.change_text.endswith("→ 300") or action.change_text.endswith(" 300")


def test_min_free_proposal_joins_the_resize() -> None:
    dom = _with_rec(rf.reference_case(), 576, 768, "increase", (512, 512))
    suggestion = MinFreeSuggestion(2834, 2834, 6144, 567704)
    dom = dataclasses.replace(
        dom, assessment=dataclasses.replace(dom.assessment, min_free=suggestion)
    )
    action = domain_action(dom, 0)
    assert action is not None
    assert action.change_text == (
        "memory 512 → 576 MiB, maxmem 768; in the guest: vm.min_free_kbytes 2834 → 6144"
    )


def test_quiet_healthy_domain_needs_nothing() -> None:
    report = rf.rich_report()
    healthy = [d for d in report.domains if d.assessment.severity == "ok"]
    assert healthy
    for dom in healthy:
        rec = dom.assessment.recommendation
        if rec is None or rec.change == "none":
            assert domain_action(dom, 0) is None


def test_rows_most_severe_first_and_point_at_their_card() -> None:
    report = rf.rich_report()
    rows = tonight_actions(report)
    assert rows
    ranks = ["ok", "info", "warning", "critical"]
    order = [ranks.index(a.severity) for a in rows]
    assert order == sorted(order, reverse=True)
    for action in rows:
        assert report.domains[action.domain_index].name == action.domain
    unread = [a for a in rows if a.kind == "unread"]
    assert unread and all(not a.why.startswith(f"{a.domain}:") for a in unread)


def test_actions_in_report_json_follow_the_schema() -> None:
    report = rf.rich_report()
    doc = report_to_dict(report)
    validator = jsonschema.Draft202012Validator(report_schema())
    assert list(validator.iter_errors(doc)) == []
    assert [a["domain"] for a in doc["actions"]] == [a.domain for a in tonight_actions(report)]
    first = doc["actions"][0]
    assert {c["where"] for c in first["changes"]} <= {"cfg", "guest"}
    broken = {**doc, "actions": [{**first, "kind": "reboot"}]}
    assert list(validator.iter_errors(broken))
    missing = {k: v for k, v in doc.items() if k != "actions"}
    assert list(validator.iter_errors(missing))


def test_actions_table_is_right_under_the_title(tmp_path: pytest.TempPathFactory) -> None:
    page = render_html(rf.rich_report(), tmp_path)  # type: ignore[arg-type]
    title = page.index("<h1>")
    actions = page.index('id="actions"')
    stats = page.index('class="stats"')
    plan = page.index('id="hosts"')
    assert title < actions < stats < plan
    for action in tonight_actions(rf.rich_report()):
        assert f'href="#d{action.domain_index}"' in page


# --- words and sizes ----------------------------------------------------------


def test_sizes_switch_to_gib_from_4_gib() -> None:
    assert units.size_mib(576) == "576 MiB"
    assert units.size_mib(4095) == "4095 MiB"
    assert units.size_mib(4096) == "4 GiB"
    assert units.size_mib(16383) == "16 GiB"
    assert units.size_mib(6000) == "5.9 GiB"
    assert units.size_kib(512) == "512 KiB"
    assert units.size_mib(None) == "–"


def test_prose_converts_kernel_kb_and_backticks() -> None:
    html = str(prose("74432 kB were free; clamped to 128–65536 kB; run `xl mem-set` <now>"))
    assert "72.7" not in html  # whole MiB below 4 GiB
    assert "73 MiB were free" in html
    assert "128 KiB–64 MiB" in html
    assert "<code>xl mem-set</code>" in html
    assert "&lt;now&gt;" in html and "`" not in html
    odd = str(prose("a ` lone <b>"))
    assert "`" in odd and "<code>" not in odd and "&lt;b&gt;" in odd


def test_counted_words_and_folded_names() -> None:
    assert plural(1, "event") == "1 event"
    assert plural(2, "event") == "2 events"
    assert plural(0, "guest") == "0 guests"
    names = ["postgres", "postgres", "systemd-journal", "postgres", "postgres"]
    assert fold_repeats(names) == "postgres ×4, systemd-journal"
    assert fold_repeats([]) == ""


# --- times --------------------------------------------------------------------


def test_boot_time_from_the_probe() -> None:
    assert boot_time_of("6.1.0-18-amd64\n4096\nbtime 1795038946\n") == 1795038946
    assert boot_time_of("6.1.0-18-amd64\n4096\n") is None
    assert boot_time_of("btime 1795038946\n") is None  # the first line is the release
    assert boot_time_of("6.1\nbtime 12\n") is None  # 1970 is a broken clock


def test_dmesg_seconds_become_wall_clock_and_ago() -> None:
    now = parse_instant("2026-11-25T02:31:07Z")
    boot = int(datetime(2026, 11, 20, 0, 0, tzinfo=UTC).timestamp())
    when = event_time("[259200.5]", boot, now)
    assert when.wall == "2026-11-23 00:00 UTC"
    assert when.ago == "2 days ago"
    assert when.stamp == "[259200.5]"
    unplaced = event_time("[2201.1]", None, now)
    assert unplaced.wall is None and unplaced.ago == "37 min after boot"
    assert unplaced.stamp == "[2201.1]"


def test_dated_stamps_are_placed_too() -> None:
    now = parse_instant("2026-11-25T02:31:07Z")
    assert now is not None
    assert event_time("2026-11-24T20:31:07+0000", None, now).ago == "6 hours ago"
    assert event_time("Nov 24 20:31:07", None, now).wall == "2026-11-24 20:31 UTC"
    # A syslog date without a year after the audit belongs to the year before.
    assert event_time("Dec 31 23:00:00", None, now).wall == "2025-12-31 23:00 UTC"
    assert ago(now, now) == "just now"


def test_event_rows_show_wall_clock_and_keep_the_stamp(tmp_path: pytest.TempPathFactory) -> None:
    dom = rf.reference_case()
    assert dom.snapshot is not None
    read_at = parse_instant(dom.snapshot.collected_at)
    assert read_at is not None
    boot = int(read_at.timestamp()) - 1843211 - 2 * 86400 - 7200
    snap = dataclasses.replace(dom.snapshot, sections={"uname": f"5.10\n4096\nbtime {boot}\n"})
    dom = dataclasses.replace(dom, snapshot=snap)
    report = dataclasses.replace(rf.rich_report(), domains=(dom,))
    page = render_html(report, tmp_path)  # type: ignore[arg-type]
    assert "2 days ago" in page
    assert "[1843211.405170]" in page
    assert " UTC" in page


def test_finding_code_is_a_small_id_not_in_the_heading(tmp_path: pytest.TempPathFactory) -> None:
    dom = rf.reference_case()
    finding = Finding("atomic_reserve", "warning", "Atomic reserve too small", "Use `sysctl`.")
    dom = dataclasses.replace(
        dom, assessment=dataclasses.replace(dom.assessment, findings=(finding,))
    )
    report = dataclasses.replace(rf.rich_report(), domains=(dom,))
    page = render_html(report, tmp_path)  # type: ignore[arg-type]
    title_line = next(line for line in page.splitlines() if 'class="ftitle"' in line)
    assert "atomic_reserve" not in title_line
    assert (
        '<span class="fid" title="finding code, also in report.json">atomic_reserve</span>' in page
    )
    assert "Use <code>sysctl</code>." in page
