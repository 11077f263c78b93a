"""Chart geometry: proportional, inside its viewBox, built from numbers only."""

from __future__ import annotations

import itertools

import pytest

from xenaudit.analysis.interface import HostPlan, PlanEntry
from xenaudit.formats import charts


def _plan(total: int | None, entries: list[tuple[str, int, int]], shortfall: int = 0) -> HostPlan:
    items = tuple(PlanEntry(n, c, p, True) for n, c, p in entries)
    current = 2048 + 256 + sum(c for _, c, _ in entries)
    planned = 2048 + 256 + sum(p for _, _, p in entries)
    return HostPlan("h", total, 2048, 256, items, current, planned, shortfall)


def _row(chart: charts.BarChart, y: float) -> list[charts.Segment]:
    return [s for s in chart.segments if s.y == y]


def test_nice_steps_are_binary_sizes() -> None:
    assert charts.nice_step_mib(18432) == 4096
    assert charts.nice_step_mib(1100) == 256
    assert charts.nice_step_mib(0) == 1
    for span in (100, 777, 5000, 70000):
        step = charts.nice_step_mib(span)
        assert step & (step - 1) == 0
        assert 2 <= span / step <= 6.0001


def test_fit_label() -> None:
    assert charts.fit_label("web01", 200) == "web01"
    # A name that does not fit whole is left to the legend, never cut to "a-very…".
    assert charts.fit_label("a-very-long-domain-name", 60) == ""
    assert charts.fit_label("a-very-long-domain-name", 400) == "a-very-long-domain-name"
    assert charts.fit_label("web01", 10) == ""
    assert len(charts.fit_label("x" * 200, 5000)) == charts.MAX_LABEL_CHARS
    assert charts.fit_label("two\nlines", 200) == "two lines"


def test_plan_segments_are_proportional_and_fill_the_host() -> None:
    plan = _plan(16384, [("web01", 512, 768), ("db01", 4096, 4096)])
    chart = charts.host_plan_chart(plan)
    now = _row(chart, charts.PLAN_TOP)
    assert [s.title.split(":")[0] for s in now] == ["Dom0", "Xen", "web01", "db01", "free"]
    widths = {s.title.split(":")[0]: s.width for s in now}
    assert widths["db01"] == pytest.approx(widths["web01"] * 8, rel=0.01)
    assert widths["Dom0"] == pytest.approx(widths["web01"] * 4, rel=0.01)
    # Contiguous, and ending where the capacity marker stands.
    for left, right in itertools.pairwise(now):
        assert right.x == pytest.approx(left.x + left.width, abs=0.2)
    (capacity,) = chart.markers
    assert now[-1].x + now[-1].width == pytest.approx(capacity.x, abs=0.2)
    planned = _row(chart, charts.PLAN_TOP + charts.PLAN_BAR_HEIGHT + charts.PLAN_ROW_GAP)
    changed = [s.title.split(":")[0] for s in planned if s.changed]
    assert changed == ["web01"]
    assert not any(s.fill == charts.SHORT_COLOUR for s in chart.segments)


def test_shortfall_is_red_beyond_the_capacity_line() -> None:
    plan = _plan(8192, [("big", 4096, 7168)], shortfall=1280 + 256 + 2048 - 128)
    chart = charts.host_plan_chart(plan)
    (short,) = [s for s in chart.segments if s.fill == charts.SHORT_COLOUR]
    (capacity,) = chart.markers
    assert short.x == pytest.approx(capacity.x, abs=0.2)
    guest = next(s for s in chart.segments if s.title.startswith("big") and s.changed)
    per_mib = guest.width / 7168
    assert short.width == pytest.approx(plan.shortfall_mib * per_mib, rel=0.01)
    assert "short" in short.title
    assert short.x + short.width <= chart.width


def test_plan_without_host_total_has_no_free_or_capacity() -> None:
    chart = charts.host_plan_chart(_plan(None, [("a", 1024, 1024)]))
    assert chart.markers == ()
    assert all(s.title.split(":")[0] != "free" for s in chart.segments)


def test_everything_inside_the_viewbox() -> None:
    plan = _plan(65536, [(f"g{i}", 512 + 64 * i, 1024 + 64 * i) for i in range(60)], 0)
    chart = charts.host_plan_chart(plan)
    for s in chart.segments:
        assert s.x >= 0 and s.x + s.width <= chart.width + 0.2
        assert s.y >= 0 and s.y + s.height <= chart.height
    for t in chart.ticks:
        assert 0 <= t.x <= chart.width
    assert len(chart.legend) == 62


def test_domain_chart_splits_used_cache_free() -> None:
    fig = charts.MemoryFigures(491, 38, 9, 512, 512, 768, 1024)
    chart = charts.domain_memory_chart(fig)
    used, cache, free = chart.segments
    assert [s.title.split(":")[0] for s in (used, cache, free)] == ["used", "cache", "free"]
    total_width = used.width + cache.width + free.width
    assert used.width / total_width == pytest.approx((491 - 38) / 491, rel=0.01)
    assert free.width / total_width == pytest.approx(9 / 491, rel=0.02)
    labels = sorted(m.label for m in chart.markers)
    # Under 4 GiB every size is in MiB, as in the report's text.
    assert labels == ["memory 512 MiB", "new maxmem 1024 MiB", "new memory 768 MiB"]
    memory = next(m for m in chart.markers if m.label.startswith("memory"))
    recommended = next(m for m in chart.markers if m.label.startswith("new memory"))
    assert recommended.x - chart.axis_x1 == pytest.approx(
        (memory.x - chart.axis_x1) * 1.5, rel=0.01
    )
    assert chart.axis_y + 20 <= chart.height


def test_close_marker_labels_go_on_separate_lines() -> None:
    chart = charts.domain_memory_chart(charts.MemoryFigures(990, 600, 300, 1024, 2048, 1024, 2048))
    # memory == recommended: both drawn, their labels on different lines.
    ys = sorted(m.label_y for m in chart.markers if m.x == chart.markers[0].x)
    assert len(ys) == 2 and ys[0] != ys[1]


def _boxes(chart: charts.BarChart) -> list[tuple[float, float, float, float]]:
    """Estimated boxes (x1, y1, x2, y2) of every marker label."""
    boxes = []
    for m in chart.markers:
        w = charts.label_width(m.label)
        x1 = m.label_x - (w if m.anchor == "end" else w / 2 if m.anchor == "middle" else 0)
        boxes.append((x1, m.label_y - 11, x1 + w, m.label_y + 3))
    return boxes


@pytest.mark.parametrize("width", [charts.DOMAIN_WIDTH, charts.NARROW_WIDTH])
@pytest.mark.parametrize(
    "fig",
    [
        charts.MemoryFigures(491, 38, 9, 512, 512, 576, 768),
        charts.MemoryFigures(990, 600, 300, 1024, 2048, 1024, 2048),
        charts.MemoryFigures(1966, 94, 16, 2048, 2048, 2368, 3008),
        charts.MemoryFigures(6000, 3000, 2000, 6144, 6144, 2368, 6144),
        charts.MemoryFigures(None, None, None, 512, 520, 528, 536),
    ],
)
def test_marker_labels_cross_no_line_and_no_label(fig: charts.MemoryFigures, width: float) -> None:
    chart = charts.domain_memory_chart(fig, width)
    boxes = _boxes(chart)
    for a, b in itertools.combinations(boxes, 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    for box in boxes:
        assert box[0] >= 0 and box[2] <= chart.width
        for m in chart.markers:
            crosses = box[0] - 1 <= m.x <= box[2] + 1 and m.y1 <= box[3] and box[1] <= m.y2
            assert not crosses, (box, m)
    # Segment labels are clear of every line too.
    for seg in chart.segments:
        if seg.label:
            right = seg.label_x + charts.label_width(seg.label)
            assert not any(seg.label_x - 3 <= m.x <= right + 3 for m in chart.markers)


def test_axis_has_one_unit() -> None:
    small = charts.domain_memory_chart(charts.MemoryFigures(491, 38, 9, 512, 512, 576, 768))
    assert {t.label.split()[1] for t in small.ticks} == {"MiB"}
    big = charts.host_plan_chart(_plan(16384, [("web01", 512, 768)]))
    assert {t.label.split()[1] for t in big.ticks} == {"GiB"}
    narrow = charts.host_plan_chart(_plan(16384, [("web01", 512, 768)]), charts.NARROW_WIDTH)
    xs = [t.x for t in narrow.ticks]
    assert all(
        b - a > charts.label_width(narrow.ticks[-1].label) for a, b in itertools.pairwise(xs)
    )


def test_domain_chart_without_meminfo_keeps_markers_only() -> None:
    chart = charts.domain_memory_chart(
        charts.MemoryFigures(None, None, None, 512, None, None, None)
    )
    assert chart.segments == ()
    assert [m.label for m in chart.markers] == ["memory 512 MiB"]


def test_sparkline_geometry() -> None:
    spark = charts.need_sparkline([402, 417, 455, 431, 468, 470, 474], 512, 768)
    assert spark is not None
    points = [tuple(map(float, p.split(","))) for p in spark.points.split()]
    assert len(points) == 7
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and xs[0] >= 0 and xs[-1] <= spark.width
    assert all(0 <= y <= spark.height for _, y in points)
    lowest_y = min(y for _, y in points)
    assert points[-1][1] == lowest_y  # 474 is the highest need, drawn highest
    assert (spark.last_x, spark.last_y) == points[-1]
    assert (spark.minimum_mib, spark.maximum_mib, spark.last_mib) == (402, 474, 474)
    memory_line, recommended_line = spark.lines
    assert recommended_line.y < memory_line.y < lowest_y


def test_sparkline_needs_two_nights() -> None:
    assert charts.need_sparkline([], 512) is None
    assert charts.need_sparkline([400], 512) is None
    flat = charts.need_sparkline([0, 0])
    assert flat is not None and flat.nights == 2
