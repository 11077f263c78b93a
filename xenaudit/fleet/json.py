"""fleet.json: the merged fleet for machines (xenaudit/schemas/fleet.schema.json).

Like report.json it is a contract: keys keep their meaning, new ones may be
added. Written ASCII-only (hostile names survive as escapes) and streamed:
the action rows go out one per line straight from the spool.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import IO, Any

from xenaudit.atomicwrite import atomic_writer
from xenaudit.fleet.interface import (
    FLEET_JSON,
    FLEET_SCHEMA_VERSION,
    Dom0Summary,
    FleetAction,
    FleetFormat,
    FleetReport,
)


def dom0_to_dict(dom0: Dom0Summary) -> dict[str, Any]:
    return {
        "folder": dom0.folder,
        "source": dom0.source,
        "hosts": list(dom0.hosts),
        "generated_at": dom0.generated_at,
        "tool_version": dom0.tool_version,
        "age_hours": dom0.age_h,
        "stale": dom0.stale,
        "incomplete": dom0.incomplete,
        "demo": dom0.demo,
        "domains": dom0.domains,
        "worst_severity": dom0.worst_severity,
        "findings": dict(dom0.findings),
        "domain_severities": dict(dom0.domain_severities),
        "actions": dom0.actions,
        "shortfall_mib": dom0.shortfall_mib,
        "shortfalls": [{"host": h, "shortfall_mib": mib} for h, mib in dom0.shortfalls],
        "errors": list(dom0.errors),
        "error_count": dom0.error_count,
        "copy_problems": list(dom0.copy_problems),
        "report": f"{dom0.folder}/report.html" if dom0.has_page else None,
    }


def action_to_dict(row: FleetAction, has_page: bool) -> dict[str, Any]:
    return {
        "severity": row.severity,
        "dom0": row.dom0,
        "host": row.host,
        "domain": row.domain,
        "kind": row.kind,
        "change": row.change,
        "why": row.why,
        "fits": row.fits,
        "live_change_safe": row.live_change_safe,
        "patch": row.patch,
        "link": f"{row.dom0}/report.html#{row.anchor}" if has_page and row.anchor else None,
    }


def fleet_header(fleet: FleetReport) -> dict[str, Any]:
    """Everything in fleet.json but the action rows."""
    return {
        "schema_version": FLEET_SCHEMA_VERSION,
        "generated_at": fleet.generated_at,
        "tool_version": fleet.tool_version,
        "stale_after_hours": fleet.stale_after_h,
        "incomplete": fleet.incomplete,
        "dom0s": [dom0_to_dict(d) for d in fleet.dom0s],
        "missing": [{"name": m.name, "note": m.note} for m in fleet.missing],
        "left_out": [{"source": x.source, "reason": x.reason} for x in fleet.left_out],
        "action_count": len(fleet.actions),
    }


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False)


def write_fleet_json(fleet: FleetReport, out: IO[bytes]) -> None:
    pages = {d.folder: d.has_page for d in fleet.dom0s}
    out.write(b"{\n")
    for key, value in fleet_header(fleet).items():
        out.write(f"  {_dump(key)}: {_dump(value)},\n".encode("ascii"))
    out.write(b'  "actions": [')
    separator = "\n    "
    for row in fleet.actions:
        out.write(f"{separator}{_dump(action_to_dict(row, pages.get(row.dom0, False)))}".encode())
        separator = ",\n    "
    out.write(b"\n  ]\n}\n")


def fleet_schema() -> Mapping[str, Any]:
    """The JSON Schema (draft 2020-12) of fleet.json, shipped inside the package."""
    text = resources.files("xenaudit").joinpath("schemas/fleet.schema.json").read_text("utf-8")
    return json.loads(text)


class FleetJson(FleetFormat):
    name = "json"

    def write(self, fleet: FleetReport, fleet_dir: Path) -> list[Path]:
        path = Path(fleet_dir) / FLEET_JSON
        with atomic_writer(path) as out:
            write_fleet_json(fleet, out)
        return [path]
