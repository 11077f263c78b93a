"""Saving a host's raw outputs and replaying them through the live parsing code."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fake_xl.support import RECORDINGS, copy_recording, use_fake_xl
from xenaudit.hypervisor.interface import HostView, HypervisorError
from xenaudit.hypervisor.snapshot import SnapshotSource, is_plain_name, save_host_snapshot
from xenaudit.hypervisor.xl import XlSource
from xenaudit.inventory.interface import HypervisorSpec
from xenaudit.snapshots import HOST_META

COLLECTED_AT = "2024-03-05T02:00:00Z"


@pytest.fixture(scope="module")
def xl_view(tmp_path_factory: pytest.TempPathFactory) -> HostView:
    """One live read through the fake xl, shared by the tests that only save and replay it."""
    recording = copy_recording("host_a", tmp_path_factory.mktemp("xl"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_fake_xl(monkeypatch, recording)
        spec = HypervisorSpec(name="dom0a", cfg_dir=str(recording / "etc-xen"))
        return XlSource(spec).read()


def test_xl_round_trip_gives_an_equal_view(xl_view: HostView, tmp_path: Path) -> None:
    save_host_snapshot(xl_view, tmp_path / "snap", COLLECTED_AT)
    replayed = SnapshotSource(tmp_path / "snap").read()
    assert replayed == xl_view
    assert replayed.warnings == xl_view.warnings


def test_saved_files(xl_view: HostView, tmp_path: Path) -> None:
    directory = tmp_path / "snap"
    save_host_snapshot(xl_view, directory, COLLECTED_AT)
    meta = json.loads((directory / HOST_META).read_text())
    assert meta == {"name": "dom0a", "backend": "xl", "collected_at": COLLECTED_AT}
    assert sorted(p.name for p in directory.iterdir()) == sorted([HOST_META, *xl_view.raw])
    for name, text in xl_view.raw.items():
        assert (directory / name).read_text() == text


def test_sxp_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_xl(monkeypatch, RECORDINGS / "host_sxp_pvh")
    view = XlSource(HypervisorSpec(name="dom0s", cfg_dir=str(tmp_path))).read()
    save_host_snapshot(view, tmp_path / "snap", COLLECTED_AT)
    replayed = SnapshotSource(tmp_path / "snap").read()
    assert replayed == view and replayed.warnings  # the partial SXP warning survives replay


def test_replay_may_be_renamed(xl_view: HostView, tmp_path: Path) -> None:
    save_host_snapshot(xl_view, tmp_path / "snap", COLLECTED_AT)
    assert SnapshotSource(tmp_path / "snap", name="other").read().name == "other"


@pytest.mark.parametrize(
    "bad", ["../escape", "/etc/passwd", "sub/dir.txt", ".hidden", HOST_META, "", "a\nb"]
)
def test_hostile_raw_names_are_refused_before_writing(
    xl_view: HostView, tmp_path: Path, bad: str
) -> None:
    hostile = replace(xl_view, raw={**xl_view.raw, bad: "x"})
    with pytest.raises(ValueError, match="unsafe"):
        save_host_snapshot(hostile, tmp_path / "snap", COLLECTED_AT)
    assert not (tmp_path / "snap").exists()
    assert not (tmp_path / "escape").exists()


def test_plain_names() -> None:
    assert is_plain_name("xl-list-l.json") and is_plain_name("libvirt.json")
    assert not is_plain_name("..") and not is_plain_name("a/../b")


def test_replay_only_reads_the_files_its_backend_knows(xl_view: HostView, tmp_path: Path) -> None:
    directory = tmp_path / "snap"
    save_host_snapshot(xl_view, directory, COLLECTED_AT)
    (directory / "notes.txt").write_text("left by an admin")
    assert "notes.txt" not in SnapshotSource(directory).read().raw


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no host.json"),
        ("{not json", "cannot read"),
        (json.dumps({"name": 3, "backend": "xl"}), "expected"),
        (json.dumps({"name": "h", "backend": "vmware"}), "cannot be replayed"),
    ],
)
def test_bad_host_json(tmp_path: Path, content: str | None, expected: str) -> None:
    if content is not None:
        (tmp_path / HOST_META).write_text(content)
    with pytest.raises(HypervisorError, match=expected) as caught:
        SnapshotSource(tmp_path).read()
    assert caught.value.source == "snapshot"


def test_damaged_raw_file_names_the_snapshot_and_command(xl_view: HostView, tmp_path: Path) -> None:
    directory = tmp_path / "snap"
    save_host_snapshot(xl_view, directory, COLLECTED_AT)
    (directory / "xl-list.txt").write_text("Name ID\ngarbage\n")
    with pytest.raises(HypervisorError) as caught:
        SnapshotSource(directory).read()
    assert caught.value.host == "dom0a"
    assert str(directory) in caught.value.source and "xl list" in caught.value.source
    assert "line 2" in caught.value.message


def test_missing_raw_file(xl_view: HostView, tmp_path: Path) -> None:
    directory = tmp_path / "snap"
    save_host_snapshot(xl_view, directory, COLLECTED_AT)
    (directory / "xl-info.txt").unlink()
    with pytest.raises(HypervisorError, match=r"xl-info\.txt"):
        SnapshotSource(directory).read()
