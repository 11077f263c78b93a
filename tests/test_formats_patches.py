"""patches/: each proposed cfg diff lands exactly at its path, and never outside the report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests import report_fixtures as rf
from xenaudit.formats.interface import FormatError
from xenaudit.formats.patches import PatchesFormat, patch_paths
from xenaudit.report import AuditReport, DomainReport


def _report(*domains: DomainReport) -> AuditReport:
    return AuditReport(rf.GENERATED_AT, "0.1.0", (), tuple(domains))


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_patches_written_at_their_paths_with_exact_text(tmp_path: Path) -> None:
    report = rf.rich_report()
    written = PatchesFormat().write(report, tmp_path)
    expected = {d.patch_path: d.patch_text for d in report.domains if d.patch_text}
    assert {str(p.relative_to(tmp_path)) for p in written} == set(expected)
    for rel, text in expected.items():
        assert (tmp_path / rel).read_text() == text
    assert _files(tmp_path) == set(expected)


def test_missing_final_newline_is_added(tmp_path: Path) -> None:
    ref = rf.reference_case()
    assert ref.patch_text is not None
    odd = dataclasses.replace(ref, patch_text=ref.patch_text.rstrip("\n"))
    PatchesFormat().write(_report(odd), tmp_path)
    assert (tmp_path / "patches/web01.cfg.diff").read_text() == ref.patch_text


@pytest.mark.parametrize(
    "bad",
    [
        "../escape.diff",
        "/tmp/abs.diff",
        "patches/../../up.diff",
        "patches/",
        "a\\b.diff",
        ".",
        "patches/./x.diff",
        "patches/notes.txt",
    ],
)
def test_escaping_paths_are_refused_and_the_rest_written(tmp_path: Path, bad: str) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    good = rf.reference_case("good")
    evil = dataclasses.replace(rf.reference_case("evil"), patch_path=bad)
    with pytest.raises(FormatError, match="evil") as caught:
        PatchesFormat().write(_report(evil, good), outdir)
    assert [p.name for p in caught.value.written] == ["good.cfg.diff"]
    assert _files(tmp_path) == {"out/patches/good.cfg.diff"}


def test_symlinked_patch_folder_is_refused(tmp_path: Path) -> None:
    outdir, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    outdir.mkdir()
    elsewhere.mkdir()
    (outdir / "patches").symlink_to(elsewhere)
    with pytest.raises(FormatError, match="leaves the report folder"):
        PatchesFormat().write(_report(rf.reference_case()), outdir)
    assert list(elsewhere.iterdir()) == []


def test_symlinked_patch_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "victim.cfg"
    target.write_text("memory = 512\n")
    outdir = tmp_path / "out"
    (outdir / "patches").mkdir(parents=True)
    (outdir / "patches" / "web01.cfg.diff").symlink_to(target)
    with pytest.raises(FormatError):
        PatchesFormat().write(_report(rf.reference_case()), outdir)
    assert target.read_text() == "memory = 512\n"


def test_two_domains_cannot_share_a_patch_file(tmp_path: Path) -> None:
    a = rf.reference_case("a")
    b = dataclasses.replace(rf.reference_case("b"), patch_path=a.patch_path)
    with pytest.raises(FormatError, match="also used by a"):
        PatchesFormat().write(_report(a, b), tmp_path)
    assert (tmp_path / "patches/a.cfg.diff").read_text() == a.patch_text


def test_unset_paths_get_safe_distinct_names(tmp_path: Path) -> None:
    one = dataclasses.replace(rf.reference_case("web/01"), patch_path=None)
    two = dataclasses.replace(rf.reference_case("web:01"), patch_path=None)
    report = _report(one, two)
    assert patch_paths(report) == {
        0: "patches/web_01.cfg.diff",
        1: "patches/web_01-2.cfg.diff",
    }
    PatchesFormat().write(report, tmp_path)
    assert _files(tmp_path) == {"patches/web_01.cfg.diff", "patches/web_01-2.cfg.diff"}


def test_default_names_avoid_paths_the_orchestrator_chose(tmp_path: Path) -> None:
    chosen = rf.reference_case("web01")  # patch_path "patches/web01.cfg.diff"
    unset = dataclasses.replace(rf.reference_case("web01"), host="dom0-b", patch_path=None)
    paths = patch_paths(_report(chosen, unset))
    assert paths[0] == "patches/web01.cfg.diff"
    assert paths[1] == "patches/web01-2.cfg.diff"


def test_hostile_names_stay_inside(tmp_path: Path) -> None:
    report = rf.hostile_report()
    written = PatchesFormat().write(report, tmp_path)
    assert len(written) == len(rf.HOSTILE_PAYLOADS)
    for path in written:
        assert path.parent == tmp_path / "patches"
    assert all(p.startswith("patches/") for p in _files(tmp_path))


def test_domains_without_patch_write_nothing(tmp_path: Path) -> None:
    assert PatchesFormat().write(rf.empty_report(), tmp_path) == []
    assert not (tmp_path / "patches").exists()
