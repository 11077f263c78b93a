"""The rows of the fleet's "actions tonight", read from one report.json.

A row is a domain whose recommendation changes its cfg (memory, maxmem).
Reports that carry no ready-made action list (every report so far) get their
rows from the per-domain fields every schema-1 report has, so Dom0s that run
an older xenaudit still show up in the fleet's list. The entries reaching here
were checked by the reader (`xenaudit.fleet.reader`), so their shape is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xenaudit.fleet.interface import FleetAction

#: Longest "why" kept per row; the Dom0's own report has the whole story.
MAX_WHY_CHARS = 600


def _mib(value: Any) -> str:
    return "?" if value is None else str(value)


def change_text(recommendation: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """'memory 512 → 768 MiB, maxmem 512 → 1024 MiB': what the cfg change does."""
    memory, maxmem = recommendation["memory_mib"], recommendation["maxmem_mib"]
    old_memory, old_maxmem = config.get("memory_mib"), config.get("maxmem_mib")
    if old_maxmem is None:
        # xl: maxmem defaults to memory.
        old_maxmem = old_memory
    parts = []
    if recommendation["change"] != "maxmem" or memory != old_memory:
        parts.append(f"memory {_mib(old_memory)} → {memory} MiB")
    if maxmem != old_maxmem or recommendation["change"] == "maxmem":
        parts.append(f"maxmem {_mib(old_maxmem)} → {maxmem} MiB")
    return ", ".join(parts)


def why_text(entry: Mapping[str, Any]) -> str:
    """The diagnosis, else the first sizing reason, else the worst finding's title."""
    diagnosis = [d for d in entry.get("diagnosis", []) if d]
    if diagnosis:
        text = "; ".join(diagnosis)
    elif entry["recommendation"].get("reasons"):
        text = entry["recommendation"]["reasons"][0]
    else:
        titles = [f["title"] for f in entry.get("findings", []) if f.get("title")]
        text = titles[0] if titles else ""
    if len(text) > MAX_WHY_CHARS:
        text = text[:MAX_WHY_CHARS] + "…"
    return text


def domain_action(entry: Mapping[str, Any], index: int) -> FleetAction | None:
    """The row for one report.json domain entry (`index` in `domains`), or None."""
    rec = entry.get("recommendation")
    if not rec or rec["change"] == "none":
        return None
    return FleetAction(
        severity=entry["severity"],
        dom0="",
        host=entry["host"],
        domain=entry["name"],
        kind=rec["change"],
        change=change_text(rec, entry["config"]),
        why=why_text(entry),
        fits=rec["fits"],
        not_fitting_reason=rec.get("not_fitting_reason"),
        live_change_safe=rec["live_change_safe"],
        patch=entry.get("patch"),
        # report.html's domain sections are numbered by their place in report.json.
        anchor=f"d{index}",
    )


def report_actions(document: Mapping[str, Any]) -> list[FleetAction]:
    """Every row of one checked report.json, in the report's domain order."""
    rows = []
    for index, entry in enumerate(document["domains"]):
        row = domain_action(entry, index)
        if row is not None:
            rows.append(row)
    return rows
