"""Unit helpers shared by the analysis modules.

The guest speaks KiB (/proc), xl.cfg speaks MiB and admins read both, so
every conversion goes through here to keep the rounding rules in one place:
sizes we *recommend* round up (never propose less than measured), sizes we
*report* round to nearest.
"""

from __future__ import annotations

import math


def kib_to_mib(kib: int) -> int:
    """Nearest MiB, for quoting a measured value."""
    return int((kib + 512) // 1024)


def kib_to_mib_up(kib: float) -> int:
    """MiB rounded up, for anything that becomes a size we propose."""
    return math.ceil(kib / 1024)


def round_up_to_step(mib: float, step_mib: int) -> int:
    """Round a size up to the next step (xl.cfg sizes are kept on a coarse grid)."""
    if step_mib <= 1:
        return math.ceil(mib)
    return math.ceil(mib / step_mib) * step_mib


def pct(part: float, whole: float) -> float:
    """Percentage, 0 when the whole is not positive (a broken meminfo must not divide by 0)."""
    if whole <= 0:
        return 0.0
    return 100.0 * part / whole


def fmt_mib(kib: int) -> str:
    return f"{kib_to_mib(kib)} MiB"
