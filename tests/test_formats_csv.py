"""summary.csv: one row per domain, readable by the csv module, defused against formulas."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests import report_fixtures as rf
from xenaudit.formats.csv import COLUMNS, CsvFormat, guard_cell


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_header_and_one_row_per_domain(tmp_path: Path) -> None:
    report = rf.rich_report()
    (path,) = CsvFormat().write(report, tmp_path)
    with path.open(newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == COLUMNS
    rows = _rows(path)
    assert len(rows) == len(report.domains)
    assert rows[0]["severity"] == "critical"
    assert [r["severity"] for r in rows] == sorted(
        (r["severity"] for r in rows), key=["critical", "warning", "info", "ok"].index
    )


def test_reference_case_row(tmp_path: Path) -> None:
    (path,) = CsvFormat().write(rf.rich_report(), tmp_path)
    web = next(r for r in _rows(path) if r["domain"] == "web01")
    assert web["host"] == "dom0-a"
    assert (web["memory_mib"], web["maxmem_mib"]) == ("512", "512")
    assert (web["recommended_memory_mib"], web["recommended_maxmem_mib"]) == ("768", "1024")
    assert (web["mem_total_kib"], web["mem_available_kib"]) == (str(491 * 1024), str(38 * 1024))
    assert web["collection_status"] == "ok"
    assert (
        web["diagnosis"] == "Real memory shortage; Atomic allocations failing (GFP_ATOMIC, order 0)"
    )
    off = next(r for r in _rows(path) if r["domain"] == "off01")
    assert off["collection_status"] == "skipped"
    assert off["recommended_memory_mib"] == "" and off["mem_total_kib"] == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\r=x", "'\r=x"),
        ("web01", "web01"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (512, "512"),
    ],
)
def test_guard_cell(raw: str | int | None, expected: str) -> None:
    assert guard_cell(raw) == expected


def test_hostile_names_are_defused_and_survive(tmp_path: Path) -> None:
    report = rf.hostile_report()
    (path,) = CsvFormat().write(report, tmp_path)
    rows = _rows(path)
    assert len(rows) == len(rf.HOSTILE_PAYLOADS)
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    names = {r["domain"] for r in rows}
    assert '\'=HYPERLINK("http://evil.example","xss-formula")' in names
    # A newline inside a name stays inside its quoted cell.
    assert 'quote"back\\slash\nnew line' in names
    # Undecodable bytes do not stop the file from being written.
    assert any(name.startswith("bad ") for name in names)


def test_csv_is_plain_rfc4180(tmp_path: Path) -> None:
    (path,) = CsvFormat().write(rf.rich_report(), tmp_path)
    data = path.read_bytes()
    assert data.count(b"\r\n") == len(rf.rich_report().domains) + 1
    reparsed = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert all(len(row) == len(COLUMNS) for row in reparsed)
