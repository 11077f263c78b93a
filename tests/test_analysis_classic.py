"""The reference case: a 512 MiB DomU logging `swapper: page allocation failure. order:0`.

The right answer explains that atomic (softirq) allocations ran the reserve
dry while a quarter of memory was available: the fix is live sysctls (a
vm.min_free_kbytes scaled to the guest, not the blanket 65536, and
vm.watermark_scale_factor on its 5.10 kernel), not a restart. When
available memory is also short, memory rises a sized step as well.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

from tests.analysis_cases import (
    CLASSIC_AVAILABLE_KIB,
    CLASSIC_TOTAL_KIB,
    classic_512,
    meminfo,
)
from xenaudit.analysis import DefaultAnalyzer
from xenaudit.analysis.interface import Assessment, severity_rank


def _assess() -> Assessment:
    return DefaultAnalyzer().assess(classic_512())


def _short() -> Assessment:
    """The same guest with only 10% available: the reserve ran dry and memory is short too."""
    item = classic_512()
    facts = replace(
        item.facts,
        meminfo=meminfo(
            CLASSIC_TOTAL_KIB,
            CLASSIC_TOTAL_KIB // 10,
            swap_total_kib=524_284,
            swap_free_kib=471_856,
        ),
    )
    return DefaultAnalyzer().assess(replace(item, facts=facts))


def test_diagnosed_as_atomic_reserve_with_plenty_available() -> None:
    assessment = _assess()
    codes = {f.code for f in assessment.findings}
    assert "atomic_reserve" in codes
    assert "oom_kill" not in codes
    assert "fragmentation" not in codes
    assert "shortage" not in codes
    # 25% available and 10% of swap used: not short.
    assert assessment.severity == "warning"
    atomic = next(f for f in assessment.findings if f.code == "atomic_reserve")
    assert atomic.severity == "warning"
    assert "plenty of memory was available (25% available" in atomic.detail
    assert "fixed live with sysctls" in atomic.detail


def test_evidence_quotes_the_failures_with_line_numbers() -> None:
    atomic = next(f for f in _assess().findings if f.code == "atomic_reserve")
    quoted = [e for e in atomic.evidence if e.source.startswith("kernlog")]
    assert len(quoted) == 4
    assert all(e.line is not None for e in quoted)
    assert all("swapper" in e.text and "order:0" in e.text and "0x20" in e.text for e in quoted)
    memline = next(e for e in atomic.evidence if e.source == "meminfo" and "MemAvailable" in e.text)
    assert str(CLASSIC_AVAILABLE_KIB) in memline.text


def test_keeps_512_and_fixes_the_reserve_live() -> None:
    assessment = _assess()
    rec = assessment.recommendation
    assert rec is not None
    assert rec.change == "none" and rec.memory_mib == 512 and rec.maxmem_mib == 512
    need_mib = round((CLASSIC_TOTAL_KIB - CLASSIC_AVAILABLE_KIB) / 1024)
    assert rec.need_mib == need_mib
    text = " ".join(rec.reasons)
    assert f"need {need_mib} MiB" in text
    assert "answered live with sysctls" in text
    # Linux 5.10 has vm.watermark_scale_factor: 10 → 100 puts the watermarks 1% apart.
    (scale,) = [p for p in assessment.sysctls if p.name == "vm.watermark_scale_factor"]
    assert (scale.current, scale.proposed) == (10, 100)
    assert any(f"{CLASSIC_TOTAL_KIB * 100 // 10000} kB" in r for r in scale.reasons)
    titles = " ".join(a.title for a in assessment.advice)
    assert "vm.watermark_scale_factor to 100" in titles and "live, no restart" in titles


def test_short_of_memory_too_it_proposes_a_sized_step_above_512() -> None:
    rec = _short().recommendation
    assert rec is not None
    assert rec.change == "increase"
    assert rec.memory_mib > 512
    assert rec.memory_mib % 64 == 0
    # A step, not a blanket doubling.
    assert rec.memory_mib < 1024
    text = " ".join(rec.reasons)
    assert f"MemTotal {round(CLASSIC_TOTAL_KIB / 1024)} MiB" in text
    assert "kernel/firmware reservation" in text
    # 453 MiB need + 9 MiB reservation, × 1.2 = 554 → 576 on the 64 MiB grid.
    assert "× 1.20 margin = 554 MiB" in text and "increase 512 → 576 MiB" in text
    assert rec.confidence == "low"


def test_maxmem_gets_headroom_for_a_ballooning_pv_guest() -> None:
    rec = _short().recommendation
    assert rec is not None
    assert rec.maxmem_mib >= math.ceil(rec.memory_mib * 1.25)
    # The live maxmem is 512 MiB, so the increase cannot be done with mem-set.
    assert rec.live_change_safe is False
    assert any("needs a restart" in r for r in rec.reasons)


def test_min_free_kbytes_is_scaled_to_the_guest() -> None:
    assessment = _assess()
    suggestion = assessment.min_free
    assert suggestion is not None
    lowmem = suggestion.sized_for_kib
    # init_per_zone_wmark_min: sqrt(lowmem_kbytes * 16), far from either clamp here.
    assert suggestion.kernel_default_kib == math.isqrt(lowmem * 16)
    assert suggestion.suggested_kib > suggestion.kernel_default_kib
    assert suggestion.suggested_kib != 65536
    assert suggestion.suggested_kib <= 0.05 * lowmem
    assert suggestion.current_kib == 2870
    joined = " ".join(suggestion.reasons)
    assert "65536" in joined and "sqrt(" in joined
    advice = next(a for a in assessment.advice if "min_free_kbytes" in a.title)
    assert f"vm.min_free_kbytes={suggestion.suggested_kib}" in " ".join(advice.commands)


def test_never_writes_guest_advice_into_the_cfg_and_never_panic_on_oom() -> None:
    assessment = _assess()
    everything = " ".join(
        [a.title + a.detail + " ".join(a.commands) for a in assessment.advice]
        + [f.detail for f in assessment.findings]
    )
    assert "panic_on_oom" not in everything
    rec = _short().recommendation
    assert rec is not None
    assert not any(re.search(r"min_free|sysctl -w", r) for r in rec.reasons)


def test_more_failures_do_not_change_the_class() -> None:
    few = DefaultAnalyzer().assess(classic_512(failures=2))
    many = DefaultAnalyzer().assess(classic_512(failures=40))
    assert {f.code for f in few.findings} == {f.code for f in many.findings}
    assert severity_rank(many.severity) >= severity_rank(few.severity)
    atomic = next(f for f in many.findings if f.code == "atomic_reserve")
    assert any("5 of 40 failure reports shown" in e.text for e in atomic.evidence)
