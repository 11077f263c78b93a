"""Judging from Dom0 alone, on a recorded host's signals (tests/fake_xl/recordings/host_signals).

The host's signals are read with the same pure parsers as a live run; the
earlier nights are built here to state each situation.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.fake_xl.support import RECORDINGS
from xenaudit.analysis.default import DefaultAnalyzer
from xenaudit.analysis.hypervisor_nights import HypervisorNight
from xenaudit.analysis.interface import DomainInput
from xenaudit.cfgfiles import read_config
from xenaudit.hypervisor.interface import HostView
from xenaudit.hypervisor.signals import RAW_XEN_DMESG, RAW_XENSTORE, RAW_XENTOP
from xenaudit.hypervisor.xl_parse import RAW_INFO, RAW_LIST, RAW_LIST_LONG_JSON, build_xl_view
from xenaudit.hypervisor.xm_parse import XEND_REMOVED_NOTE
from xenaudit.inventory.interface import DomainOverride, Thresholds

HOST = RECORDINGS / "host_signals"
CFG = {"web": "web.cfg", "db": "db.cfg", "pvhguest": "pvh-guest.cfg", "winhvm": "winhvm.cfg"}
analyzer = DefaultAnalyzer()


def _view(**raw_changes: str) -> HostView:
    raw = {
        RAW_INFO: (HOST / "info.out").read_text(),
        RAW_LIST: (HOST / "list.out").read_text(),
        RAW_LIST_LONG_JSON: (HOST / "list_l.out").read_text(),
        RAW_XENSTORE: (HOST / "xenstore.store").read_text(),
        RAW_XENTOP: (HOST / "xentop.out").read_text(),
        RAW_XEN_DMESG: (HOST / "dmesg.out").read_text(),
    }
    raw.update(raw_changes)
    return build_xl_view("dom0a", raw)


def item(
    name: str,
    nights: tuple[HypervisorNight, ...] = (),
    collect: str = "hypervisor",
    view: HostView | None = None,
    **override: object,
) -> DomainInput:
    host = view or _view()
    domain = next(d for d in host.domains if d.name == name)
    loaded = read_config(HOST / "etc-xen" / CFG[name], f"/etc/xen/{CFG[name]}")
    return DomainInput(
        host=host,
        domain=domain,
        config=loaded.facts,
        snapshot=None,
        facts=None,
        override=DomainOverride(name=name, collect=collect, **override),  # type: ignore[arg-type]
        thresholds=Thresholds(),
        hypervisor_nights=nights,
    )


def night(
    run_at: str,
    domid: int,
    total: int | None = None,
    free: int | None = None,
    target: int | None = None,
    held: int | None = None,
    codes: tuple[str, ...] = (),
) -> HypervisorNight:
    return HypervisorNight(
        run_at=run_at,
        domid=domid,
        state="blocked",
        target_kib=target,
        held_kib=held,
        tools_total_kib=total,
        tools_free_kib=free,
        tools_source="guest agent (xenstore data/meminfo_total, data/meminfo_free)",
        feature_balloon=True,
        finding_codes=codes,
    )


def codes(assessment) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.code for f in assessment.findings]


def test_every_judgement_says_it_is_from_dom0_and_what_that_cannot_see() -> None:
    assessment = analyzer.assess(item("web"))
    side = next(f for f in assessment.findings if f.code == "hypervisor_side")
    assert "cannot see" in side.detail and "page allocation failures" in side.detail
    assert "low confidence" in side.detail and "never lowered" in side.detail
    assert any("xentop MEM(k)" in e.text for e in side.evidence)
    # Nothing here sizes web: its memory is left alone, and it says why.
    assert assessment.recommendation is None and "insufficient_data" in codes(assessment)


def test_guest_tools_little_free_one_night_warns_but_does_not_resize() -> None:
    assessment = analyzer.assess(item("db"))
    shortage = next(f for f in assessment.findings if f.code == "shortage")
    assert shortage.severity == "warning" and "8% of the guest's memory is free" in shortage.detail
    assert "MemFree on older agents" in shortage.detail
    assert assessment.recommendation is None
    assert assessment.need_mib == (760112 - 61220 + 512) // 1024


def test_three_nights_of_little_free_size_an_increase_with_low_confidence() -> None:
    earlier = (
        night("2026-11-22T02:31:00Z", 4, 1000000, 70112),
        night("2026-11-23T02:31:00Z", 4, 1000000, 52112, codes=("shortage",)),
    )
    assessment = analyzer.assess(item("db", earlier))
    rec = assessment.recommendation
    assert rec is not None and rec.change == "increase" and rec.confidence == "low"
    # Peak need 1000000 - 52112 kB (2026-11-23), plus what the guest holds beyond
    # its tools' total tonight (786432 - 760112 kB): 974208 kB x 1.2 = 1141.6 MiB,
    # on the 64 MiB grid 1152.
    assert rec.memory_mib == 1152 and rec.maxmem_mib == 1152 and rec.need_mib == 926
    assert any("peak on 2026-11-23T02:31:00Z" in r for r in rec.reasons)
    assert any("never lowered" in r for r in rec.reasons)
    shortage = next(f for f in assessment.findings if f.code == "shortage")
    assert shortage.nights_seen == 1 and shortage.first_seen == "2026-11-23T02:31:00Z"


def test_a_need_that_fits_the_cfg_but_not_the_live_target_asks_for_mem_set() -> None:
    earlier = (
        night("2026-11-22T02:31:00Z", 4, 760112, 70112),
        night("2026-11-23T02:31:00Z", 4, 760112, 52112),
    )
    assessment = analyzer.assess(item("db", earlier))
    rec = assessment.recommendation
    # The cfg's 1024 MiB covers the need, but db runs at a 768 MiB target.
    assert rec is not None and rec.change == "none" and rec.memory_mib == 1024
    below = next(f for f in assessment.findings if f.code == "balloon_below_need")
    assert "768 MiB" in below.detail and "xl mem-set db 896" in below.detail


def test_a_night_with_enough_free_in_the_window_stops_the_increase() -> None:
    earlier = (
        night("2026-11-22T02:31:00Z", 4, 760112, 400000),
        night("2026-11-23T02:31:00Z", 4, 760112, 52112),
    )
    assert analyzer.assess(item("db", earlier)).recommendation is None


def test_never_a_decrease_from_dom0() -> None:
    plenty = tuple(night(f"2026-11-{d:02d}T02:31:00Z", 4, 760112, 700000) for d in range(10, 24))
    view = _view(**{RAW_XENSTORE: (HOST / "xenstore.store").read_text().replace("61220", "700000")})
    assessment = analyzer.assess(item("db", plenty, view=view))
    assert assessment.recommendation is None
    assert any(
        "never lowered" in f.detail for f in assessment.findings if f.code == "insufficient_data"
    )


def test_balloon_stuck_below_target_keeps_the_size() -> None:
    assessment = analyzer.assess(item("pvhguest"))
    stuck = next(f for f in assessment.findings if f.code == "balloon_stuck")
    assert "256 MiB less than its balloon target tonight" in stuck.detail
    assert "the host has the memory" in stuck.detail  # 9655 MiB free
    rec = assessment.recommendation
    assert rec is not None and rec.change == "none" and rec.memory_mib == 1024


def test_balloon_stuck_for_nights_and_host_without_memory() -> None:
    earlier = (
        night("2026-11-22T02:31:00Z", 5, target=1048576, held=786432),
        night("2026-11-23T02:31:00Z", 5, target=1048576, held=786432),
    )
    info = (HOST / "info.out").read_text().replace(": 9655", ": 100")
    view = _view(**{RAW_INFO: info})
    stuck = next(
        f
        for f in analyzer.assess(item("pvhguest", earlier, view=view)).findings
        if f.code == "balloon_stuck"
    )
    assert "for 3 nights in a row" in stuck.detail and "Xen cannot give it more" in stuck.detail


def test_pod_crash_of_the_previous_domid_is_attributed_after_a_restart() -> None:
    earlier = (night("2026-11-23T02:31:00Z", 2),)
    assessment = analyzer.assess(item("winhvm", earlier))
    pod = next(f for f in assessment.findings if f.code == "pod_crash")
    assert pod.severity == "critical" and assessment.severity == "critical"
    assert "Dom2" in pod.detail
    assert [e.line for e in pod.evidence] == [4]  # the PoD line of dmesg.out
    assert "restarted" not in codes(assessment)


def test_a_pod_message_for_a_domid_never_seen_is_not_anyones() -> None:
    assessment = analyzer.assess(item("winhvm"))
    assert "pod_crash" not in codes(assessment) and "domain_crashed" not in codes(assessment)


def test_live_pod_mode_without_balloon_driver_gets_maxmem_equal_memory() -> None:
    # winhvm's cfg says maxmem = memory, so only the live values (4096 > 2048) are PoD mode;
    # with the cfg unreadable the live values decide.
    broken = item("winhvm")
    broken = replace(broken, config=replace(broken.config, error="unreadable", memory_mib=None))  # type: ignore[arg-type]
    assessment = analyzer.assess(broken)
    risk = next(f for f in assessment.findings if f.code == "hvm_pod_risk")
    assert "control/feature-balloon" in risk.detail
    rec = assessment.recommendation
    assert rec is not None and rec.change == "maxmem" and rec.maxmem_mib == rec.memory_mib == 2048
    assert any("change it by hand" in r for r in rec.reasons)
    confirmed = replace(broken, override=replace(broken.override, balloon_driver=True))
    assert "hvm_pod_risk" not in codes(analyzer.assess(confirmed))


def test_restart_without_a_crash_in_the_log_is_only_noted() -> None:
    assessment = analyzer.assess(item("web", (night("2026-11-23T02:31:00Z", 1),)))
    restarted = next(f for f in assessment.findings if f.code == "restarted")
    assert restarted.severity == "info" and "from 1 (2026-11-23T02:31:00Z) to 3" in restarted.detail


def test_a_domain_in_the_crashed_state() -> None:
    listing = (HOST / "list.out").read_text().replace("-b----     812.3", "---sc-     812.3")
    assessment = analyzer.assess(item("web", view=_view(**{RAW_LIST: listing})))
    crashed = next(f for f in assessment.findings if f.code == "domain_crashed")
    assert crashed.severity == "critical" and "crashed state now" in crashed.detail


def test_ssh_judged_domains_get_what_only_the_hypervisor_knows() -> None:
    ssh = item("pvhguest", collect="ssh")
    assessment = analyzer.assess(ssh)
    assert "balloon_stuck" in codes(assessment) and "hypervisor_side" not in codes(assessment)
    without = replace(ssh, host=replace(ssh.host, signals=None))
    assert "balloon_stuck" not in codes(analyzer.assess(without))


def test_the_host_plan_of_an_xm_dom0_says_xend_is_gone() -> None:
    view = _view()
    plan, _ = analyzer.plan_host(replace(view, backend="xm"), [], [])
    assert plan.notes[-1] == XEND_REMOVED_NOTE and "removed in Xen 4.5" in XEND_REMOVED_NOTE
    plan, _ = analyzer.plan_host(view, [], [])
    assert XEND_REMOVED_NOTE not in plan.notes


@pytest.mark.parametrize("name", ["web", "db", "pvhguest", "winhvm"])
def test_every_recorded_guest_is_judged_without_error(name: str) -> None:
    assessment = analyzer.assess(item(name))
    assert "insufficient_data" in codes(assessment) or assessment.severity != "ok"
    assert not any(f.title == "Analysis failed for this domain" for f in assessment.findings)


def test_xenballoond_meminfo_counts_as_guest_tools(tmp_path: Path) -> None:
    meminfo = "MemTotal: 1000000 kB\\nMemFree: 20000 kB\\nBuffers: 5000 kB\\nCached: 15000 kB"
    store = (HOST / "xenstore.store").read_text() + (
        f'/local/domain/3/memory/meminfo = "{meminfo}"\n'
    )
    assessment = analyzer.assess(item("web", view=_view(**{RAW_XENSTORE: store})))
    shortage = next(f for f in assessment.findings if f.code == "shortage")
    assert shortage.severity == "critical"  # 4% free
    assert any("MemFree + Buffers + Cached" in e.text for e in shortage.evidence)


def test_drift_between_cfg_and_live_target_is_reported_from_dom0() -> None:
    drifted = replace(item("web"), drift=("memory: cfg 1024 MiB, live target 768 MiB",))
    assessment = analyzer.assess(drifted)
    drift = next(f for f in assessment.findings if f.code == "drift")
    assert drift.evidence[0].text == "memory: cfg 1024 MiB, live target 768 MiB"
    assert "drift" not in codes(analyzer.assess(item("web")))
