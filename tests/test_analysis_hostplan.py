"""The host plan: the sum of planned sizes + Dom0 + Xen against the host's memory."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.analysis_cases import MIB, domain, host_view
from xenaudit.analysis import DefaultAnalyzer
from xenaudit.analysis.interface import (
    Assessment,
    ConfigFacts,
    DomainInput,
    Finding,
    Recommendation,
    Severity,
)
from xenaudit.hypervisor.interface import HostView
from xenaudit.inventory.interface import DomainOverride, Thresholds

analyzer = DefaultAnalyzer()


def _assessment(name: str, severity: Severity, current: int, planned: int | None) -> Assessment:
    rec = None
    if planned is not None:
        change = "increase" if planned > current else "decrease" if planned < current else "none"
        rec = Recommendation(
            memory_mib=planned,
            maxmem_mib=max(planned, current),
            reasons=("test",),
            confidence="high",
            need_mib=None,
            change=change,  # type: ignore[arg-type]
        )
    finding = Finding("shortage" if severity != "ok" else "healthy", severity, "t", "d")
    return Assessment(name, "xen1", severity, (finding,), recommendation=rec)


def _fleet(
    guests: list[tuple[str, int, int | None, Severity]],
    *,
    total_mib: int | None,
    dom0_mib: int = 2048,
    states: dict[str, str] | None = None,
) -> tuple[HostView, list[Assessment], list[DomainInput]]:
    states = states or {}
    domains = [
        domain(name, current, state=states.get(name, "blocked")) for name, current, _, _ in guests
    ]
    host = host_view(domains, total_mib=total_mib, dom0_mib=dom0_mib)
    inputs = [
        DomainInput(
            host=host,
            domain=d,
            config=ConfigFacts(f"/etc/xen/{d.name}.cfg", current, None, "pv"),
            snapshot=None,
            facts=None,
            override=DomainOverride(d.name),
            thresholds=Thresholds(),
        )
        for d, (_, current, _, _) in zip(domains, guests, strict=True)
    ]
    assessments = [_assessment(n, sev, cur, plan) for n, cur, plan, sev in guests]
    return host, assessments, inputs


def test_everything_fits() -> None:
    host, assessments, inputs = _fleet(
        [("a", 1024, 2048, "warning"), ("b", 2048, None, "ok")], total_mib=16384
    )
    plan, updated = analyzer.plan_host(host, assessments, inputs)
    assert plan.fits and plan.shortfall_mib == 0
    # Xen: reserve 256 + frame table 16384/128 = 128 + libxl's 1 MiB per PV domain.
    assert (plan.frame_table_mib, plan.paging_pool_mib, plan.domain_overhead_mib) == (128, 0, 2)
    assert plan.xen_total_mib == 386
    assert plan.current_total_mib == 2048 + 386 + 1024 + 2048
    assert plan.planned_total_mib == 2048 + 386 + 2048 + 2048
    assert all(a.recommendation is None or a.recommendation.fits for a in updated)
    assert {e.domain: e.accepted for e in plan.entries} == {"a": True, "b": True}
    assert "left" in plan.notes[0]


def test_the_most_severe_increase_wins_and_the_rest_is_marked() -> None:
    # 8192 host: dom0 2048 + Xen 324 (reserve 256, frame table 64, 4 × 1 MiB per PV
    # domain) + 4 × 1024 = 6468; 1724 MiB free.
    host, assessments, inputs = _fleet(
        [
            ("info-big", 1024, 2048, "info"),  # +1024
            ("crit", 1024, 2560, "critical"),  # +1536
            ("warn", 1024, 1536, "warning"),  # +512
            ("shrink", 1024, 512, "info"),  # −512 (applied first)
        ],
        total_mib=8192,
    )
    # dom0_mem on Xen's command line: xl's autoballoon ("auto") leaves Dom0 alone.
    host = replace(host, dom0_mem_kib=2048 * MIB)
    plan, updated = analyzer.plan_host(host, assessments, inputs)
    by_name = {a.domain: a for a in updated}
    # Free after the decrease: 8192 − (6468 − 512) = 2236. critical +1536 fits (700 left),
    # warning +512 fits (188 left), info +1024 does not: needs 836 MiB more.
    assert by_name["crit"].recommendation.fits
    assert by_name["warn"].recommendation.fits
    assert by_name["shrink"].recommendation.fits
    loser = by_name["info-big"]
    assert loser.recommendation.fits is False
    assert loser.recommendation.not_fitting_reason == "does not fit on xen1: needs 836 MiB more"
    assert any(f.code == "host_capacity" for f in loser.findings)
    assert loser.severity == "warning"
    assert plan.autoballoon is False
    assert any("dom0_mem=2048 MiB is set: xl will not shrink Dom0" in n for n in plan.notes)
    assert plan.shortfall_mib == 6468 - 512 + 1536 + 512 + 1024 - 8192
    assert not plan.fits
    assert plan.planned_total_mib <= 8192
    entries = {e.domain: e for e in plan.entries}
    assert entries["info-big"].accepted is False and entries["info-big"].planned_mib == 1024
    assert any("does not fit" in n for n in plan.notes)


def test_xen_reserve_comes_from_the_caller_or_the_inputs() -> None:
    host, assessments, inputs = _fleet([("a", 1024, None, "ok")], total_mib=16384)
    plan, _ = analyzer.plan_host(host, assessments, inputs, xen_reserve_mib=512)
    assert plan.xen_reserve_mib == 512
    inputs = [replace(i, xen_reserve_mib=300) for i in inputs]
    plan, _ = analyzer.plan_host(host, assessments, inputs)
    assert plan.xen_reserve_mib == 300
    assert plan.current_total_mib == 2048 + 300 + 128 + 1 + 1024


def test_shut_off_domains_are_counted_and_noted() -> None:
    host, assessments, inputs = _fleet(
        [("up", 1024, None, "ok"), ("down", 4096, None, "ok")],
        total_mib=16384,
        states={"down": "shutoff"},
    )
    plan, _ = analyzer.plan_host(host, assessments, inputs)
    assert plan.current_total_mib == 2048 + plan.xen_total_mib + 1024 + 4096
    assert any("shut-off" in n and "down" in n and "4096 MiB" in n for n in plan.notes)


def test_unknown_total_cannot_be_checked() -> None:
    host, assessments, inputs = _fleet([("a", 1024, 8192, "critical")], total_mib=None)
    plan, updated = analyzer.plan_host(host, assessments, inputs)
    assert plan.total_mib is None
    assert plan.shortfall_mib == 0
    assert updated[0].recommendation.fits
    assert any("unknown" in n for n in plan.notes)


def test_dom0_falls_back_to_dom0_mem() -> None:
    host, assessments, inputs = _fleet([("a", 1024, None, "ok")], total_mib=16384)
    host = replace(host, domains=host.guests, dom0_mem_kib=4096 * MIB)
    plan, _ = analyzer.plan_host(host, assessments, inputs)
    assert plan.dom0_mib == 4096


def test_an_overcommitted_host_says_so() -> None:
    host, assessments, inputs = _fleet(
        [("a", 4096, None, "ok"), ("b", 4096, 4608, "warning")], total_mib=8192
    )
    plan, updated = analyzer.plan_host(host, assessments, inputs)
    assert plan.shortfall_mib > 0
    assert any("already over" in n for n in plan.notes)
    assert updated[1].recommendation.fits is False


GUEST = st.tuples(
    st.integers(min_value=2, max_value=64).map(lambda n: n * 64),
    st.one_of(st.none(), st.integers(min_value=2, max_value=96).map(lambda n: n * 64)),
    st.sampled_from(["ok", "info", "warning", "critical"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    guests=st.lists(GUEST, min_size=1, max_size=8),
    total=st.integers(min_value=4096, max_value=32768),
    dom0=st.integers(min_value=512, max_value=4096),
)
def test_an_accepted_plan_never_exceeds_the_host(guests, total, dom0) -> None:
    fleet = [(f"d{i}", cur, plan, sev) for i, (cur, plan, sev) in enumerate(guests)]
    host, assessments, inputs = _fleet(fleet, total_mib=total, dom0_mib=dom0)
    plan, updated = analyzer.plan_host(host, assessments, inputs)
    accepted = sum(e.planned_mib if e.accepted else e.current_mib for e in plan.entries)
    assert plan.xen_total_mib == 256 + round(total / 128) + len(guests)
    assert accepted + dom0 + plan.xen_total_mib == plan.planned_total_mib
    if plan.current_total_mib <= total:
        assert plan.planned_total_mib <= total
    for entry, assessment in zip(plan.entries, updated, strict=True):
        rec = assessment.recommendation
        if rec is not None and rec.change == "decrease":
            assert entry.accepted and rec.fits
        if rec is not None and not rec.fits:
            assert not entry.accepted
            assert rec.not_fitting_reason and "does not fit on xen1" in rec.not_fitting_reason
    # Nothing left out could have fitted in what is left.
    left = total - plan.planned_total_mib
    for entry in plan.entries:
        if not entry.accepted:
            target = next(a for a in updated if a.domain == entry.domain).recommendation
            assert target.memory_mib - entry.current_mib > left
