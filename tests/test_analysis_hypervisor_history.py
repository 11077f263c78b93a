"""The hypervisor-side nights store: round trips, replays that count once, foreign files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from xenaudit.analysis.hypervisor_history import (
    FILE_NAME,
    HypervisorHistory,
    HypervisorHistoryError,
)
from xenaudit.analysis.hypervisor_nights import HypervisorNight


def _night(run_at: str, domid: int = 7, free: int | None = 1000) -> HypervisorNight:
    return HypervisorNight(
        run_at=run_at,
        domid=domid,
        state="blocked",
        target_kib=1048576,
        held_kib=1048576,
        tools_total_kib=1000000,
        tools_free_kib=free,
        tools_source="guest agent",
        feature_balloon=False,
        pod_events=1,
        crash_events=2,
        finding_codes=("shortage", "pod_crash", "shortage"),
    )


def test_round_trip_and_order(tmp_path: Path) -> None:
    with HypervisorHistory.open(tmp_path) as store:
        store.record_run("2026-11-24T02:31:00Z", [("h", "d", _night("x", domid=8))])
        store.record_run("2026-11-23T02:31:00Z", [("h", "d", _night("x", free=None))])
        nights = store.nights("h", "d")
    assert [n.run_at for n in nights] == ["2026-11-23T02:31:00Z", "2026-11-24T02:31:00Z"]
    assert nights[0].tools_free_kib is None and nights[0].tools_need_kib is None
    assert nights[1].domid == 8 and nights[1].feature_balloon is False
    assert nights[1].finding_codes == ("pod_crash", "shortage")
    assert (nights[1].pod_events, nights[1].crash_events) == (1, 2)
    assert (tmp_path / FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_the_same_night_again_replaces_it(tmp_path: Path) -> None:
    with HypervisorHistory.open(tmp_path) as store:
        for free in (1000, 2000):
            store.record_run("2026-11-24T02:31:00Z", [("h", "d", _night("x", free=free))])
        assert store.count() == 1
        assert store.nights("h", "d")[0].tools_free_kib == 2000


def test_a_foreign_database_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
    before = path.read_bytes()
    with pytest.raises(HypervisorHistoryError, match="not xenaudit's"):
        HypervisorHistory.open(tmp_path)
    assert path.read_bytes() == before


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    HypervisorHistory.open(tmp_path).close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(HypervisorHistoryError, match="newer xenaudit"):
        HypervisorHistory.open(tmp_path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"not a database at all" * 100)
    with pytest.raises(HypervisorHistoryError, match="left untouched"):
        HypervisorHistory.open(tmp_path)
    assert (tmp_path / FILE_NAME).read_bytes() == b"not a database at all" * 100
