"""Every count the analysis prints is exact, whatever the parser kept of a storm.

The parser keeps the first and last `kernlog_keep_events` reports of each kind
and counts all of them; the findings quote the kept reports as examples and
state the exact number of all ("5 of 2,112 failure reports shown").
"""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.analysis_cases import classic_512
from xenaudit.analysis import DefaultAnalyzer
from xenaudit.analysis.interface import Assessment, Finding
from xenaudit.analysis.logevents import BUCKETS, bucket_of, failure_tallies
from xenaudit.parsers.guest import parse_guest
from xenaudit.parsers.interface import KernelLog, PageAllocFailure
from xenaudit.parsers.kernlog import parse_kernlog

#: One header of each kind a failure can be, as 5.x kernels print them.
HEADERS = {
    "atomic": "swapper/0: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), "
    "nodemask=(null)",
    "nowait": "kworker/0:1: page allocation failure: order:0, mode:0x800(GFP_NOWAIT), "
    "nodemask=(null)",
    "reclaim": "java: page allocation failure: order:0, mode:0x6000c0(GFP_KERNEL), nodemask=(null)",
    "noretry": "java: page allocation failure: order:0, mode:0x6010c0(GFP_KERNEL|__GFP_NORETRY), "
    "nodemask=(null)",
    "high": "memcached: page allocation failure: order:4, mode:0x14040c0(GFP_KERNEL|__GFP_COMP), "
    "nodemask=(null)",
    "thp": "khugepaged: page allocation failure: order:9, "
    "mode:0x4c4ca(GFP_TRANSHUGE_LIGHT|__GFP_NOWARN), nodemask=(null)",
}
#: The reference case's own report (2.6-era header, mask decoded), as a storm repeats it.
SWAPPER = "swapper: page allocation failure. order:0, mode:0x20"


def _log(kinds: list[str]) -> str:
    return "".join(f"[{100 + i}.{i:06d}] {HEADERS[k]}\n" for i, k in enumerate(kinds))


def _failures(log: KernelLog) -> list[PageAllocFailure]:
    return [e for e in log.events if isinstance(e, PageAllocFailure)]


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(sorted(HEADERS)), min_size=0, max_size=60),
    keep=st.integers(min_value=1, max_value=6),
    fresh=st.integers(min_value=0, max_value=70),
)
def test_tallies_hold_the_true_count_and_are_exact_when_the_counts_say_so(
    kinds: list[str], keep: int, fresh: int
) -> None:
    text = _log(kinds)
    everything = _failures(parse_kernlog(text))
    capped = parse_kernlog(text, keep_per_kind=keep)
    tallies = failure_tallies(capped, _failures(capped), fresh)
    newest = everything[len(everything) - min(fresh, len(everything)) :]
    for bucket in BUCKETS:
        truth = sum(1 for e in everything if bucket_of(e) == bucket)
        total = tallies.total[bucket]
        assert total.low <= truth <= total.high, (bucket, total, truth)
        new = sum(1 for e in newest if bucket_of(e) == bucket)
        assert tallies.fresh[bucket].low <= new <= tallies.fresh[bucket].high
    assert tallies.total["opportunistic"].exact
    dropped = everything[keep : len(everything) - keep] if len(everything) > 2 * keep else []
    # Without opportunistic reports among those dropped, or with only one order/sleep
    # kind among them, every kind is exact.
    if not any(e.opportunistic for e in dropped) or len({_parser_kind(e) for e in dropped}) <= 1:
        assert all(t.exact for t in tallies.total.values())


def _parser_kind(event: PageAllocFailure) -> tuple[bool, bool]:
    return event.order >= 1, event.is_atomic


def test_nothing_dropped_counts_the_kept_reports() -> None:
    log = parse_kernlog(_log(["atomic", "nowait", "reclaim", "high"]), keep_per_kind=10)
    tallies = failure_tallies(log, _failures(log), 2)
    assert {b: str(t) for b, t in tallies.total.items()} == {
        "atomic_order0": "1",
        "reclaim_order0": "1",
        "high_order": "1",
        "opportunistic": "1",
    }
    assert tallies.fresh["high_order"].low == 1 and tallies.fresh["atomic_order0"].high == 0


def test_dropped_reports_of_two_kinds_that_may_fail_by_design_give_bounds() -> None:
    kinds = ["atomic"] * 3 + ["nowait", "noretry", "atomic", "reclaim"] * 5 + ["atomic"] * 3
    log = parse_kernlog(_log(kinds), keep_per_kind=3)
    tallies = failure_tallies(log, _failures(log), 0)
    # 10 reports that may fail by design were dropped, 5 order-0 atomic and 5 order-0 that
    # could sleep; the counts alone cannot tell how they split.
    assert str(tallies.total["opportunistic"]) == "10"
    assert str(tallies.total["atomic_order0"]) == "6 to 16"
    assert str(tallies.total["reclaim_order0"]) == "0 to 10"


def _storm_guest(reports: int, keep: int = 10) -> tuple[Assessment, KernelLog]:
    """The reference guest, its kernel log a storm of `reports` swapper failures."""
    text = "".join(f"[{5000 + n}.{n % 999999:06d}] {SWAPPER}\n" for n in range(reports))
    facts = parse_guest({"kernlog": text, "uname": "2.6.32-5-xen-amd64\n"}, keep_events=keep)
    assert facts.kernlog is not None
    item = classic_512(0)
    assert item.facts is not None
    item = replace(item, facts=replace(item.facts, kernlog=facts.kernlog))
    return DefaultAnalyzer().assess(item), facts.kernlog


def _finding(assessment: Assessment, code: str) -> Finding:
    return next(f for f in assessment.findings if f.code == code)


def test_a_storm_over_the_cap_is_counted_exactly_in_the_findings() -> None:
    assessment, log = _storm_guest(2112)
    assert len(log.events) == 20 and log.counts is not None
    assert log.counts.page_alloc_failures == 2112
    atomic = _finding(assessment, "atomic_reserve")
    assert atomic.detail.startswith("2,112 order-0 allocation(s) that could not wait")
    texts = [e.text for e in atomic.evidence]
    assert "5 of 2,112 failure reports shown, the newest" in texts
    assert sum(1 for e in atomic.evidence if e.line is not None) == 5
    # The kept number (20) is never given as a count of failures.
    everything = " ".join([atomic.detail, *texts])
    assert not re.search(r"\b20 (?:order|failure|allocation)", everything)


def test_the_same_storm_kept_in_full_reads_the_same() -> None:
    capped, _ = _storm_guest(300, keep=10)
    whole, log = _storm_guest(300, keep=1000)
    assert len(log.events) == 300
    assert _finding(capped, "atomic_reserve").detail == _finding(whole, "atomic_reserve").detail
    assert [e.text for e in _finding(capped, "atomic_reserve").evidence if e.line is None] == [
        e.text for e in _finding(whole, "atomic_reserve").evidence if e.line is None
    ]


def test_an_oom_storm_over_the_cap_is_counted_exactly() -> None:
    kill = (
        "Out of memory: Killed process {pid} (java) total-vm:2097152kB, anon-rss:409600kB, "
        "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1024kB oom_score_adj:0"
    )
    text = "".join(f"[{6000 + n}.000000] {kill.format(pid=1000 + n)}\n" for n in range(300))
    facts = parse_guest({"kernlog": text, "uname": "5.10.0-26-amd64\n"}, keep_events=10)
    assert facts.kernlog is not None and len(facts.kernlog.events) == 20
    item = classic_512(0)
    assert item.facts is not None
    assessment = DefaultAnalyzer().assess(
        replace(item, facts=replace(item.facts, kernlog=facts.kernlog))
    )
    kills = [f for f in assessment.findings if f.code == "oom_kill"]
    assert len(kills) == 11
    summary = next(f for f in kills if "earlier" in f.title)
    assert summary.title == "290 earlier OOM kills"
    assert [e.text for e in summary.evidence] == ["10 of 300 OOM kills shown, the newest"]
    shortage = _finding(assessment, "shortage")
    assert "the OOM killer ran 300 time(s)" in shortage.detail
