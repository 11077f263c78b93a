"""The merge's outputs, written in order: fleet.json first, fleet.prom, the page last."""

from __future__ import annotations

from pathlib import Path

from xenaudit.fleet.html import FleetHtml
from xenaudit.fleet.interface import FleetFormat, FleetReport
from xenaudit.fleet.json import FleetJson
from xenaudit.fleet.prometheus import FleetPrometheus

FLEET_FORMATS: tuple[type[FleetFormat], ...] = (FleetJson, FleetPrometheus, FleetHtml)


def write_fleet(fleet: FleetReport, fleet_dir: Path) -> list[Path]:
    """Write every fleet output under `fleet_dir`. Raises `OSError` or `FormatError`."""
    written: list[Path] = []
    for fmt in FLEET_FORMATS:
        written.extend(fmt().write(fleet, Path(fleet_dir)))
    return written
