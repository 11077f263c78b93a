"""Report folders of several Dom0s for the merge tests, written by the real formats.

No tests here. A Dom0's folder is what `xenaudit audit` writes (report.html,
report.json, summary.csv, xenaudit.prom, patches/) for a report fixture; the
host names and the run time are then set in report.json, the only file the
merge reads, so one fixture can play many Dom0s.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests import report_fixtures as rf
from xenaudit.formats import write_formats
from xenaudit.report import AuditReport


def recent(hours: float = 1.0) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="seconds")


def write_report(folder: Path, report: AuditReport) -> Path:
    write_formats(report, folder, ["all"])
    return folder


def edit_report(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "report.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


def rename_hosts(document: dict[str, Any], names: Mapping[str, str]) -> None:
    for host in document["hosts"]:
        host["name"] = names.get(host["name"], host["name"])
        if host.get("plan"):
            host["plan"]["host"] = host["name"]
    for domain in document["domains"]:
        domain["host"] = names.get(domain["host"], domain["host"])
    for row in document.get("actions") or []:
        row["host"] = names.get(row["host"], row["host"])


def keep_domains(count: int) -> Callable[[dict[str, Any]], None]:
    """An edit that keeps the report's first `count` domains (and their action rows)."""

    def edit(document: dict[str, Any]) -> None:
        document["domains"] = document["domains"][:count]
        rows = document.get("actions") or []
        document["actions"] = [r for r in rows if r["domain_index"] < count]

    return edit


class Dom0Folders:
    """Makes Dom0 report folders from one written template (formats run once)."""

    def __init__(self, root: Path, report: AuditReport | None = None) -> None:
        self.root = root
        self.template = write_report(root / "_template", report or rf.fleet(5, per_host=5))
        document = json.loads((self.template / "report.json").read_text())
        self.template_hosts = [h["name"] for h in document["hosts"]]

    def make(
        self,
        folder_name: str,
        host: str | None = None,
        *,
        generated_at: str | None = None,
        change: Callable[[dict[str, Any]], None] | None = None,
    ) -> Path:
        folder = self.root / folder_name
        shutil.copytree(self.template, folder)
        host = host or folder_name

        def edit(document: dict[str, Any]) -> None:
            if len(self.template_hosts) == 1:
                rename_hosts(document, {self.template_hosts[0]: host})
            document["generated_at"] = generated_at or recent()
            if change is not None:
                change(document)

        edit_report(folder, edit)
        return folder
