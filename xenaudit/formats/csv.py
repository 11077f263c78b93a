"""summary.csv: one row per domain, for spreadsheets and quick `column -t` looks.

Spreadsheets execute cells that start with a formula character, and domain
names, diagnoses and errors come from guests, so such text cells are prefixed
with a quote (the OWASP "CSV injection" guard).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from xenaudit.atomicwrite import atomic_write_bytes
from xenaudit.formats.interface import FormatError, ReportFormat
from xenaudit.report import AuditReport, DomainReport

SUMMARY_FILE = "summary.csv"

COLUMNS: tuple[str, ...] = (
    "host",
    "domain",
    "state",
    "severity",
    "memory_mib",
    "maxmem_mib",
    "recommended_memory_mib",
    "recommended_maxmem_mib",
    "mem_total_kib",
    "mem_available_kib",
    "collection_status",
    "diagnosis",
)

#: Leading characters that make Excel, LibreOffice or Sheets treat a cell as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def guard_cell(value: str | int | None) -> str:
    """A cell's text, defused when it could be read as a formula. Numbers pass unchanged."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def summary_row(dom: DomainReport) -> list[str]:
    cfg = dom.config
    rec = dom.assessment.recommendation
    meminfo = dom.facts.meminfo if dom.facts else None
    cells: Sequence[str | int | None] = (
        dom.host,
        dom.name,
        dom.domain.state,
        dom.assessment.severity,
        cfg.memory_mib if cfg else None,
        cfg.maxmem_mib if cfg else None,
        rec.memory_mib if rec else None,
        rec.maxmem_mib if rec else None,
        meminfo.mem_total_kib if meminfo else None,
        meminfo.mem_available_kib if meminfo else None,
        dom.collection_status,
        "; ".join(dom.assessment.diagnosis),
    )
    return [guard_cell(c) for c in cells]


def render_summary(report: AuditReport) -> str:
    """The CSV text, domains ordered as in the HTML (worst first)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for dom in report.domains_by_severity():
        writer.writerow(summary_row(dom))
    return buffer.getvalue()


class CsvFormat(ReportFormat):
    name = "csv"

    def write(self, report: AuditReport, outdir: Path) -> list[Path]:
        path = Path(outdir) / SUMMARY_FILE
        # Lone surrogates from undecodable guest bytes become "?", not an error.
        data = render_summary(report).encode("utf-8", errors="replace")
        try:
            atomic_write_bytes(path, data, root=outdir)
        except OSError as exc:
            raise FormatError(self.name, f"cannot write {path}: {exc}") from exc
        return [path]
