"""Guest snapshots on disk: round trips, hostile folders, and replay as a collector."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenaudit.collector import snapshot as snapshot_module
from xenaudit.collector.interface import SECTIONS, CollectorError, GuestSnapshot, GuestTarget
from xenaudit.collector.snapshot import (
    SnapshotCollector,
    load_guest_snapshot,
    save_guest_snapshot,
)
from xenaudit.snapshots import GUEST_META, guest_dirs

REPO = Path(__file__).resolve().parent.parent
DEMO_FLEET = REPO / "xenaudit" / "demo" / "fleet"


def snap(domain: str = "web1", host: str = "dom0a", **kwargs) -> GuestSnapshot:
    values = {
        "status": "ok",
        "collected_at": "2026-11-25T02:31:07Z",
        "sections": {"meminfo": "MemTotal: 1 kB\n", "kernlog": "[ 1.0] x\n"},
        "section_status": {"meminfo": "ok", "kernlog": "truncated", "slabinfo": "denied"},
        "kernlog_source": "dmesg",
    }
    values.update(kwargs)
    return GuestSnapshot(domain=domain, host=host, **values)


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    original = snap(
        status="host_key_rejected",
        error="host key for web1 has CHANGED",
        host_key_fingerprint="SHA256:abc",
        sections={"slabinfo": "", "meminfo": "ü\ufffd\n"},
    )
    folder = save_guest_snapshot(original, tmp_path, set())
    assert folder == tmp_path / "web1"
    assert sorted(p.name for p in folder.iterdir()) == ["meminfo", "meta.json", "slabinfo"]
    assert load_guest_snapshot(folder) == original


section_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(
    max_examples=60,
    deadline=None,  # file I/O on a shared, loaded machine
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    domain=st.text(min_size=1, max_size=80),
    sections=st.dictionaries(st.sampled_from(SECTIONS), section_text),
    status=st.sampled_from(["ok", "partial", "timeout", "unreachable"]),
)
def test_any_snapshot_round_trips(tmp_path: Path, domain: str, sections, status: str) -> None:
    original = snap(domain=domain, status=status, sections=sections, section_status={})
    folder = save_guest_snapshot(original, tmp_path / "run", set())
    assert folder.parent == tmp_path / "run"  # never escapes the snapshots root
    assert load_guest_snapshot(folder) == original
    for child in (tmp_path / "run").iterdir():
        for item in child.iterdir():
            item.unlink()
        child.rmdir()


def test_names_that_sanitise_alike_get_their_own_folders(tmp_path: Path) -> None:
    taken: set[str] = set()
    first = save_guest_snapshot(snap(domain="a/b"), tmp_path, taken)
    second = save_guest_snapshot(snap(domain="a?b"), tmp_path, taken)
    assert first != second
    assert {load_guest_snapshot(first).domain, load_guest_snapshot(second).domain} == {"a/b", "a?b"}


def test_saving_again_drops_sections_from_an_earlier_run(tmp_path: Path) -> None:
    save_guest_snapshot(snap(sections={"meminfo": "old", "kernlog": "old"}), tmp_path, set())
    folder = save_guest_snapshot(snap(sections={"meminfo": "new"}), tmp_path, set())
    assert load_guest_snapshot(folder).sections == {"meminfo": "new"}


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"domain": "web1"}', "host: missing"),
    ],
)
def test_broken_meta_is_a_collector_error_naming_the_folder(
    tmp_path: Path, meta: str, message: str
) -> None:
    folder = save_guest_snapshot(snap(), tmp_path, set())
    (folder / GUEST_META).write_text(meta)
    with pytest.raises(CollectorError, match=message) as caught:
        load_guest_snapshot(folder)
    assert str(folder) in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("domain", ""),
        ("status", "great"),
        ("collected_at", "yesterday"),
        ("section_status", {"meminfo": "fine"}),
        ("section_status", {"../../etc/passwd": "ok"}),
        ("kernlog_source", "syslog"),
        ("error", 42),
        ("host_key_fingerprint", ["x"]),
    ],
)
def test_wrong_meta_values_are_refused(tmp_path: Path, key: str, value: object) -> None:
    folder = save_guest_snapshot(snap(), tmp_path, set())
    meta = json.loads((folder / GUEST_META).read_text())
    meta[key] = value
    (folder / GUEST_META).write_text(json.dumps(meta))
    with pytest.raises(CollectorError, match=key):
        load_guest_snapshot(folder)


def test_symlinked_sections_are_refused(tmp_path: Path) -> None:
    folder = save_guest_snapshot(snap(), tmp_path, set())
    (folder / "meminfo").unlink()
    (folder / "meminfo").symlink_to("/etc/passwd")
    with pytest.raises(CollectorError, match="symlink"):
        load_guest_snapshot(folder)


def test_fifo_sections_are_refused_without_blocking(tmp_path: Path) -> None:
    folder = save_guest_snapshot(snap(), tmp_path, set())
    (folder / "meminfo").unlink()
    os.mkfifo(folder / "meminfo")
    with pytest.raises(CollectorError, match="not a regular file"):
        load_guest_snapshot(folder)


def test_oversized_sections_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = save_guest_snapshot(snap(sections={"meminfo": "x" * 2000}), tmp_path, set())
    monkeypatch.setattr(snapshot_module, "MAX_SECTION_BYTES", 1000)
    with pytest.raises(CollectorError, match="larger than 1000 bytes"):
        load_guest_snapshot(folder)


# --- SnapshotCollector -------------------------------------------------------------------


def test_replay_matches_by_host_and_domain(tmp_path: Path) -> None:
    taken: set[str] = set()
    save_guest_snapshot(snap("web1", "dom0a", sections={"meminfo": "A"}), tmp_path, taken)
    save_guest_snapshot(snap("web1", "dom0b", sections={"meminfo": "B"}), tmp_path, taken)
    save_guest_snapshot(snap("db1", "old-name", sections={"meminfo": "C"}), tmp_path, taken)
    targets = [
        GuestTarget("web1", "dom0b", "web1"),
        GuestTarget("db1", "dom0a", "db1"),
        GuestTarget("ghost", "dom0a", "ghost"),
    ]
    seen: list[GuestSnapshot] = []
    snaps = list(SnapshotCollector(tmp_path).collect(targets, on_done=seen.append))

    assert seen == snaps
    assert [s.sections.get("meminfo") for s in snaps] == ["B", "C", None]
    # A snapshot found by domain alone is reported under the target's host.
    assert (snaps[1].host, snaps[1].status) == ("dom0a", "ok")
    assert snaps[2].status == "unreachable"
    assert snaps[2].error == "no snapshot for ghost"


def test_replay_reports_a_broken_snapshot_for_its_domain(tmp_path: Path) -> None:
    folder = save_guest_snapshot(snap("web1"), tmp_path, set())
    (folder / GUEST_META).write_text("{")
    (replayed,) = SnapshotCollector(tmp_path).collect([GuestTarget("web1", "dom0a", "web1")])
    assert replayed.status == "unreachable"
    assert "snapshot unreadable" in replayed.error and "not valid JSON" in replayed.error


@pytest.mark.skipif(not DEMO_FLEET.is_dir(), reason="demo fleet not present")
def test_the_demo_fleet_snapshots_load_and_replay() -> None:
    folders = guest_dirs(DEMO_FLEET)
    assert folders
    targets = []
    for folder in folders:
        loaded = load_guest_snapshot(folder)
        meta = json.loads((folder / GUEST_META).read_text())
        assert loaded.domain == meta["domain"]
        for name, text in loaded.sections.items():
            assert text == (folder / name).read_text(encoding="utf-8")
        targets.append(GuestTarget(loaded.domain, loaded.host, loaded.domain))
    replayed = list(SnapshotCollector(DEMO_FLEET).collect(targets))
    assert [s.domain for s in replayed] == [t.domain for t in targets]
    assert all(s.error != f"no snapshot for {s.domain}" for s in replayed)
