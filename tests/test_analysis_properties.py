"""Properties of the analysis over generated guests (bounded examples, no timing).

* more pressure never lowers the recommended memory;
* the same input always gives the same output;
* a domain we could not read never gets a smaller memory;
* no patch sets maxmem above memory on an HVM/PVH guest without a confirmed
  balloon driver, nor on any domain with passthrough;
* the second night of an unchanged, unresolved finding never lowers the
  recommendation;
* several runs in one night count as one night.

"More failures" means the kernel log grew: reports seen on earlier nights
stay in it and new ones are appended, which is how a ring buffer behaves
between two runs without a reboot.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.analysis_cases import MIB, case, facts, failure, night, oom_kill, psi
from xenaudit.analysis import DefaultAnalyzer
from xenaudit.analysis.history import HistoryStore, night_for_assessment
from xenaudit.analysis.interface import Assessment, DomainInput
from xenaudit.hypervisor.interface import GuestType

analyzer = DefaultAnalyzer()
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class State:
    memory_mib: int
    guest_type: GuestType
    reserved_kib: int
    available_kib: int
    swap_total_kib: int
    swap_used_kib: int
    atomic_failures: int
    high_order_failures: int
    oom_kills: int
    psi_some: float
    psi_full: float
    history_avail_kib: tuple[int, ...]
    #: Failures and kills already in the log on the last history night.
    seen_failures: int
    seen_kills: int
    #: The guest shows a xen_memory balloon target (a working driver).
    balloon: bool = True

    @property
    def total_kib(self) -> int:
        return self.memory_mib * MIB - self.reserved_kib

    def item(self) -> DomainInput:
        events = []
        line = 10
        for _ in range(self.atomic_failures):
            events.append(failure(0, line=line))
            line += 40
        for _ in range(self.high_order_failures):
            events.append(failure(3, line=line, process="eth0"))
            line += 40
        for k in range(self.oom_kills):
            events.append(oom_kill(f"proc{k}", 100 * MIB, pid=100 + k, line=line))
            line += 40
        # Log order is time order: put the events in line order.
        events.sort(key=lambda e: e.line)
        nights = tuple(
            night(
                f"2026-11-{day + 1:02d}T02:30:00Z",
                self.total_kib,
                min(avail, self.total_kib),
                page_alloc_failures=self.seen_failures
                if day == len(self.history_avail_kib) - 1
                else 0,
                oom_kills=self.seen_kills if day == len(self.history_avail_kib) - 1 else 0,
                codes=(),
            )
            for day, avail in enumerate(self.history_avail_kib)
        )
        guest = facts(
            self.total_kib,
            min(self.available_kib, self.total_kib),
            swap_total_kib=self.swap_total_kib,
            swap_free_kib=self.swap_total_kib - self.swap_used_kib,
            events=tuple(events),
            pressure=psi(self.psi_some, self.psi_full),
            min_free_kbytes=2048,
            balloon_target_kib=self.memory_mib * MIB if self.balloon else None,
            balloon_current_kib=self.memory_mib * MIB if self.balloon else None,
        )
        return case(guest, memory_mib=self.memory_mib, guest_type=self.guest_type, history=nights)


@st.composite
def states(draw: st.DrawFn) -> State:
    memory = draw(st.sampled_from([256, 512, 768, 1024, 2048, 4096]))
    total_guess = memory * MIB
    swap_total = draw(st.sampled_from([0, 512 * MIB, 2048 * MIB]))
    atomic = draw(st.integers(0, 5))
    high = draw(st.integers(0, 3))
    kills = draw(st.integers(0, 3))
    return State(
        memory_mib=memory,
        guest_type=draw(st.sampled_from(["pv", "pvh", "hvm"])),
        reserved_kib=draw(st.integers(0, total_guess // 20)),
        available_kib=draw(st.integers(0, total_guess)),
        swap_total_kib=swap_total,
        swap_used_kib=draw(st.integers(0, swap_total)),
        atomic_failures=atomic,
        high_order_failures=high,
        oom_kills=kills,
        psi_some=draw(st.floats(0, 60, allow_nan=False)),
        psi_full=draw(st.floats(0, 30, allow_nan=False)),
        history_avail_kib=tuple(
            draw(st.lists(st.integers(0, total_guess), min_size=0, max_size=10))
        ),
        seen_failures=draw(st.integers(0, atomic + high)),
        seen_kills=draw(st.integers(0, kills)),
        balloon=draw(st.booleans()),
    )


@st.composite
def worse(draw: st.DrawFn, base: State) -> State:
    """The same guest under at least as much pressure."""
    extra_swap = draw(st.integers(0, base.swap_total_kib - base.swap_used_kib))
    return replace(
        base,
        available_kib=draw(st.integers(0, base.available_kib)),
        swap_used_kib=base.swap_used_kib + extra_swap,
        atomic_failures=base.atomic_failures + draw(st.integers(0, 4)),
        high_order_failures=base.high_order_failures + draw(st.integers(0, 2)),
        oom_kills=base.oom_kills + draw(st.integers(0, 2)),
        psi_some=base.psi_some + draw(st.floats(0, 30, allow_nan=False)),
        psi_full=base.psi_full + draw(st.floats(0, 30, allow_nan=False)),
    )


def planned_memory(assessment: Assessment, current: int) -> int:
    rec = assessment.recommendation
    return rec.memory_mib if rec is not None else current


@SETTINGS
@given(data=st.data())
def test_more_pressure_never_lowers_the_recommendation(data: st.DataObject) -> None:
    base = data.draw(states())
    pressed = data.draw(worse(base))
    calm = analyzer.assess(base.item())
    hard = analyzer.assess(pressed.item())
    assert planned_memory(hard, base.memory_mib) >= planned_memory(calm, base.memory_mib)


@SETTINGS
@given(state=states())
def test_the_same_input_gives_the_same_output(state: State) -> None:
    item = state.item()
    first = analyzer.assess(item)
    again = DefaultAnalyzer().assess(item)
    rebuilt = analyzer.assess(state.item())
    assert first == again == rebuilt


@SETTINGS
@given(state=states(), status=st.sampled_from(["unreachable", "timeout", "auth_failed"]))
def test_insufficient_data_never_lowers_memory(state: State, status: str) -> None:
    item = replace(state.item(), facts=None)
    item = replace(item, snapshot=replace(item.snapshot, status=status))
    assessment = analyzer.assess(item)
    assert any(f.code == "insufficient_data" for f in assessment.findings)
    rec = assessment.recommendation
    assert rec is None or (rec.memory_mib >= state.memory_mib and rec.change != "decrease")


@SETTINGS
@given(state=states())
def test_recommendations_are_on_the_grid_and_above_the_floor(state: State) -> None:
    rec = analyzer.assess(state.item()).recommendation
    assert rec is not None
    if rec.change == "none":
        assert rec.memory_mib == state.memory_mib  # below the floor too: it never makes a change
    else:
        assert rec.memory_mib >= 256
    assert rec.maxmem_mib >= rec.memory_mib
    if rec.change in ("increase", "decrease"):
        assert rec.memory_mib % 64 == 0
    if state.guest_type == "hvm" and not state.balloon:
        assert rec.maxmem_mib == rec.memory_mib
        assert not rec.live_change_safe
    if rec.change == "decrease":
        assert len(state.history_avail_kib) >= 7


# --- safe patches, nights and unresolved findings ------------------------------------------


@SETTINGS
@given(
    state=states(),
    extra_maxmem=st.sampled_from([0, 64, 512, 2048]),
    passthrough=st.booleans(),
    balloon_override=st.sampled_from([None, True, False]),
)
def test_no_patch_sets_maxmem_above_memory_where_pod_would_crash_or_libxl_refuse(
    state: State, extra_maxmem: int, passthrough: bool, balloon_override: bool | None
) -> None:
    item = state.item()
    assert item.config is not None
    config = replace(
        item.config,
        maxmem_mib=state.memory_mib + extra_maxmem if extra_maxmem else None,
        passthrough="pci/dtdev = 1 device(s)" if passthrough else None,
    )
    domain = replace(item.domain, max_kib=(state.memory_mib + extra_maxmem) * MIB)
    override = replace(item.override, balloon_driver=balloon_override)
    item = replace(item, config=config, domain=domain, override=override)
    rec = analyzer.assess(item).recommendation
    confirmed = balloon_override is True or (balloon_override is None and state.balloon)
    if rec is not None and (passthrough or (state.guest_type != "pv" and not confirmed)):
        assert rec.maxmem_mib == rec.memory_mib


@SETTINGS
@given(state=states())
def test_an_unresolved_finding_never_drops_on_its_second_night(state: State) -> None:
    first_item = state.item()
    first = analyzer.assess(first_item)
    rec = first.recommendation
    if rec is None or rec.change != "increase":
        return
    assert first_item.facts is not None
    tonight = night_for_assessment(
        first_item.facts,
        "2026-12-01T02:30:00Z",
        first,
        first_item.config,
        first_item.domain.target_kib,
    )
    # The next night: nothing changed (same log, same cfg, same numbers).
    second = analyzer.assess(replace(first_item, history=(*first_item.history, tonight)))
    again = second.recommendation
    assert again is not None
    assert again.memory_mib >= rec.memory_mib


RUN_MINUTES = st.integers(min_value=0, max_value=24 * 60 - 1)


@settings(max_examples=60, deadline=None)
@given(
    runs=st.lists(
        st.tuples(RUN_MINUTES, st.integers(0, 900), st.integers(0, 5)),
        min_size=1,
        max_size=6,
        unique_by=lambda run: run[0],
    ),
    nights=st.integers(min_value=1, max_value=3),
)
def test_runs_within_one_night_never_count_twice(
    runs: list[tuple[int, int, int]], nights: int
) -> None:
    start = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as state, HistoryStore.open(state, zone=UTC) as store:
        for day in range(nights):
            for minute, need_mib, failures in runs:
                when = start + timedelta(days=day, minutes=minute)
                row = night(
                    when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    1000 * MIB,
                    (1000 - need_mib) * MIB,
                    page_alloc_failures=failures,
                )
                store.record(row.run_at, "h", "d", row)
        recorded = store.nights("h", "d")
        assert store.count() == nights
        distinct = len({minute for minute, _, _ in runs})
        assert [n.runs for n in recorded] == [distinct] * nights
        peak = max(need for _, need, _ in runs)
        assert all(n.need_kib == peak * MIB for n in recorded)
        # A run the next morning sees every night before its own, once each.
        after = (start + timedelta(days=nights, hours=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert len(store.nights_before("h", "d", after)) == nights
