"""The format registry and `write_formats`: choose any subset, keep going past a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import report_fixtures as rf
from xenaudit.formats import FORMAT_NAMES, FORMATS, FormatError, resolve_names, write_formats


def test_registry_has_every_documented_format() -> None:
    assert set(FORMATS) == {"html", "json", "csv", "prom", "patches"}
    assert set(FORMAT_NAMES) == set(FORMATS)
    for name, cls in FORMATS.items():
        assert cls.name == name


def test_all_expands_and_prom_is_written_last() -> None:
    assert resolve_names(["all"])[-1] == "prom"
    assert set(resolve_names(["all"])) == set(FORMATS)
    assert resolve_names(["prom", "json", "JSON"]) == ["json", "prom"]


def test_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(FormatError, match=r"known: .*html"):
        resolve_names(["pdf"])


def test_subset_writes_only_those_files(tmp_path: Path) -> None:
    written = write_formats(rf.rich_report(), tmp_path / "out", ["csv", "prom"])
    names = sorted(p.name for p in written)
    assert names == ["summary.csv", "xenaudit.prom"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names


def test_all_formats_write_every_file(tmp_path: Path) -> None:
    written = write_formats(rf.rich_report(), tmp_path, ["all"])
    relative = {str(p.relative_to(tmp_path)) for p in written}
    assert {"report.html", "report.json", "summary.csv", "xenaudit.prom"} <= relative
    assert {"patches/web01.cfg.diff", "patches/db01.cfg.diff"} <= relative
    assert all(p.is_file() for p in written)


def test_one_failing_format_does_not_stop_the_others(tmp_path: Path) -> None:
    # A directory where report.json should go: the rename over it fails.
    (tmp_path / "report.json").mkdir()
    with pytest.raises(FormatError) as caught:
        write_formats(rf.rich_report(), tmp_path, ["json", "csv", "html", "prom"])
    assert "json" in caught.value.message
    written = {p.name for p in caught.value.written}
    assert written == {"summary.csv", "report.html", "xenaudit.prom"}
    assert (tmp_path / "xenaudit.prom").is_file()
