"""The hypervisor-side nights store: round trips, replays that count once, foreign files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.analysis_cases import damage_a_page
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


def test_damaged_pages_are_refused_and_left_untouched(tmp_path: Path) -> None:
    with HypervisorHistory.open(tmp_path) as store:
        store.record_run(
            "2026-11-24T02:31:00Z", [("h", f"domain-{i:04d}", _night("x")) for i in range(400)]
        )
    path = tmp_path / FILE_NAME
    before = damage_a_page(path)
    with pytest.raises(HypervisorHistoryError, match="left untouched"):
        HypervisorHistory.open(tmp_path)
    assert path.read_bytes() == before


def test_a_row_the_store_refuses_leaves_the_run_unrecorded(tmp_path: Path) -> None:
    """One transaction per run: a row SQLite cannot bind rolls back the rows before it."""
    with HypervisorHistory.open(tmp_path) as store:
        rows = [("h", "a", _night("x")), ("h", "b", _night("x", free=2**70))]
        with pytest.raises(OverflowError):
            store.record_run("2026-11-24T02:31:00Z", rows)
        assert store.count() == 0
        store.record_run("2026-11-24T02:31:00Z", rows[:1])
        assert store.count() == 1


def test_a_directory_that_cannot_be_made_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HypervisorHistoryError, match="cannot create the state directory"):
        HypervisorHistory.open(blocker / "state")
