"""The rows of the fleet's "actions tonight", read from one report.json.

A report made by this xenaudit carries its rows ready-made in `actions`
(built by `xenaudit.formats.actions`, the table at the top of its
report.html), and the fleet shows exactly those. A report from an older
xenaudit, as Dom0s that were not upgraded yet still write, has no `actions`;
its rows are then made from the per-domain fields every schema-1 report has:
one "resize" row per domain whose recommendation changes its cfg, worded as
`xenaudit.formats.actions` words them. The entries reaching here were checked
by the reader (`xenaudit.fleet.reader`), so their shape is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xenaudit.analysis.interface import severity_rank
from xenaudit.fleet.interface import FleetAction
from xenaudit.formats.actions import WHY_CHARS, Change

#: The kinds of rows, in the order a severity's rows are listed (as in report.html).
KINDS = ("resize", "sysctl", "unread", "review")


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= WHY_CHARS else flat[: WHY_CHARS - 1] + "…"


def cfg_changes(recommendation: Mapping[str, Any], config: Mapping[str, Any]) -> list[Change]:
    """The memory and maxmem changes a report.json recommendation makes to the cfg."""
    memory = config.get("memory_mib")
    maxmem = config.get("maxmem_mib")
    if maxmem is None:
        maxmem = memory  # xl: maxmem defaults to memory
    changes = []
    if memory is None or recommendation["memory_mib"] != memory:
        changes.append(Change("memory", memory, recommendation["memory_mib"], "MiB", "cfg"))
    if maxmem is None or recommendation["maxmem_mib"] != maxmem:
        changes.append(Change("maxmem", maxmem, recommendation["maxmem_mib"], "MiB", "cfg"))
    return changes


def change_text(changes: list[Change]) -> str:
    """'memory 512 → 576 MiB, maxmem 768', as report.html's actions word it."""
    memory_changes = any(c.setting == "memory" for c in changes)
    return ", ".join(c.text(short=memory_changes and c.setting == "maxmem") for c in changes)


def why_text(entry: Mapping[str, Any]) -> str:
    """The most severe finding's title (else the diagnosis), and whether the change fits."""
    findings = [f for f in entry.get("findings", []) if f.get("code") != "healthy"]
    if findings:
        why = max(findings, key=lambda f: severity_rank(f["severity"]))["title"]
    else:
        why = "; ".join(entry.get("diagnosis", []))
    rec = entry["recommendation"]
    if not rec["fits"]:
        reason = rec.get("not_fitting_reason")
        why = f"{why}; does not fit on the host" + (f" ({reason})" if reason else "")
    return _one_line(why or "see the domain's card")


def domain_action(entry: Mapping[str, Any], index: int) -> FleetAction | None:
    """The row for one report.json domain entry (`index` in `domains`) of an older report."""
    rec = entry.get("recommendation")
    if not rec or rec["change"] == "none":
        return None
    changes = cfg_changes(rec, entry["config"])
    if not changes:
        return None
    return FleetAction(
        severity=entry["severity"],
        dom0="",
        host=entry["host"],
        domain=entry["name"],
        kind="resize",
        change=change_text(changes),
        why=why_text(entry),
        fits=rec["fits"],
        live_change_safe=rec["live_change_safe"],
        patch=entry.get("patch"),
        # report.html's domain sections are numbered by their place in report.json.
        anchor=f"d{index}",
    )


def listed_action(row: Mapping[str, Any]) -> FleetAction:
    """One row of report.json's `actions`, as the fleet shows it."""
    return FleetAction(
        severity=row["severity"],
        dom0="",
        host=row["host"],
        domain=row["domain"],
        kind=row["kind"],
        change=row["change"],
        why=_one_line(row["why"]),
        fits=row["fits"],
        live_change_safe=row["live_change_safe"],
        patch=row.get("patch"),
        anchor=f"d{row['domain_index']}",
    )


def report_actions(document: Mapping[str, Any]) -> list[FleetAction]:
    """Every row of one checked report.json, in the report's order."""
    if document.get("actions") is not None:
        return [listed_action(row) for row in document["actions"]]
    rows = []
    for index, entry in enumerate(document["domains"]):
        row = domain_action(entry, index)
        if row is not None:
            rows.append(row)
    return rows
