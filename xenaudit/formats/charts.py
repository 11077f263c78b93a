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
from dataclasses import dataclass

from xenaudit.analysis.interface import HostPlan

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
    """`text` cut to what fits in `width` units ('' when nothing useful fits)."""
    room = int((width - 6) // CHAR_WIDTH)
    if room < 3:
        return ""
    text = " ".join(text.split())
    limit = min(room, MAX_LABEL_CHARS)
    if len(text) <= limit:
        return text
    return text[: max(1, limit - 1)] + "…"


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
    """Short size for chart labels: "512 MiB", "1.5 GiB", "16 GiB"."""
    if mib >= 1024:
        gib = mib / 1024
        text = f"{gib:.0f}" if gib >= 10 or gib == int(gib) else f"{gib:.1f}"
        return f"{text} GiB"
    return f"{mib:.0f} MiB"


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
        step = nice_step_mib(self.maximum)
        count = int(self.maximum // step)
        return tuple(Tick(_r(self.x(i * step)), _fmt_mib(i * step)) for i in range(count + 1))


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


# --- host plan ---------------------------------------------------------------

PLAN_WIDTH = 960.0
PLAN_LABEL_WIDTH = 70.0
PLAN_BAR_HEIGHT = 30.0
PLAN_ROW_GAP = 14.0
PLAN_TOP = 22.0


def host_plan_chart(plan: HostPlan) -> BarChart:
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
    scale = _Scale(PLAN_LABEL_WIDTH, PLAN_WIDTH - PLAN_LABEL_WIDTH - 10, extent * 1.02)
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
        markers.append(
            Marker(
                x,
                PLAN_TOP - 6,
                bottom + 6,
                "#000000",
                "",
                f"host {_fmt_mib(total)}",
                x,
                PLAN_TOP - 9,
                "end" if x > PLAN_WIDTH - 120 else "middle",
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
    axis_y = bottom + 12
    fits = "fits" if shortfall == 0 else f"is short by {_fmt_mib(shortfall)}"
    summary = (
        f"Host {plan.host}: {_fmt_mib(current_sum)} allocated now, "
        f"{_fmt_mib(planned_sum)} planned; the plan {fits}."
    )
    return BarChart(
        width=PLAN_WIDTH,
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


def _spread_labels(markers: list[tuple[float, str, str, str]], y: float) -> list[Marker]:
    """Marker labels on as many lines as needed so neighbours do not overlap."""
    placed: list[Marker] = []
    line_ends: list[float] = []
    for x, label, colour, dash in sorted(markers):
        half = len(label) * CHAR_WIDTH / 2
        level = 0
        while level < len(line_ends) and line_ends[level] > x - half:
            level += 1
        if level == len(line_ends):
            line_ends.append(0.0)
        line_ends[level] = x + half + 6
        label_y = y + 14 + 13 * level
        placed.append(
            Marker(_r(x), DOMAIN_TOP - 4, _r(label_y - 11), colour, dash, label, _r(x), _r(label_y))
        )
    return placed


def domain_memory_chart(fig: MemoryFigures) -> BarChart:
    """Guest memory split into used / reclaimable cache / free, against the sizes that matter."""
    candidates = [
        fig.mem_total_mib,
        fig.memory_mib,
        fig.maxmem_mib,
        fig.recommended_mib,
        fig.recommended_maxmem_mib,
    ]
    extent = max((c for c in candidates if c is not None), default=0) or 1
    scale = _Scale(DOMAIN_LABEL_WIDTH, DOMAIN_WIDTH - DOMAIN_LABEL_WIDTH - 40, extent * 1.05)
    y = DOMAIN_TOP
    segments: list[Segment] = []
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
            if size > 0:
                segments.append(_segment(scale, start, size, y, DOMAIN_BAR_HEIGHT, colour, name))
                start += size
    raw_markers: list[tuple[float, str, str, str]] = []
    for value, name, colour, dash in (
        (fig.memory_mib, "memory", "#000000", ""),
        (fig.maxmem_mib, "maxmem", "#000000", "4 3"),
        (fig.recommended_mib, "recommended", "#1a7f37", ""),
        (fig.recommended_maxmem_mib, "rec. maxmem", "#1a7f37", "4 3"),
    ):
        if value is None:
            continue
        if name == "maxmem" and value == fig.memory_mib:
            continue
        if name == "rec. maxmem" and value == fig.recommended_mib:
            continue
        raw_markers.append((scale.x(value), f"{name} {_fmt_mib(value)}", colour, dash))
    markers = _spread_labels(raw_markers, y + DOMAIN_BAR_HEIGHT)
    label_bottom = max((m.label_y for m in markers), default=y + DOMAIN_BAR_HEIGHT)
    axis_y = max(y + DOMAIN_BAR_HEIGHT + 8, label_bottom + 8)
    if fig.mem_total_mib is None or fig.mem_available_mib is None:
        summary = "No /proc/meminfo from the guest."
    else:
        summary = (
            f"Guest sees {_fmt_mib(fig.mem_total_mib)}, "
            f"{_fmt_mib(fig.mem_available_mib)} available."
        )
    return BarChart(
        width=DOMAIN_WIDTH,
        height=_r(axis_y + 22),
        segments=tuple(segments),
        markers=tuple(markers),
        ticks=scale.ticks(),
        row_labels=(RowLabel("guest", 4, _r(y + DOMAIN_BAR_HEIGHT / 2 + 4)),),
        axis_y=_r(axis_y),
        axis_x1=_r(scale.x0),
        axis_x2=_r(scale.x0 + scale.width),
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
