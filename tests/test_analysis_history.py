"""The SQLite history store: round trips, first_seen, refusing damaged files, concurrent runs."""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
from dataclasses import replace
from multiprocessing.synchronize import Event, Semaphore
from pathlib import Path

import pytest

from tests.analysis_cases import MIB, case, classic_512, facts, night, oom_kill, swapper_failures
from xenaudit.analysis import DefaultAnalyzer
from xenaudit.analysis.history import (
    FILE_NAME,
    SCHEMA_VERSION,
    HistoryError,
    HistoryStore,
    night_for_assessment,
    night_from_facts,
    with_first_seen,
)
from xenaudit.analysis.interface import HistoryNight


def _night(day: int, **kw: object) -> HistoryNight:
    return night(f"2026-11-{day:02d}T02:30:00Z", 1000 * MIB, (500 + day) * MIB, **kw)  # type: ignore[arg-type]


def test_record_and_read_back_oldest_first(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "state") as store:
        for day in (3, 1, 2):
            store.record(f"2026-11-{day:02d}T02:30:00Z", "xen1", "web", _night(day, pswpin=day))
        store.record("2026-11-02T02:30:00Z", "xen1", "other", _night(2))
        store.record("2026-11-02T02:30:00Z", "xen2", "web", _night(2))
        nights = store.nights("xen1", "web")
    assert [n.run_at[:10] for n in nights] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert nights[1] == _night(2, pswpin=2)


def test_limit_keeps_the_latest(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        store.record_run("x", [])
        for day in range(1, 21):
            store.record(f"2026-11-{day:02d}T02:30:00Z", "h", "d", _night(day))
        latest = store.nights("h", "d", limit=5)
    assert [n.run_at[8:10] for n in latest] == ["16", "17", "18", "19", "20"]


def test_same_run_twice_replaces_the_row(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        store.record("2026-11-01T02:30:00Z", "h", "d", _night(1, oom_kills=1))
        store.record("2026-11-01T02:30:00Z", "h", "d", _night(1, oom_kills=2))
        nights = store.nights("h", "d")
    assert len(nights) == 1 and nights[0].oom_kills == 2


def test_first_seen_per_code(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        store.record("2026-11-01T02:30:00Z", "h", "d", _night(1, codes=("healthy",)))
        store.record("2026-11-02T02:30:00Z", "h", "d", _night(2, codes=("atomic_reserve",)))
        store.record("2026-11-03T02:30:00Z", "h", "d", _night(3, codes=("atomic_reserve", "drift")))
        assert store.first_seen("h", "d", "atomic_reserve") == "2026-11-02T02:30:00Z"
        assert store.first_seen("h", "d", "drift") == "2026-11-03T02:30:00Z"
        assert store.first_seen("h", "d", "shortage") is None
        assert store.first_seen("h", "other", "healthy") is None
        # A code that is a substring of another must not match it.
        assert store.first_seen("h", "d", "atomic") is None


def test_creates_a_private_directory_and_file(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    HistoryStore.open(state).close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / FILE_NAME).stat().st_mode) == 0o600


def test_corrupt_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    garbage = b"this is not sqlite at all\x00" * 200
    path.write_bytes(garbage)
    with pytest.raises(HistoryError) as err:
        HistoryStore.open(tmp_path)
    assert str(path) in str(err.value) and "untouched" in str(err.value)
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]


def test_damaged_pages_are_refused_and_left_untouched(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        store.record_run("r", [("h", f"d{i}", _night(1)) for i in range(400)])
    path = tmp_path / FILE_NAME
    # Checkpoint the WAL into the main file, then scribble over a page in the middle.
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * 4096
    data[2 * 4096 : 2 * 4096 + 512] = b"\xff" * 512
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    with pytest.raises(HistoryError):
        HistoryStore.open(tmp_path)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    HistoryStore.open(tmp_path).close()
    path = tmp_path / FILE_NAME
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError, match="newer xenaudit"):
        HistoryStore.open(tmp_path)
    assert path.read_bytes() == before


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE invoices (id INTEGER)")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError, match="not a xenaudit history"):
        HistoryStore.open(tmp_path)
    assert path.read_bytes() == before


def _writer(state_dir: str, worker: int, runs: int, ready: Semaphore, go: Event) -> None:
    with HistoryStore.open(Path(state_dir)) as store:
        ready.release()
        go.wait(60)
        for run in range(runs):
            rows = [
                ("h", f"dom{d}", _night(1, pswpin=worker * 1000 + run, codes=(f"w{worker}",)))
                for d in range(20)
            ]
            store.record_run(f"2026-11-{run % 28 + 1:02d}T{run // 28:02d}:30:{worker:02d}Z", rows)


def test_two_processes_writing_at_once_leave_a_consistent_store(tmp_path: Path) -> None:
    runs = 50
    context = multiprocessing.get_context("spawn")
    ready, go = context.Semaphore(0), context.Event()
    workers = [
        context.Process(target=_writer, args=(str(tmp_path), w, runs, ready, go)) for w in (1, 2)
    ]
    for process in workers:
        process.start()
    # Both have opened the store before either writes, so their runs interleave.
    for _ in workers:
        assert ready.acquire(timeout=60)
    go.set()
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]
    with HistoryStore.open(tmp_path) as store:
        assert store.count() == 2 * runs * 20
        for d in range(20):
            nights = store.nights("h", f"dom{d}", limit=1000)
            assert len(nights) == 2 * runs
            # Every run is whole: each night carries its own worker's numbers.
            for n in nights:
                worker = int(n.run_at[-3:-1])
                assert n.finding_codes == (f"w{worker}",)
                assert n.pswpin // 1000 == worker
    connection = sqlite3.connect(tmp_path / FILE_NAME)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()


def test_night_from_facts_counts_what_the_log_shows() -> None:
    guest = facts(
        1000 * MIB,
        400 * MIB,
        swap_total_kib=100 * MIB,
        swap_free_kib=60 * MIB,
        events=(*swapper_failures(3), oom_kill(), oom_kill("x", memcg=True)),
        vmstat={"pswpin": 12, "pgmajfault": 34, "oom_kill": 2},
    )
    row = night_from_facts(
        guest, "2026-11-25T02:30:00Z", ("shortage", "atomic_reserve", "shortage")
    )
    assert row.need_kib == 600 * MIB
    assert row.swap_used_kib == 40 * MIB
    assert (row.pswpin, row.pgmajfault, row.oom_kill_counter) == (12, 34, 2)
    assert row.page_alloc_failures == 3
    assert row.oom_kills == 1  # the cgroup kill is not the guest's
    assert row.finding_codes == ("atomic_reserve", "shortage")
    empty = night_from_facts(None, "2026-11-25T02:30:00Z")
    assert empty.mem_total_kib is None and empty.page_alloc_failures == 0


def test_tomorrows_run_sees_tonights_events_as_old(tmp_path: Path) -> None:
    analyzer = DefaultAnalyzer()
    tonight = classic_512(failures=3)
    first = analyzer.assess(tonight)
    atomic = next(f for f in first.findings if f.code == "atomic_reserve")
    assert atomic.severity == "warning" and atomic.first_seen is None
    with HistoryStore.open(tmp_path) as store:
        store.record_run(
            "2026-11-24T02:30:00Z",
            [("xen1", "web", night_for_assessment(tonight.facts, "2026-11-24T02:30:00Z", first))],
        )
        history = store.nights("xen1", "web")
        second = analyzer.assess(replace(tonight, history=history))
        again = next(f for f in second.findings if f.code == "atomic_reserve")
        assert again.severity == "info"
        assert again.first_seen == "2026-11-24T02:30:00Z" and again.nights_seen == 1
        # A new failure tomorrow makes it current again.
        more = replace(
            tonight.facts, kernlog=replace(tonight.facts.kernlog, events=swapper_failures(4))
        )
        third = analyzer.assess(replace(tonight, facts=more, history=history))
        assert next(f for f in third.findings if f.code == "atomic_reserve").severity == "warning"
        annotated = with_first_seen(third, store)
        assert next(f for f in annotated.findings if f.code == "atomic_reserve").first_seen == (
            "2026-11-24T02:30:00Z"
        )


def test_analysis_reads_history_from_the_store(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        for day in range(1, 11):
            store.record(
                f"2026-11-{day:02d}T02:30:00Z",
                "xen1",
                "web",
                night(f"2026-11-{day:02d}T02:30:00Z", 1990 * MIB, 1400 * MIB),
            )
        history = store.nights("xen1", "web")
    item = case(facts(1990 * MIB, 1400 * MIB), memory_mib=2048, history=history)
    rec = DefaultAnalyzer().assess(item).recommendation
    assert rec is not None and rec.change == "decrease"
