"""Sizing rules: need × margin in cfg terms, decreases only with history, floors, confidence."""

from __future__ import annotations

import math

import pytest

from tests.analysis_cases import MIB, case, facts, night, quiet_nights
from xenaudit.analysis import DefaultAnalyzer
from xenaudit.analysis.interface import Recommendation
from xenaudit.inventory.interface import DomainOverride, Thresholds

analyzer = DefaultAnalyzer()

# A 2 GiB PV guest (MemTotal 1990 MiB) that never needs more than 600 MiB.
TOTAL = 1990 * MIB
AVAILABLE = 1390 * MIB


def _over_provisioned(nights: int, **kw: object) -> Recommendation:
    item = case(
        facts(TOTAL, AVAILABLE),
        memory_mib=2048,
        history=quiet_nights(nights, TOTAL, AVAILABLE),
        **kw,  # type: ignore[arg-type]
    )
    assessment = analyzer.assess(item)
    assert assessment.recommendation is not None
    return assessment.recommendation


def test_ten_quiet_nights_allow_a_decrease() -> None:
    rec = _over_provisioned(10)
    assert rec.change == "decrease"
    # need 600 MiB + 58 MiB reservation (2048 − 1990) = 658 × 1.2 = 789.6 → 832.
    assert rec.memory_mib == 832
    assert rec.confidence == "high"
    assert rec.live_change_safe is False
    # Keeping maxmem lets the guest be given memory back live.
    assert rec.maxmem_mib == 2048


def test_three_nights_are_not_enough_to_decrease_and_say_why() -> None:
    rec = _over_provisioned(3)
    assert rec.change == "none"
    assert rec.memory_mib == 2048
    assert any("only 3 night(s) of history" in r and "at least 7" in r for r in rec.reasons)
    assert rec.confidence == "medium"


def test_decrease_threshold_follows_settings() -> None:
    rec = _over_provisioned(3, thresholds=Thresholds(decrease_min_nights=3))
    assert rec.change == "decrease"


def test_a_pressure_night_in_history_blocks_the_decrease() -> None:
    history = list(quiet_nights(10, TOTAL, AVAILABLE))
    # Failures nine nights ago: resolved by seven quiet nights, but still a pressure night.
    history[1] = night(
        history[1].run_at, TOTAL, AVAILABLE, page_alloc_failures=2, codes=("atomic_reserve",)
    )
    assessment = analyzer.assess(
        case(facts(TOTAL, AVAILABLE), memory_mib=2048, history=tuple(history))
    )
    rec = assessment.recommendation
    assert rec is not None and rec.change == "none"
    assert any("pressure was seen on 1 of the last 10 nights" in r for r in rec.reasons)


def test_the_peak_of_history_not_tonight_sizes_the_guest() -> None:
    history = list(quiet_nights(10, TOTAL, AVAILABLE))
    # One busy night needed 1500 MiB.
    history[2] = night(history[2].run_at, TOTAL, TOTAL - 1500 * MIB)
    assessment = analyzer.assess(
        case(facts(TOTAL, AVAILABLE), memory_mib=2048, history=tuple(history))
    )
    rec = assessment.recommendation
    assert rec is not None
    assert rec.need_mib == 1500
    # (1500 + 58) × 1.2 = 1869.6 → 1920: only 6% below 2048, not worth a change.
    assert rec.change == "none"
    assert any(history[2].run_at in r for r in rec.reasons)
    assert any("less than the 15%" in r for r in rec.reasons)
    assert assessment.need_history_mib[2] == 1500
    assert len(assessment.need_history_mib) == 11


def test_floor_and_min_memory_are_respected() -> None:
    tiny = case(
        facts(490 * MIB, 450 * MIB), memory_mib=512, history=quiet_nights(10, 490 * MIB, 450 * MIB)
    )
    rec = analyzer.assess(tiny).recommendation
    assert rec is not None and rec.change == "decrease"
    assert rec.memory_mib == 256  # floor_mib
    pinned = case(
        facts(490 * MIB, 450 * MIB),
        memory_mib=512,
        history=quiet_nights(10, 490 * MIB, 450 * MIB),
        override=DomainOverride("web", min_memory_mib=300),
    )
    rec = analyzer.assess(pinned).recommendation
    assert rec is not None and rec.change == "decrease"
    assert rec.memory_mib == 320  # the domain's own minimum, on the 64 MiB grid


def test_the_floor_alone_never_makes_an_increase() -> None:
    # A 128 MiB appliance using 30 MiB: below floor_mib (256), but nothing says it needs more.
    small = case(facts(110 * MIB, 80 * MIB), memory_mib=128)
    rec = analyzer.assess(small).recommendation
    assert rec is not None
    assert rec.change == "none" and rec.memory_mib == 128
    assert any("below floor_mib (256 MiB) but covers the need" in r for r in rec.reasons)
    # The domain's own minimum is the admin's explicit wish: it does raise it.
    pinned = case(
        facts(110 * MIB, 80 * MIB),
        memory_mib=128,
        override=DomainOverride("web", min_memory_mib=256),
    )
    rec = analyzer.assess(pinned).recommendation
    assert rec is not None and rec.change == "increase" and rec.memory_mib == 256


def test_a_real_increase_below_the_floor_goes_to_the_floor() -> None:
    # 128 MiB with 4% available: pressure, so an increase; the floor sizes it.
    short = case(facts(110 * MIB, 4 * MIB), memory_mib=128)
    rec = analyzer.assess(short).recommendation
    assert rec is not None and rec.change == "increase"
    assert rec.memory_mib == 256
    assert any("raised to the floor of 256 MiB" in r for r in rec.reasons)


def test_a_floor_close_to_the_current_size_keeps_it() -> None:
    pinned = case(
        facts(490 * MIB, 450 * MIB),
        memory_mib=512,
        history=quiet_nights(10, 490 * MIB, 450 * MIB),
        override=DomainOverride("web", min_memory_mib=400),
    )
    rec = analyzer.assess(pinned).recommendation
    assert rec is not None
    # 400 → 448 on the grid saves 12.5% of 512, below decrease_min_fraction.
    assert rec.change == "none" and rec.memory_mib == 512


def test_increase_is_rounded_to_the_step_and_explained() -> None:
    # 1 GiB guest with 8% available: warning-level pressure.
    total, available = 1000 * MIB, 80 * MIB
    rec = analyzer.assess(case(facts(total, available), memory_mib=1024)).recommendation
    assert rec is not None and rec.change == "increase"
    need_cfg = (total - available) / MIB + (1024 * MIB - total) / MIB
    assert rec.memory_mib == math.ceil(need_cfg * 1.2 / 64) * 64
    assert any("× 1.20 margin" in r for r in rec.reasons)
    assert any("+ 24 MiB kernel/firmware reservation" in r for r in rec.reasons)


def test_margin_setting_changes_the_size() -> None:
    total, available = 1000 * MIB, 80 * MIB
    small = analyzer.assess(
        case(facts(total, available), memory_mib=1024, thresholds=Thresholds(margin=0.1))
    ).recommendation
    large = analyzer.assess(
        case(facts(total, available), memory_mib=1024, thresholds=Thresholds(margin=0.5))
    ).recommendation
    assert small is not None and large is not None
    assert large.memory_mib > small.memory_mib


def test_without_cfg_the_live_target_is_the_current_size() -> None:
    item = case(facts(1000 * MIB, 80 * MIB), memory_mib=1024, config=False)
    rec = analyzer.assess(item).recommendation
    assert rec is not None and rec.change == "increase"
    assert any("live target 1024" in r for r in rec.reasons)


@pytest.mark.parametrize(
    ("nights", "expected"), [(0, "low"), (2, "low"), (3, "medium"), (6, "medium"), (7, "high")]
)
def test_confidence_grows_with_history(nights: int, expected: str) -> None:
    item = case(
        facts(1000 * MIB, 500 * MIB),
        memory_mib=1024,
        history=quiet_nights(nights, 1000 * MIB, 500 * MIB),
    )
    rec = analyzer.assess(item).recommendation
    assert rec is not None
    assert rec.confidence == expected


def test_estimated_memavailable_lowers_confidence() -> None:
    guest = facts(1000 * MIB, 500 * MIB)
    fields = dict(guest.meminfo.fields_kib)
    del fields["MemAvailable"]
    fields.update({"MemFree": 300 * MIB, "Buffers": 50 * MIB, "Cached": 200 * MIB, "Shmem": 0})
    from dataclasses import replace

    from xenaudit.parsers.interface import Meminfo

    old_kernel = replace(guest, meminfo=Meminfo(fields))
    rec = analyzer.assess(
        case(old_kernel, memory_mib=1024, history=quiet_nights(8, 1000 * MIB, 500 * MIB))
    ).recommendation
    assert rec is not None
    assert rec.confidence == "medium"
    assert any("estimated" in r for r in rec.reasons)


def test_implausible_reservation_is_capped() -> None:
    # cfg 4096 but the guest shows 1000 MiB (e.g. mismatched numbers): kernels keep a few
    # percent, so the reservation is capped at 5% of 4096 + 16 MiB = 220 MiB, and the
    # night's numbers are suspect (they size nothing down).
    item = case(facts(1000 * MIB, 200 * MIB), memory_mib=4096)
    assessment = analyzer.assess(item)
    rec = assessment.recommendation
    assert rec is not None
    assert any("capped at 220 MiB" in r and "suspect" in r for r in rec.reasons)
    assert any(f.code == "damaged_read" for f in assessment.findings)


def test_a_decrease_is_safe_live_with_a_working_balloon_driver() -> None:
    guest = facts(TOTAL, AVAILABLE, balloon_target_kib=2048 * MIB, balloon_current_kib=2048 * MIB)
    item = case(guest, memory_mib=2048, history=quiet_nights(10, TOTAL, AVAILABLE))
    rec = analyzer.assess(item).recommendation
    assert rec is not None and rec.change == "decrease" and rec.memory_mib == 832
    assert rec.live_change_safe is True
    assert any("xl mem-set web 832m" in r for r in rec.reasons)


def test_a_decrease_is_not_live_for_hvm_without_a_confirmed_driver() -> None:
    item = case(
        facts(TOTAL, AVAILABLE),
        memory_mib=2048,
        guest_type="hvm",
        history=quiet_nights(10, TOTAL, AVAILABLE),
        override=DomainOverride("web", balloon_driver=False),
    )
    rec = analyzer.assess(item).recommendation
    assert rec is not None and rec.change == "decrease"
    assert rec.live_change_safe is False
