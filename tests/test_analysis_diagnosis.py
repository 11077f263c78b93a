"""Telling causes apart: shortage, OOM kills, fragmentation, balloon, HVM PoD, missing data."""

from __future__ import annotations

from dataclasses import replace

from tests.analysis_cases import (
    GIB,
    MIB,
    buddy,
    case,
    classic_512,
    classic_short,
    facts,
    failure,
    night,
    oom_kill,
    psi,
    quiet_nights,
    swapper_failures,
)
from xenaudit.analysis import DefaultAnalyzer
from xenaudit.analysis.interface import Assessment, DomainInput, Finding
from xenaudit.inventory.interface import DomainOverride

analyzer = DefaultAnalyzer()


def codes(assessment: Assessment) -> set[str]:
    return {f.code for f in assessment.findings}


def only(assessment: Assessment, code: str) -> Finding:
    found = [f for f in assessment.findings if f.code == code]
    assert len(found) == 1, [f.code for f in assessment.findings]
    return found[0]


# --- OOM kills -------------------------------------------------------------------


def _oom_case(**kw: object) -> DomainInput:
    # 1 GiB guest, the OOM killer took a 600 MiB java; after the kill plenty is free.
    return case(
        facts(1000 * MIB, 500 * MIB, events=(oom_kill("java", 600 * MIB, line=77),)),
        memory_mib=1024,
        **kw,  # type: ignore[arg-type]
    )


def test_oom_kill_is_critical_names_the_victim_and_bumps_memory() -> None:
    assessment = analyzer.assess(_oom_case())
    assert assessment.severity == "critical"
    kill = only(assessment, "oom_kill")
    assert kill.severity == "critical"
    assert "java" in kill.title and "600 MiB" in kill.title
    assert kill.evidence[0].line == 77
    rec = assessment.recommendation
    assert rec is not None and rec.change == "increase"
    # The need measured after the kill (500 MiB) would keep 1024. What the guest needed at
    # the kill is that plus the victim's 600 MiB (not running again) plus the 24 MiB
    # reservation = 1124 MiB; max(1124 + 100, 1124 × 1.2 = 1348.8) → 1408 on the 64 MiB grid.
    assert rec.memory_mib == 1408
    assert any("OOM kill" in r and "1124 + 100" in r and "RSS of java" in r for r in rec.reasons)


def test_oom_bump_uses_the_threshold_setting() -> None:
    from xenaudit.inventory.interface import Thresholds

    item = _oom_case(thresholds=Thresholds(oom_bump_mib=400))
    rec = analyzer.assess(item).recommendation
    assert rec is not None
    assert rec.memory_mib == 1536  # 1124 + 400 = 1524 → 1536


def _old_kill(history_nights: int = 1, cfg_then: int = 1024, memory_now: int = 1024) -> Assessment:
    """A kill first seen `history_nights` nights ago, still in the log, the counter unchanged."""
    base = _oom_case()
    kill_facts = replace(
        base.facts,
        vmstat=replace(
            base.facts.vmstat, counters={"pswpin": 0, "pgmajfault": 1000, "oom_kill": 1}
        ),
    )
    first = night("2026-11-20T02:30:00Z", 1000 * MIB, 450 * MIB, oom_kill_counter=1, oom_kills=1)
    first = replace(first, cfg_memory_mib=cfg_then, rec_memory_mib=1408, rec_maxmem_mib=1408)
    later = tuple(
        replace(first, run_at=f"2026-11-{21 + i:02d}T02:30:00Z", rec_memory_mib=None)
        for i in range(history_nights - 1)
    )
    item = replace(base, facts=kill_facts, history=(first, *later))
    if memory_now != 1024:
        item = replace(
            item,
            config=replace(item.config, memory_mib=memory_now),
            domain=replace(item.domain, target_kib=memory_now * MIB, max_kib=memory_now * MIB),
        )
    return analyzer.assess(item)


def test_an_old_oom_kill_with_memory_unchanged_keeps_its_recommendation() -> None:
    assessment = _old_kill()
    kill = only(assessment, "oom_kill")
    assert kill.severity == "critical"
    assert "unresolved" in kill.detail.lower() and "2026-11-20T02:30:00Z" in kill.detail
    assert "1 of 7 quiet nights" in kill.detail
    rec = assessment.recommendation
    assert rec is not None and rec.change == "increase" and rec.memory_mib == 1408
    assert any(
        "keeps the 1408 MiB recommended on 2026-11-20T02:30:00Z at least" in r for r in rec.reasons
    )


def test_an_old_oom_kill_is_resolved_by_quiet_nights_or_more_memory() -> None:
    quiet = _old_kill(history_nights=7)
    kill = only(quiet, "oom_kill")
    assert kill.severity == "info" and "No new ones since" in kill.detail
    assert quiet.recommendation is not None and quiet.recommendation.memory_mib < 1280
    raised = _old_kill(memory_now=1408)
    assert only(raised, "oom_kill").severity == "info"
    assert raised.recommendation is not None and raised.recommendation.change != "increase"


def test_counter_sees_kills_the_log_lost() -> None:
    history = (night("2026-11-24T02:30:00Z", 1000 * MIB, 450 * MIB, oom_kill_counter=3),)
    guest = facts(1000 * MIB, 500 * MIB, vmstat={"pswpin": 0, "pgmajfault": 1000, "oom_kill": 5})
    assessment = analyzer.assess(case(guest, memory_mib=1024, history=history))
    kill = only(assessment, "oom_kill")
    assert kill.severity == "critical"
    assert "2 OOM kill(s) counted" in kill.title
    assert assessment.recommendation is not None
    assert assessment.recommendation.memory_mib == 1280


def test_memcg_kill_points_at_the_cgroup_not_the_domain() -> None:
    guest = facts(
        1000 * MIB, 600 * MIB, events=(oom_kill("worker", 200 * MIB, memcg=True, line=12),)
    )
    assessment = analyzer.assess(case(guest, memory_mib=1024))
    kill = only(assessment, "oom_kill")
    assert kill.severity == "warning"
    assert "memory.max" in kill.detail
    rec = assessment.recommendation
    assert rec is not None and rec.change != "increase"


def test_panic_on_oom_only_for_ha_cluster_members() -> None:
    plain = analyzer.assess(_oom_case())
    ha = analyzer.assess(_oom_case(override=DomainOverride("web", ha_cluster=True)))

    def mentions(a: Assessment) -> bool:
        return any("panic_on_oom" in x.title + x.detail + " ".join(x.commands) for x in a.advice)

    assert not mentions(plain)
    assert mentions(ha)
    protect = next(a for a in plain.advice if "Protect" in a.title)
    assert "MemoryMin=" in " ".join(protect.commands) and "OOMScoreAdjust" in protect.detail


# --- shortage ------------------------------------------------------------------------


def test_real_shortage_is_critical_and_absorbs_atomic_failures() -> None:
    guest = facts(
        2000 * MIB,
        60 * MIB,  # 3% available
        swap_total_kib=GIB,
        swap_free_kib=200 * MIB,
        pressure=psi(some_avg60=30.0, full_avg60=12.0),
        events=swapper_failures(3),
    )
    assessment = analyzer.assess(case(guest, memory_mib=2048))
    shortage = only(assessment, "shortage")
    assert shortage.severity == "critical"
    assert "atomic_reserve" not in codes(assessment)
    assert "symptom" in shortage.detail
    sources = {e.source for e in shortage.evidence}
    assert {"meminfo", "psi_memory"} <= sources
    assert assessment.min_free is None
    rec = assessment.recommendation
    assert rec is not None and rec.memory_mib > 2048


def test_swap_in_between_nights_counts_as_pressure() -> None:
    history = (night("2026-11-24T02:30:00Z", 1000 * MIB, 400 * MIB, pswpin=10_000),)
    # 20,000 pages = 78 MiB swapped in since last night.
    guest = facts(1000 * MIB, 400 * MIB, vmstat={"pswpin": 30_000, "pgmajfault": 1000})
    assessment = analyzer.assess(case(guest, memory_mib=1024, history=history))
    shortage = only(assessment, "shortage")
    assert shortage.severity == "warning"
    assert "78 MiB swapped back in" in shortage.detail


def test_a_reboot_between_nights_is_not_read_as_negative_swap_in() -> None:
    history = (night("2026-11-24T02:30:00Z", 1000 * MIB, 400 * MIB, pswpin=900_000),)
    guest = facts(1000 * MIB, 600 * MIB, vmstat={"pswpin": 10, "pgmajfault": 1000})
    assessment = analyzer.assess(case(guest, memory_mib=1024, history=history))
    assert "shortage" not in codes(assessment)


def test_failures_already_seen_last_night_stay_until_resolved() -> None:
    seen = night(
        "2026-11-24T02:30:00Z",
        515_072,
        128_436,
        page_alloc_failures=4,
        codes=("atomic_reserve",),
    )
    assessment = analyzer.assess(
        classic_512(failures=4, history=(replace(seen, cfg_memory_mib=512),))
    )
    atomic = only(assessment, "atomic_reserve")
    # Unresolved: nothing changed since, so it keeps its severity and says why.
    assert atomic.severity == "warning" and "unresolved" in atomic.detail.lower()
    assert atomic.first_seen == "2026-11-24T02:30:00Z"
    assert atomic.nights_seen == 1
    quiet = tuple(
        replace(seen, run_at=f"2026-11-{24 + i:02d}T02:30:00Z", cfg_memory_mib=512)
        for i in range(7)
    )
    assessment = analyzer.assess(classic_512(failures=4, history=quiet))
    atomic = only(assessment, "atomic_reserve")
    assert atomic.severity == "info" and "No new ones since" in atomic.detail


# --- fragmentation --------------------------------------------------------------------


FRAGMENTED_BUDDY = (
    # Free memory only in order-0 and order-1 blocks: 4000×4 kB + 1500×8 kB.
    "Node 0 DMA32: 4000*4kB (UEM) 1500*8kB (UEM) 0*16kB 0*32kB 0*64kB 0*128kB "
    "0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 28000kB",
)


def test_order3_failures_with_small_free_blocks_are_fragmentation() -> None:
    events = tuple(
        failure(3, atomic=True, process="eth0-rx", line=30 + 40 * i, buddy_lines=FRAGMENTED_BUDDY)
        for i in range(3)
    )
    guest = facts(
        2000 * MIB,
        1000 * MIB,
        events=events,
        buddyinfo=buddy(("DMA32", (4000, 1500, 0, 0, 0, 0, 0, 0, 0, 0, 0))),
    )
    assessment = analyzer.assess(case(guest, memory_mib=2048))
    frag = only(assessment, "fragmentation")
    assert frag.severity == "warning"
    assert "More memory helps less" in frag.detail
    assert "100%" in frag.detail  # all of the 28000 kB sits below order 3
    lists = next(e for e in frag.evidence if "free" in e.text and "blocks of order" in e.text)
    assert "28000 kB free, 0 kB of it in blocks of order ≥ 3" in lists.text
    assert "atomic_reserve" not in codes(assessment)
    titles = " ".join(a.title for a in assessment.advice)
    commands = " ".join(" ".join(a.commands) for a in assessment.advice)
    assert "compact_memory" in commands
    assert "extfrag_threshold" in commands
    assert "vm.compaction_proactiveness" in commands  # uname says 5.10
    assert "high-order users" in titles
    # Fragmentation alone is no reason to grow a guest with half its memory free.
    rec = assessment.recommendation
    assert rec is not None and rec.change != "increase"


def test_fragmentation_without_buddy_lists_uses_tonights_buddyinfo() -> None:
    guest = facts(
        2000 * MIB,
        1000 * MIB,
        events=(failure(2, atomic=False, process="nfsd", line=9),),
        buddyinfo=buddy(("Normal", (100, 50, 2000, 300, 10, 0, 0, 0, 0, 0, 0))),
    )
    frag = only(analyzer.assess(case(guest, memory_mib=2048)), "fragmentation")
    assert any(e.source == "buddyinfo" for e in frag.evidence)
    assert "outran compaction" in frag.detail


def test_compaction_proactiveness_not_advised_before_5_9() -> None:
    events = (failure(3, line=5, buddy_lines=FRAGMENTED_BUDDY),)
    item = case(facts(2000 * MIB, 1000 * MIB, events=events), memory_mib=2048)
    item = replace(item, snapshot=replace(item.snapshot, sections={"uname": "4.19.0-21-amd64"}))
    commands = " ".join(" ".join(a.commands) for a in analyzer.assess(item).advice)
    assert "compaction_proactiveness" not in commands
    assert "extfrag_threshold" in commands


# --- balloon, drift, HVM --------------------------------------------------------------


def test_hvm_with_maxmem_above_memory_is_a_pod_risk_and_maxmem_drops_to_memory() -> None:
    guest = facts(1000 * MIB, 500 * MIB)
    assessment = analyzer.assess(case(guest, memory_mib=1024, maxmem_mib=2048, guest_type="hvm"))
    risk = only(assessment, "hvm_pod_risk")
    assert risk.severity == "warning"
    assert "populate-on-demand" in risk.detail
    rec = assessment.recommendation
    assert rec is not None
    assert rec.maxmem_mib == rec.memory_mib == 1024
    assert rec.change == "maxmem"
    assert rec.live_change_safe is False


def test_hvm_with_a_confirmed_balloon_driver_keeps_maxmem() -> None:
    guest = facts(1000 * MIB, 500 * MIB)
    item = case(
        guest,
        memory_mib=1024,
        maxmem_mib=2048,
        guest_type="hvm",
        override=DomainOverride("web", balloon_driver=True),
    )
    assessment = analyzer.assess(item)
    assert "hvm_pod_risk" not in codes(assessment)
    assert assessment.recommendation is not None
    assert assessment.recommendation.maxmem_mib == 2048


def test_hvm_increase_never_gets_maxmem_headroom_without_driver() -> None:
    assessment = analyzer.assess(classic_short(failures=3, **_hvm(classic_short())))
    rec = assessment.recommendation
    assert rec is not None and rec.change == "increase"
    assert rec.maxmem_mib == rec.memory_mib
    assert rec.live_change_safe is False


def _hvm(item: DomainInput) -> dict[str, object]:
    # The same guest as an HVM domain whose balloon driver is not confirmed.
    return {
        "domain": replace(item.domain, guest_type="hvm"),
        "config": replace(item.config, guest_type="hvm"),
        "facts": replace(item.facts, balloon_target_kib=None, balloon_current_kib=None),
    }


def test_balloon_target_below_cfg_and_need_is_reported() -> None:
    # cfg says 1024 MiB, someone ran `xl mem-set web 512m`; the guest is squeezed.
    guest = facts(
        500 * MIB,
        40 * MIB,
        balloon_target_kib=512 * MIB,
        balloon_current_kib=512 * MIB,
        pressure=psi(some_avg60=8.0),
    )
    item = case(
        guest,
        memory_mib=1024,
        maxmem_mib=1024,
        target_mib=512,
        drift=("target 512 MiB differs from cfg memory 1024 MiB",),
    )
    assessment = analyzer.assess(item)
    below = [f for f in assessment.findings if f.code == "balloon_below_need"]
    assert below and below[0].severity == "warning"
    assert "xl mem-set web" in below[0].detail
    drift = only(assessment, "drift")
    assert "cfg memory 1024" in drift.evidence[0].text
    rec = assessment.recommendation
    assert rec is not None
    assert rec.memory_mib >= 1024
    assert rec.live_change_safe is True


def test_balloon_driver_short_of_its_target() -> None:
    guest = facts(
        900 * MIB, 300 * MIB, balloon_target_kib=1024 * MIB, balloon_current_kib=900 * MIB
    )
    assessment = analyzer.assess(case(guest, memory_mib=1024))
    below = only(assessment, "balloon_below_need")
    assert "could not reach its target" in below.title


def test_xen_short_of_the_target_is_seen_without_the_guest_balloon_section() -> None:
    item = case(facts(1000 * MIB, 300 * MIB), memory_mib=1024)
    item = replace(item, domain=replace(item.domain, current_kib=800 * MIB))
    below = only(analyzer.assess(item), "balloon_below_need")
    assert below.evidence[0].source == "hypervisor"
    assert "224 MiB less" in below.detail


def test_live_change_safe_within_live_maxmem_on_pv_with_balloon() -> None:
    item = classic_short(failures=3)
    item = replace(item, domain=replace(item.domain, max_kib=1024 * MIB))
    rec = analyzer.assess(item).recommendation
    assert rec is not None and rec.change == "increase"
    assert rec.live_change_safe is True
    assert any("xl mem-set web" in r for r in rec.reasons)


# --- missing data -----------------------------------------------------------------------


def test_unreachable_guest_is_insufficient_data_without_recommendation() -> None:
    item = case(None, status="unreachable", history=quiet_nights(10, 1000 * MIB, 800 * MIB))
    assessment = analyzer.assess(item)
    finding = only(assessment, "insufficient_data")
    assert finding.severity == "warning"
    assert "unreachable" in finding.detail
    assert assessment.recommendation is None
    assert assessment.need_mib is None


def test_shut_off_domain_is_quiet_insufficient_data() -> None:
    assessment = analyzer.assess(case(None, state="shutoff"))
    assert only(assessment, "insufficient_data").severity == "info"
    assert assessment.recommendation is None


def test_missing_meminfo_is_insufficient_data() -> None:
    guest = replace(facts(1000 * MIB, 900 * MIB), meminfo=None, errors=("web: meminfo: bad",))
    assessment = analyzer.assess(case(guest))
    assert "insufficient_data" in codes(assessment)
    assert assessment.recommendation is None


def test_unreachable_hvm_at_pod_risk_still_gets_maxmem_fixed_not_memory() -> None:
    item = case(None, status="timeout", memory_mib=1024, maxmem_mib=4096, guest_type="hvm")
    assessment = analyzer.assess(item)
    assert {"insufficient_data", "hvm_pod_risk"} <= codes(assessment)
    rec = assessment.recommendation
    assert rec is not None
    assert rec.change == "maxmem"
    assert rec.memory_mib == 1024 and rec.maxmem_mib == 1024


def test_parse_errors_are_reported_with_their_source() -> None:
    guest = facts(1000 * MIB, 700 * MIB, errors=("web: vmstat: line 3: expected 'name value'",))
    assessment = analyzer.assess(case(guest))
    problem = only(assessment, "input_error")
    assert problem.evidence[0].source == "web"
    assert "vmstat" in problem.evidence[0].text


def test_healthy_guest() -> None:
    # 680 MiB needed of 1000: sized 1.2 × (680 + 24) = 845 → 896, within 15% of 1024.
    assessment = analyzer.assess(case(facts(1000 * MIB, 320 * MIB), memory_mib=1024))
    assert assessment.severity == "ok"
    assert codes(assessment) == {"healthy"}
    rec = assessment.recommendation
    assert rec is not None and rec.change == "none" and rec.memory_mib == 1024
    assert assessment.need_mib == 680
    assert any("keep 1024 MiB" in r for r in rec.reasons)


def test_a_lightly_used_guest_without_history_gets_only_a_hint() -> None:
    assessment = analyzer.assess(case(facts(1000 * MIB, 700 * MIB), memory_mib=1024))
    hint = only(assessment, "over_provisioned")
    assert hint.severity == "info"
    assert "not enough history" in hint.title
    rec = assessment.recommendation
    assert rec is not None and rec.change == "none" and rec.memory_mib == 1024


def test_hostile_process_names_are_quoted_cleanly() -> None:
    nasty = "\x1b[31mevil\nname" + "x" * 500
    guest = facts(1000 * MIB, 500 * MIB, events=(oom_kill(nasty, 100 * MIB),))
    kill = only(analyzer.assess(case(guest, memory_mib=1024)), "oom_kill")
    assert "\x1b" not in kill.title and "\n" not in kill.evidence[0].text
    assert len(kill.evidence[0].text) <= 300


def test_analysis_never_raises_on_nonsense_numbers() -> None:
    guest = facts(0, -5, swap_total_kib=-1, swap_free_kib=10)
    assessment = analyzer.assess(case(guest))
    assert assessment.domain == "web"
    assert assessment.findings
