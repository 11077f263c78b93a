"""Replays never pose as real nights: no history unless asked, no night from the future.

The attack: replay one snapshot under seven dates to unlock a decrease, or
date snapshots 2099 so that every real night looks older than them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.replaying import replay_audit as replay
from xenaudit.analysis.history import HistoryStore
from xenaudit.cli import main
from xenaudit.demo import FLEET_DIR


def dated_fleet(tmp_path: Path, name: str, collected_at: str) -> Path:
    fleet = tmp_path / name
    shutil.copytree(FLEET_DIR, fleet)
    for meta_file in fleet.glob("*/meta.json"):
        meta = json.loads(meta_file.read_text())
        meta["collected_at"] = collected_at
        meta_file.write_text(json.dumps(meta))
    return fleet


def nights(state: Path) -> int:
    with HistoryStore.open(state) as store:
        return store.count()


def test_a_replay_records_no_history_unless_asked(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for day in range(1, 8):
        fleet = dated_fleet(tmp_path, f"f{day}", f"2026-11-{day:02d}T02:30:00Z")
        assert replay(fleet, tmp_path / f"o{day}", state) == 3
    assert nights(state) == 0
    fleet = dated_fleet(tmp_path, "asked", "2026-11-20T02:30:00Z")
    assert replay(fleet, tmp_path / "asked-out", state, "--record-history") == 3
    assert nights(state) > 0


def test_record_history_is_only_for_replays(tmp_path: Path) -> None:
    assert main(["audit", "--demo", "-o", str(tmp_path / "o"), "--record-history"]) == 2


def test_a_snapshot_from_the_future_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fleet = dated_fleet(tmp_path, "future", "2099-01-01T02:30:00Z")
    assert replay(fleet, tmp_path / "out", state, "--record-history") == 3
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    web = next(d for d in report["domains"] if d["name"] == "web-frontend")
    assert web["collection"]["status"] == "unreachable"
    assert "in the future" in web["collection"]["error"]
    assert all(
        d["recommendation"] is None or d["recommendation"]["change"] != "decrease"
        for d in report["domains"]
    )
    assert nights(state) == 0
