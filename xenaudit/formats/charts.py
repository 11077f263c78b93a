"""Geometry of the report's inline SVG charts.

The numbers are computed here and the template only draws them, so every
attribute in the SVG is a number or a colour from our own palette; the only
guest-controlled strings (domain names) end up as escaped text content.
Coordinates are in SVG user units; each chart sets its own viewBox and scales
to the page width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from xenaudit.analysis.interface import HostPlan
from xenaudit.formats import units

#: Guest colours, cycled; chosen to stay distinct next to each other and in print.
GUEST_PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#76b7b2",
    "#ff9da7",
    "#9c755f",
    "#f28e2b",
    "#86bcb6",
    "#8cd17d",
)
DOM0_COLOUR = "#555555"
XEN_COLOUR = "#999999"
FREE_COLOUR = "#e8e8e8"
SHORT_COLOUR = "#d62728"
USED_COLOUR = "#c0504d"
CACHE_COLOUR = "#f0ad4e"
AVAILABLE_COLOUR = "#9bd39b"

#: Rough width of one character of the 12-unit chart font, to decide whether a label fits.
CHAR_WIDTH = 7.0
#: Longest label drawn inside a bar segment; longer names are cut with an ellipsis.
MAX_LABEL_CHARS = 24


def _r(value: float) -> float:
    """One decimal is plenty for SVG and keeps the HTML small."""
    return round(value, 1)


def fit_label(text: str, width: float) -> str:
    """`text` if it fits whole in `width` units, else '' (the legend names the block).

    A block too short for its name is named in the legend rather than cut to
    "we…": a cut name cannot be matched to anything. Only names longer than
    MAX_LABEL_CHARS are shortened, and only when the shortened name fits.
    """
    room = int((width - 8) // CHAR_WIDTH)
    text = " ".join(text.split())
    if len(text) > MAX_LABEL_CHARS:
        text = text[: MAX_LABEL_CHARS - 1] + "…"
    return text if len(text) <= room else ""


def label_width(text: str) -> float:
    """Room a chart label takes, in the chart's units (a generous estimate)."""
    return len(text) * CHAR_WIDTH


def nice_step_mib(span_mib: float, target_ticks: int = 6) -> int:
    """A power-of-two step in MiB (…, 256 MiB, 512 MiB, 1 GiB, 2 GiB, …) giving about
    `target_ticks` ticks, because memory sizes are read in binary units."""
    raw = max(span_mib, 1.0) / max(1, target_ticks)
    return 2 ** max(0, math.ceil(math.log2(raw)))


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    fill: str
    #: Full text for the <title> tooltip, e.g. "web01: 512 MiB".
    title: str
    #: Text drawn inside the segment, already cut to fit ('' = none).
    label: str
    label_x: float
    label_y: float
    #: Dark text on light fills, light text on dark ones.
    label_fill: str = "#ffffff"
    #: Outline a segment whose size changes in the plan.
    changed: bool = False


@dataclass(frozen=True)
class Marker:
    """A vertical reference line (memory, maxmem, recommended, capacity)."""

    x: float
    y1: float
    y2: float
    colour: str
    dash: str
    label: str
    label_x: float
    label_y: float
    anchor: str = "middle"


@dataclass(frozen=True)
class RowLabel:
    text: str
    x: float
    y: float


@dataclass(frozen=True)
class LegendItem:
    colour: str
    label: str
    current_mib: int | None
    planned_mib: int | None
    accepted: bool = True


@dataclass(frozen=True)
class BarChart:
    width: float
    height: float
    segments: tuple[Segment, ...]
    markers: tuple[Marker, ...]
    ticks: tuple[Tick, ...]
    row_labels: tuple[RowLabel, ...]
    axis_y: float
    axis_x1: float
    axis_x2: float
    legend: tuple[LegendItem, ...] = ()
    #: Short sentence for screen readers and for the <title> of the chart.
    summary: str = ""


def _label_colour(fill: str) -> str:
    """Black or white text, whichever reads better on `fill` (#rrggbb)."""
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.299 * r + 0.587 * g + 0.114 * b
    return "#111111" if luminance > 150 else "#ffffff"


def _fmt_mib(mib: float) -> str:
    """Sizes in labels are written as in the report's text (MiB up to 4 GiB, then GiB)."""
    return units.size_mib(mib)


class _Scale:
    """Maps MiB onto the horizontal bar area."""

    def __init__(self, x0: float, width: float, maximum_mib: float) -> None:
        self.x0 = x0
        self.width = width
        self.maximum = maximum_mib if maximum_mib > 0 else 1.0

    def x(self, mib: float) -> float:
        return self.x0 + self.width * max(0.0, mib) / self.maximum

    def w(self, mib: float) -> float:
        return self.width * max(0.0, mib) / self.maximum

    def ticks(self) -> tuple[Tick, ...]:
        """Ticks in one unit for the whole axis, spaced so their labels never touch."""
        unit = units.axis_unit(self.maximum)
        widest = label_width(units.in_unit(self.maximum, unit)) + 12
        target = max(1, min(6, int(self.width // widest)))
        step = nice_step_mib(self.maximum, target)
        while self.w(step) < widest:
            step *= 2
        count = int(self.maximum // step)
        return tuple(
            Tick(_r(self.x(i * step)), units.in_unit(i * step, unit)) for i in range(count + 1)
        )


def _segment(
    scale: _Scale,
    start_mib: float,
    size_mib: float,
    y: float,
    height: float,
    fill: str,
    name: str,
    *,
    changed: bool = False,
) -> Segment:
    x = scale.x(start_mib)
    width = scale.w(size_mib)
    return Segment(
        x=_r(x),
        y=_r(y),
        width=_r(width),
        height=_r(height),
        fill=fill,
        title=f"{name}: {_fmt_mib(size_mib)}",
        label=fit_label(name, width),
        label_x=_r(x + 4),
        label_y=_r(y + height / 2 + 4),
        label_fill=_label_colour(fill),
        changed=changed,
    )


def _clear_of_lines(segments: Sequence[Segment], line_xs: Sequence[float]) -> list[Segment]:
    """Segments whose label a vertical line would cross lose the label (the legend has it)."""
    cleared: list[Segment] = []
    for seg in segments:
        if seg.label:
            left, right = seg.label_x - 3, seg.label_x + label_width(seg.label) + 3
            if any(left <= x <= right for x in line_xs):
                seg = replace(seg, label="")
        cleared.append(seg)
    return cleared


# --- host plan ---------------------------------------------------------------

PLAN_WIDTH = 960.0
#: Width of the phone variant (drawn at about its own size on a 375 px screen).
NARROW_WIDTH = 340.0
PLAN_LABEL_WIDTH = 70.0
PLAN_BAR_HEIGHT = 30.0
PLAN_ROW_GAP = 14.0
PLAN_TOP = 22.0


def host_plan_chart(plan: HostPlan, width: float = PLAN_WIDTH) -> BarChart:
    """Two stacked bars: memory as it is now, and after the recommendations.

    The planned bar ends in red beyond the host's capacity line by the
    shortfall when the plan does not fit.
    """
    current_sum = plan.dom0_mib + plan.xen_total_mib + sum(e.current_mib for e in plan.entries)
    planned_sum = plan.dom0_mib + plan.xen_total_mib + sum(e.planned_mib for e in plan.entries)
    total = plan.total_mib
    shortfall = max(0, plan.shortfall_mib)
    extent = max(
        current_sum,
        planned_sum,
        total or 0,
        (total + shortfall) if total is not None else shortfall,
    )
    row_label_width = PLAN_LABEL_WIDTH if width >= 600 else 60.0
    scale = _Scale(row_label_width, width - row_label_width - 24, extent * 1.02)
    rows = (("now", PLAN_TOP), ("planned", PLAN_TOP + PLAN_BAR_HEIGHT + PLAN_ROW_GAP))
    segments: list[Segment] = []
    legend: list[LegendItem] = [
        LegendItem(DOM0_COLOUR, "Dom0", plan.dom0_mib, plan.dom0_mib),
        LegendItem(XEN_COLOUR, "Xen", plan.xen_total_mib, plan.xen_total_mib),
    ]
    for i, entry in enumerate(plan.entries):
        legend.append(
            LegendItem(
                GUEST_PALETTE[i % len(GUEST_PALETTE)],
                entry.domain,
                entry.current_mib,
                entry.planned_mib,
                entry.accepted,
            )
        )
    for row, y in rows:
        start = 0.0
        fixed = ((plan.dom0_mib, DOM0_COLOUR, "Dom0"), (plan.xen_total_mib, XEN_COLOUR, "Xen"))
        for size, colour, name in fixed:
            if size > 0:
                segments.append(_segment(scale, start, size, y, PLAN_BAR_HEIGHT, colour, name))
                start += size
        for i, entry in enumerate(plan.entries):
            size = entry.current_mib if row == "now" else entry.planned_mib
            if size <= 0:
                continue
            colour = GUEST_PALETTE[i % len(GUEST_PALETTE)]
            changed = row == "planned" and entry.planned_mib != entry.current_mib
            segments.append(
                _segment(
                    scale, start, size, y, PLAN_BAR_HEIGHT, colour, entry.domain, changed=changed
                )
            )
            start += size
        if total is not None and start < total:
            segments.append(
                _segment(scale, start, total - start, y, PLAN_BAR_HEIGHT, FREE_COLOUR, "free")
            )
    markers: list[Marker] = []
    bottom = rows[-1][1] + PLAN_BAR_HEIGHT
    if total is not None:
        x = _r(scale.x(total))
        label = f"host {_fmt_mib(total)}"
        # Beside the line, not across it: to its left unless that runs into the row names.
        left = x - 4 - label_width(label) >= row_label_width
        markers.append(
            Marker(
                x,
                PLAN_TOP - 6,
                bottom + 6,
                "#000000",
                "",
                label,
                _r(x - 4 if left else x + 4),
                PLAN_TOP - 8,
                "end" if left else "start",
            )
        )
    if shortfall > 0 and total is not None:
        y = rows[-1][1]
        segments.append(
            Segment(
                x=_r(scale.x(total)),
                y=_r(y - 4),
                width=_r(max(scale.w(shortfall), 2.0)),
                height=_r(PLAN_BAR_HEIGHT + 8),
                fill=SHORT_COLOUR,
                title=f"short by {_fmt_mib(shortfall)}",
                label=fit_label(f"short {_fmt_mib(shortfall)}", scale.w(shortfall)),
                label_x=_r(scale.x(total) + 4),
                label_y=_r(y + PLAN_BAR_HEIGHT / 2 + 4),
                label_fill="#ffffff",
            )
        )
    segments = _clear_of_lines(segments, [m.x for m in markers])
    axis_y = bottom + 12
    fits = "fits" if shortfall == 0 else f"is short by {_fmt_mib(shortfall)}"
    summary = (
        f"Host {plan.host}: {_fmt_mib(current_sum)} allocated now, "
        f"{_fmt_mib(planned_sum)} planned; the plan {fits}."
    )
    return BarChart(
        width=width,
        height=axis_y + 22,
        segments=tuple(segments),
        markers=tuple(markers),
        ticks=scale.ticks(),
        row_labels=tuple(RowLabel(name, 4, _r(y + PLAN_BAR_HEIGHT / 2 + 4)) for name, y in rows),
        axis_y=_r(axis_y),
        axis_x1=_r(scale.x0),
        axis_x2=_r(scale.x0 + scale.width),
        legend=tuple(legend),
        summary=summary,
    )


# --- one domain's memory -----------------------------------------------------

DOMAIN_WIDTH = 640.0
DOMAIN_LABEL_WIDTH = 70.0
DOMAIN_BAR_HEIGHT = 28.0
DOMAIN_TOP = 10.0


@dataclass(frozen=True)
class MemoryFigures:
    """What the domain chart shows, in MiB (None = unknown)."""

    mem_total_mib: float | None
    mem_available_mib: float | None
    mem_free_mib: float | None
    memory_mib: int | None
    maxmem_mib: int | None
    recommended_mib: int | None
    recommended_maxmem_mib: int | None


MARKER_ROW = 15.0


def _staircase(
    markers: list[tuple[float, str, str, str]], top: float, bar_bottom: float
) -> list[Marker]:
    """Marker lines with their labels to the right, stepped down so nothing overlaps.

    Markers are placed from the rightmost leftwards. Each label sits on the
    first row below the bar that no line to its right reaches and no label to
    its right occupies within its span, and its own line stops at that row. A
    label therefore never crosses a line (lines to its left end before its text
    starts, lines to its right end on a higher row) nor another label.
    """
    placed: list[Marker] = []
    levels: list[tuple[float, int]] = []
    for x, label, colour, dash in sorted(markers, key=lambda m: (-m[0], m[1])):
        end = x + 4 + label_width(label) + 4
        below = [level for other_x, level in levels if other_x <= end]
        level = max(below) + 1 if below else 0
        levels.append((x, level))
        label_y = bar_bottom + MARKER_ROW * (level + 1)
        placed.append(
            Marker(
                _r(x), top, _r(label_y - 4), colour, dash, label, _r(x + 4), _r(label_y), "start"
            )
        )
    return sorted(placed, key=lambda m: m.x)


def domain_memory_chart(fig: MemoryFigures, width: float = DOMAIN_WIDTH) -> BarChart:
    """Guest memory split into used / reclaimable cache / free, against the sizes that matter."""
    candidates = [
        fig.mem_total_mib,
        fig.memory_mib,
        fig.maxmem_mib,
        fig.recommended_mib,
        fig.recommended_maxmem_mib,
    ]
    extent = max((c for c in candidates if c is not None), default=0) or 1
    raw: list[tuple[float, str, str, str]] = []
    for value, name, colour, dash in (
        (fig.memory_mib, "memory", "#000000", ""),
        (fig.maxmem_mib, "maxmem", "#000000", "4 3"),
        (fig.recommended_mib, "new memory", "#1a7f37", ""),
        (fig.recommended_maxmem_mib, "new maxmem", "#1a7f37", "4 3"),
    ):
        if value is None:
            continue
        if name == "maxmem" and value == fig.memory_mib:
            continue
        if name == "new maxmem" and value == fig.recommended_mib:
            continue
        raw.append((float(value), f"{name} {_fmt_mib(value)}", colour, dash))
    # Room on the right for the widest label beside the rightmost line.
    room = max((label_width(label) + 12 for _, label, _, _ in raw), default=20.0)
    # On the narrow variant there is no row name, only room for half the "0 MiB" tick.
    row_label = DOMAIN_LABEL_WIDTH if width >= 500 else 24.0
    scale = _Scale(row_label, max(60.0, width - row_label - room), extent)
    y = DOMAIN_TOP
    segments: list[Segment] = []
    legend: list[LegendItem] = []
    if fig.mem_total_mib is not None and fig.mem_available_mib is not None:
        total = fig.mem_total_mib
        available = min(max(fig.mem_available_mib, 0.0), total)
        free = min(max(fig.mem_free_mib if fig.mem_free_mib is not None else 0.0, 0.0), available)
        parts = (
            (total - available, USED_COLOUR, "used"),
            (available - free, CACHE_COLOUR, "cache"),
            (free, AVAILABLE_COLOUR, "free"),
        )
        start = 0.0
        for size, colour, name in parts:
            legend.append(LegendItem(colour, name, round(size), None))
            if size > 0:
                segments.append(_segment(scale, start, size, y, DOMAIN_BAR_HEIGHT, colour, name))
                start += size
    bar_bottom = y + DOMAIN_BAR_HEIGHT
    markers = _staircase(
        [(scale.x(value), label, colour, dash) for value, label, colour, dash in raw],
        DOMAIN_TOP - 4,
        bar_bottom,
    )
    segments = _clear_of_lines(segments, [m.x for m in markers])
    label_bottom = max((m.label_y for m in markers), default=bar_bottom)
    axis_y = max(bar_bottom + 8, label_bottom + 10)
    if fig.mem_total_mib is None or fig.mem_available_mib is None:
        summary = "No /proc/meminfo from the guest."
    else:
        summary = (
            f"Guest sees {_fmt_mib(fig.mem_total_mib)}, "
            f"{_fmt_mib(fig.mem_available_mib)} available."
        )
    return BarChart(
        width=width,
        height=_r(axis_y + 22),
        segments=tuple(segments),
        markers=tuple(markers),
        ticks=scale.ticks(),
        row_labels=(
            (RowLabel("guest", 4, _r(y + DOMAIN_BAR_HEIGHT / 2 + 4)),) if row_label > 24 else ()
        ),
        axis_y=_r(axis_y),
        axis_x1=_r(scale.x0),
        axis_x2=_r(scale.x0 + scale.width),
        legend=tuple(legend),
        summary=summary,
    )


# --- need over the nights ----------------------------------------------------

SPARK_WIDTH = 300.0
SPARK_HEIGHT = 60.0
SPARK_PAD = 4.0


@dataclass(frozen=True)
class HLine:
    y: float
    colour: str
    dash: str


@dataclass(frozen=True)
class Sparkline:
    width: float
    height: float
    #: "x,y x,y ..." for <polyline points=…>, built from numbers only.
    points: str
    last_x: float
    last_y: float
    lines: tuple[HLine, ...]
    minimum_mib: int
    maximum_mib: int
    last_mib: int
    nights: int


def need_sparkline(
    need_history_mib: Sequence[int],
    memory_mib: int | None = None,
    recommended_mib: int | None = None,
) -> Sparkline | None:
    """Need per night with the configured (grey) and recommended (green) sizes; None below 2."""
    values = [int(v) for v in need_history_mib]
    if len(values) < 2:
        return None
    references = [v for v in (memory_mib, recommended_mib) if v is not None]
    # Zoom on the band that matters (need and sizes) rather than starting at zero,
    # so a slow climb toward the configured memory is visible.
    everything = [*values, *references]
    high = max(everything) * 1.05 + 1
    low = max(0.0, min(everything) * 0.9)
    bottom_y = SPARK_HEIGHT - SPARK_PAD
    span_y = SPARK_HEIGHT - 2 * SPARK_PAD
    step = (SPARK_WIDTH - 2 * SPARK_PAD) / (len(values) - 1)

    def y_of(mib: float) -> float:
        return _r(bottom_y - span_y * (mib - low) / (high - low))

    coords = [(_r(SPARK_PAD + i * step), y_of(v)) for i, v in enumerate(values)]
    lines: list[HLine] = []
    if memory_mib is not None:
        lines.append(HLine(y_of(memory_mib), "#777777", "3 2"))
    if recommended_mib is not None and recommended_mib != memory_mib:
        lines.append(HLine(y_of(recommended_mib), "#1a7f37", "1 2"))
    return Sparkline(
        width=SPARK_WIDTH,
        height=SPARK_HEIGHT,
        points=" ".join(f"{x},{y}" for x, y in coords),
        last_x=coords[-1][0],
        last_y=coords[-1][1],
        lines=tuple(lines),
        minimum_mib=min(values),
        maximum_mib=max(values),
        last_mib=values[-1],
        nights=len(values),
    )
