"""The analysis driven by real samples from the shared corpus, parsed by xenaudit.parsers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.analysis_cases import MIB, case, corpus_text, quiet_nights
from tests.conftest import corpus_dir
from xenaudit.analysis import DefaultAnalyzer
from xenaudit.analysis.interface import Assessment, DomainInput
from xenaudit.parsers import parse_guest
from xenaudit.parsers.interface import OomInvoked, OomKill, PageAllocFailure

analyzer = DefaultAnalyzer()

CALM_MEMINFO = (
    "MemTotal: {total} kB\nMemFree: {free} kB\nMemAvailable: {avail} kB\n"
    "Buffers: {buffers} kB\nCached: {cached} kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n"
)


def guest(
    corpus: Path,
    *,
    memory_mib: int,
    meminfo: str | None = None,
    kernlog: str | None = None,
    extra: dict[str, str] | None = None,
    uname: str | None = None,
    history: int = 0,
) -> DomainInput:
    sections: dict[str, str] = {}
    sections["meminfo"] = (
        corpus_text(corpus, meminfo) if meminfo and meminfo.endswith(".txt") else (meminfo or "")
    )
    if kernlog:
        sections["kernlog"] = corpus_text(corpus, kernlog)
    for section, name in (extra or {}).items():
        sections[section] = corpus_text(corpus, name)
    if uname:
        sections["uname"] = uname
    status = {name: "ok" for name in sections}
    facts = parse_guest(sections, status, "sample")
    assert not facts.errors, facts.errors
    # A host large enough for the guest: a guest bigger than its host is implausible input.
    item = case(
        facts, name="sample", memory_mib=memory_mib, host_total_mib=max(16384, 2 * memory_mib)
    )
    total = facts.meminfo.mem_total_kib
    avail = facts.meminfo.mem_available_kib
    return replace(
        item,
        snapshot=replace(item.snapshot, sections=sections, section_status=status),
        history=quiet_nights(history, total, avail) if history else (),
    )


def calm(total_kib: int, available_kib: int) -> str:
    return CALM_MEMINFO.format(
        total=total_kib,
        free=available_kib // 2,
        avail=available_kib,
        buffers=available_kib // 16,
        cached=available_kib // 2,
    )


def codes(assessment: Assessment) -> set[str]:
    return {f.code for f in assessment.findings}


def test_coreos_softirq_failure_on_a_4g_guest_is_an_atomic_reserve_problem(corpus: Path) -> None:
    item = guest(
        corpus,
        memory_mib=4096,
        meminfo="meminfo_4.x_ShmemHugePages_CmaTotal.txt",
        kernlog="pagealloc_4.3.3_coreos_gce_softirq.log",
        uname="4.3.3-coreos-r2",
    )
    assessment = analyzer.assess(item)
    atomic = next(f for f in assessment.findings if f.code == "atomic_reserve")
    assert atomic.severity == "warning"
    assert "ksoftirqd/0" in atomic.detail
    quoted = next(e for e in atomic.evidence if e.source.startswith("kernlog"))
    assert quoted.line == 1 and "order:0" in quoted.text and "mode:0x20" in quoted.text
    # MemAvailable 1405 MiB of 3922: plenty, so the reserve is fixed live and memory kept.
    assert "plenty of memory was available (36% available" in atomic.detail
    rec = assessment.recommendation
    assert rec is not None and rec.change == "none" and rec.memory_mib == 4096
    # MemTotal 4015896 kB: 4096 MiB − 3922 MiB = 174 MiB the kernel and firmware keep.
    assert any("+ 174 MiB kernel/firmware reservation" in r for r in rec.reasons)
    suggestion = assessment.min_free
    assert suggestion is not None
    assert suggestion.kernel_default_kib < suggestion.suggested_kib < 65536
    # Linux 4.3 predates vm.watermark_scale_factor (4.6): it is not advised.
    assert assessment.sysctls == ()
    assert not any("watermark_scale_factor" in a.title for a in assessment.advice)


def test_rhel6_order3_atomic_failure_with_plenty_of_large_blocks(corpus: Path) -> None:
    item = guest(
        corpus,
        memory_mib=32768,
        meminfo=calm(32 * 1024 * MIB - 300 * MIB, 20 * 1024 * MIB),
        kernlog="pagealloc_2.6.32-573.el6_syslog_order3.log",
        extra={"buddyinfo": "buddyinfo_numa_2nodes_alitech.txt"},
    )
    assessment = analyzer.assess(item)
    frag = next(f for f in assessment.findings if f.code == "fragmentation")
    assert "ProbeReader" in frag.detail and "outran compaction" in frag.detail
    # Free memory in /proc/buddyinfo, added up by hand from the sample.
    # ZONE_DMA is left out: lowmem_reserve keeps ordinary allocations from its free pages.
    rows = [
        line.split()[4:]
        for line in corpus_text(corpus, "buddyinfo_numa_2nodes_alitech.txt").splitlines()
        if line.strip() and line.split()[3] != "DMA"
    ]
    total = sum(int(n) * (4 << k) for row in rows for k, n in enumerate(row))
    usable = sum(int(n) * (4 << k) for row in rows for k, n in enumerate(row) if k >= 3)
    lists = next(e for e in frag.evidence if e.source == "buddyinfo")
    assert f"{total} kB free, {usable} kB of it in blocks of order ≥ 3" in lists.text
    assert "ZONE_DMA not counted" in lists.text
    # Linux 2.6.32 from the report itself, and no /proc/sys/vm listing: compaction came with
    # 2.6.35, so no compaction knob is advised (the advice says to check for a backport).
    commands = " ".join(" ".join(a.commands) for a in assessment.advice)
    assert "compaction_proactiveness" not in commands
    assert "compact_memory" not in commands and "extfrag_threshold" not in commands
    cannot = next(a for a in assessment.advice if a.title == "This kernel cannot compact memory")
    assert "2.6.35" in cannot.detail and "/proc/sys/vm/extfrag_threshold" in cannot.detail


def test_rhel6_swapper_order1_is_fragmentation_with_an_atomic_note(corpus: Path) -> None:
    item = guest(
        corpus,
        memory_mib=1024,
        meminfo=calm(1000 * MIB, 400 * MIB),
        kernlog="pagealloc_2.6.32-358.el6_redhat_swapper_order1.log",
    )
    assessment = analyzer.assess(item)
    frag = next(f for f in assessment.findings if f.code == "fragmentation")
    assert "could not wait for compaction (atomic)" in frag.detail
    assert "No buddy lists were collected" in frag.detail
    assert "atomic_reserve" not in codes(assessment)


def test_journal_oom_kill_names_the_victim_and_bumps(corpus: Path) -> None:
    item = guest(
        corpus,
        memory_mib=2048,
        meminfo=calm(2000 * MIB, 1200 * MIB),
        kernlog="oom_4.x_journal_kill_process_sacrifice_child.log",
    )
    assessment = analyzer.assess(item)
    kill = next(f for f in assessment.findings if f.code == "oom_kill")
    assert kill.severity == "critical"
    assert "(pid 27438" in kill.title and "R" in kill.title
    # anon-rss 1041924 kB + file-rss 4 kB + shmem-rss 0 kB.
    assert f"RSS {round(1041928 / 1024)} MiB" in kill.title
    rec = assessment.recommendation
    assert rec is not None
    # Sized from the evidence, not a flat 20% of the guest: tonight's need 800 MiB plus the
    # victim's RSS (1041928 kB, not running again) plus the 48 MiB reservation = 1866 MiB;
    # max(1866 + 100, 1866 × 1.2 = 2239.2) → 2240 on the 64 MiB grid.
    assert rec.memory_mib == 2240
    assert any("RSS of R (1018 MiB), which is not running again" in r for r in rec.reasons)


def test_oom_reaper_burst_gives_one_finding_per_kill(corpus: Path) -> None:
    item = guest(
        corpus,
        memory_mib=2048,
        meminfo=calm(2000 * MIB, 1500 * MIB),
        kernlog="oom_5.x_killed_and_oom_reaper_burst.log",
    )
    kills = [f for f in analyzer.assess(item).findings if f.code == "oom_kill"]
    assert len(kills) == 4
    assert {k.evidence[0].line for k in kills} == {1, 3, 5, 7}


def test_stalling_psi_is_a_critical_shortage(corpus: Path) -> None:
    item = guest(
        corpus,
        memory_mib=1024,
        meminfo=calm(1000 * MIB, 300 * MIB),
        extra={"psi_memory": "psi_memory_stalling.txt"},
    )
    assessment = analyzer.assess(item)
    shortage = next(f for f in assessment.findings if f.code == "shortage")
    assert shortage.severity == "critical"
    pressure = next(e for e in shortage.evidence if e.source == "psi_memory")
    assert "avg60=52.01" in pressure.text and "avg60=71.12" in pressure.text
    assert assessment.recommendation is not None
    assert assessment.recommendation.memory_mib > 1024


def test_pre_3_14_meminfo_is_sized_from_an_estimate_with_less_confidence(corpus: Path) -> None:
    item = guest(
        corpus,
        memory_mib=65536,
        meminfo="meminfo_2.6.32_era_no_MemAvailable_64GB.txt",
        history=4,
    )
    assessment = analyzer.assess(item)
    rec = assessment.recommendation
    assert rec is not None
    assert rec.confidence == "low"  # medium for 4 nights, one lower for the estimate
    evidence = [e for f in assessment.findings for e in f.evidence if e.source == "meminfo"]
    assert all("estimated" in e.text for e in evidence if "MemAvailable" in e.text)


def test_a_noretry_failure_is_reported_but_not_sized_on(corpus: Path) -> None:
    # splat's mode:0x10d0 on 3.4 is GFP_KERNEL|__GFP_NORETRY: it asked to fail rather than retry.
    item = guest(
        corpus,
        memory_mib=1024,
        meminfo=calm(1000 * MIB, 400 * MIB),
        kernlog="pagealloc_3.4.0_fc17_syslog_plus_dmesg_ts.log",
    )
    assessment = analyzer.assess(item)
    found = next(f for f in assessment.findings if f.code == "opportunistic_failures")
    assert found.severity == "info" and "__GFP_NORETRY" in found.detail
    assert "not sized on" in found.detail
    assert found.evidence[0].line == 1
    assert codes(assessment) & {"shortage", "atomic_reserve", "healthy"} == set()
    rec = assessment.recommendation
    assert rec is not None and rec.change == "none" and rec.memory_mib == 1024


def _kernlog_samples() -> list[str]:
    manifest = corpus_dir() / "MANIFEST.tsv"
    names = [line.split("\t")[0] for line in manifest.read_text(encoding="utf-8").splitlines()[1:]]
    return sorted(n for n in names if n.startswith(("pagealloc_", "oom_")))


@pytest.mark.parametrize("sample", _kernlog_samples())
def test_every_failure_and_kill_in_the_corpus_is_explained(corpus: Path, sample: str) -> None:
    item = guest(corpus, memory_mib=2048, meminfo=calm(2000 * MIB, 900 * MIB), kernlog=sample)
    assessment = analyzer.assess(item)
    events = item.facts.kernlog.events
    failures = [e for e in events if isinstance(e, PageAllocFailure)]
    kills = [e for e in events if isinstance(e, OomKill)]
    # Without a kill line, the "invoked oom-killer" header stands for the kill.
    invoked = [] if kills else [e for e in events if isinstance(e, OomInvoked)]
    quoted_lines = {
        e.line for f in assessment.findings for e in f.evidence if e.source.startswith("kernlog")
    }
    for event in failures + kills + invoked:
        assert event.line in quoted_lines, (sample, event.line)
    if kills and all(k.memcg for k in kills):
        # A memory cgroup hit its own limit while the guest had memory left.
        assert assessment.severity == "warning"
        assert any(f.code == "oom_kill" for f in assessment.findings)
    elif kills or invoked:
        assert assessment.severity == "critical"
        assert any(f.code == "oom_kill" for f in assessment.findings)
    elif failures and all(f.opportunistic for f in failures):
        # Allocations that may fail by design are reported, never sized on.
        assert assessment.severity == "info"
        assert "opportunistic_failures" in codes(assessment)
    elif failures:
        assert assessment.severity == "warning"
    else:
        assert "healthy" in codes(assessment)
    if failures or kills or invoked:
        assert "healthy" not in codes(assessment)
