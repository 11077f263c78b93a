"""fleet.prom: the fleet as Prometheus metrics, for a setup where Prometheus scrapes one place.

Each Dom0 writes xenaudit.prom for its own node_exporter; with one Prometheus
scraping every Dom0 that is all alerting needs. Without that (Dom0s that
Prometheus cannot reach, or no node_exporter on them), the merged fleet gives
the same signals from one file: the series that mean the same carry the same
names as in xenaudit.prom (so the same alert rules work), with a `dom0`
label where xenaudit.prom relies on the scrape's `instance`. Domain severity
is only known here for the domains with an action; the per-Dom0 counts by
severity cover the rest.

Made from fleet.json's content, so it can also be made from a fleet.json
written elsewhere:

    python -m xenaudit.fleet.prometheus FLEET_DIR/fleet.json > fleet.prom
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from xenaudit.analysis.interface import SEVERITY_ORDER
from xenaudit.atomicwrite import atomic_writer
from xenaudit.fleet.interface import FleetFormat, FleetReport
from xenaudit.fleet.json import action_to_dict, fleet_header
from xenaudit.formats.prometheus import (
    AUDIT_DOMAINS,
    AUDIT_SUCCESS,
    AUDIT_TIMESTAMP,
    DOMAIN_SEVERITY,
    HOST_SHORTFALL,
    Metric,
    labels,
)

FLEET_PROM = "fleet.prom"
MIB = 1024 * 1024

FLEET_TIMESTAMP = Metric("xenaudit_fleet_timestamp_seconds", "Unix time the fleet was merged.")
FLEET_DOMAINS = Metric(
    "xenaudit_fleet_domains", "Domains of a Dom0 by their worst severity, from its latest report."
)
FLEET_FINDINGS = Metric("xenaudit_fleet_findings", "Findings of a Dom0's domains by severity.")
FLEET_ACTIONS = Metric("xenaudit_fleet_actions", "Proposed cfg changes of a Dom0.")
FLEET_STALE = Metric(
    "xenaudit_fleet_dom0_stale", "1 when the Dom0's latest report is older than the stale age."
)
FLEET_MISSING = Metric(
    "xenaudit_fleet_dom0_missing", "1 for an expected Dom0 that no merged report covers."
)
FLEET_LEFT_OUT = Metric("xenaudit_fleet_left_out", "Input folders the merge left out.")


def _timestamp(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Family:
    """One metric's HELP, TYPE and samples; a series repeated by hostile input is written once."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.seen: set[str] = set()
        self.samples: list[str] = []

    def add(self, label_text: str, value: float | None) -> None:
        if value is None:
            return
        series = f"{self.metric.name}{{{label_text}}}" if label_text else self.metric.name
        if series not in self.seen:
            self.seen.add(series)
            self.samples.append(f"{series} {_number(value)}")

    def lines(self) -> Iterator[str]:
        yield f"# HELP {self.metric.name} {self.metric.help}"
        yield f"# TYPE {self.metric.name} {self.metric.type}"
        yield from self.samples


def fleet_metrics(header: Mapping[str, Any], actions: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The exposition lines for fleet.json's `header` (everything but actions) and its actions."""
    families = {
        m.name: _Family(m)
        for m in (
            FLEET_TIMESTAMP,
            FLEET_LEFT_OUT,
            FLEET_MISSING,
            AUDIT_SUCCESS,
            AUDIT_TIMESTAMP,
            AUDIT_DOMAINS,
            FLEET_STALE,
            FLEET_DOMAINS,
            FLEET_FINDINGS,
            FLEET_ACTIONS,
            HOST_SHORTFALL,
            DOMAIN_SEVERITY,
        )
    }

    def add(metric: Metric, label_text: str, value: float | None) -> None:
        families[metric.name].add(label_text, value)

    add(FLEET_TIMESTAMP, "", _timestamp(header.get("generated_at")))
    add(FLEET_LEFT_OUT, "", len(header.get("left_out", [])))
    for missing in header.get("missing", []):
        add(FLEET_MISSING, labels(("dom0", str(missing["name"]))), 1)
    for dom0 in header.get("dom0s", []):
        base = labels(("dom0", str(dom0["folder"])))
        success = not dom0["incomplete"] and not dom0["error_count"] and not dom0["copy_problems"]
        add(AUDIT_SUCCESS, base, 1 if success else 0)
        add(AUDIT_TIMESTAMP, base, _timestamp(dom0["generated_at"]))
        add(AUDIT_DOMAINS, base, dom0["domains"])
        add(FLEET_STALE, base, 1 if dom0["stale"] else 0)
        add(FLEET_ACTIONS, base, dom0["actions"])
        for severity in reversed(SEVERITY_ORDER):
            by = f'{base},severity="{severity}"'
            add(FLEET_DOMAINS, by, dom0["domain_severities"].get(severity, 0))
            add(FLEET_FINDINGS, by, dom0["findings"].get(severity, 0))
        short = {item["host"]: item["shortfall_mib"] for item in dom0["shortfalls"]}
        for host in dom0["hosts"]:
            add(HOST_SHORTFALL, labels(("host", str(host))), short.get(host, 0) * MIB)
    for row in actions:
        series = labels(("host", str(row["host"])), ("domain", str(row["domain"])))
        severity = row["severity"]
        if severity in SEVERITY_ORDER:
            add(DOMAIN_SEVERITY, series, SEVERITY_ORDER.index(severity))
    for family in families.values():
        yield from family.lines()


class FleetPrometheus(FleetFormat):
    name = "prom"

    def write(self, fleet: FleetReport, fleet_dir: Path) -> list[Path]:
        path = Path(fleet_dir) / FLEET_PROM
        pages = {d.folder: d.has_page for d in fleet.dom0s}
        rows = (action_to_dict(row, pages.get(row.dom0, False)) for row in fleet.actions)
        with atomic_writer(path) as out:
            for line in fleet_metrics(fleet_header(fleet), rows):
                out.write(line.encode("utf-8") + b"\n")
        return [path]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m xenaudit.fleet.prometheus FLEET_JSON\n")
        return 2
    try:
        document = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        lines = list(fleet_metrics(document, document.get("actions", [])))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        sys.stderr.write(f"{args[0]}: not a fleet.json: {exc}\n")
        return 2
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
