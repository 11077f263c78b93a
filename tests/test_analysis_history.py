"""The SQLite history store: round trips, first_seen, refusing damaged files, concurrent runs."""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
from dataclasses import replace
from datetime import UTC, timedelta, timezone
from multiprocessing.synchronize import Event, Semaphore
from pathlib import Path

import pytest

from tests.analysis_cases import (
    MIB,
    case,
    classic_512,
    damage_a_page,
    facts,
    night,
    oom_kill,
    swapper_failures,
)
from xenaudit.analysis import DefaultAnalyzer
from xenaudit.analysis.history import (
    FILE_NAME,
    SCHEMA_VERSION,
    HistoryError,
    HistoryStore,
    night_for_assessment,
    night_from_facts,
    night_of,
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
    # A 02:30 run belongs to the night that began the day before.
    assert [n.night for n in nights] == ["2026-10-31", "2026-11-01", "2026-11-02"]
    assert replace(nights[1], night=None) == _night(2, pswpin=2)


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
    before = damage_a_page(path)
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
    with HistoryStore.open(Path(state_dir), zone=UTC) as store:
        ready.release()
        go.wait(60)
        for run in range(runs):
            rows = [
                ("h", f"dom{d}", _night(1, pswpin=worker * 1000 + run, codes=(f"w{worker}",)))
                for d in range(20)
            ]
            # Two runs a night per worker (22:00 and 02:00), both workers on the same nights.
            day, late = divmod(run, 2)
            when = (
                f"2026-11-{day + 2:02d}T02:00:{worker:02d}Z"
                if late
                else f"2026-11-{day + 1:02d}T22:00:{worker:02d}Z"
            )
            store.record_run(when, rows)


def test_two_processes_writing_at_once_merge_every_run_into_its_night(tmp_path: Path) -> None:
    runs = 40
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
    with HistoryStore.open(tmp_path, zone=UTC) as store:
        # 20 nights, each holding two runs from each worker: no run was lost or counted twice.
        assert store.count() == (runs // 2) * 20
        for d in range(20):
            nights = store.nights("h", f"dom{d}", limit=1000)
            assert len(nights) == runs // 2
            for n in nights:
                assert n.runs == 4
                assert n.finding_codes == ("w1", "w2")
                # The counters are the latest run's: worker 2's 02:00 run, one second later.
                assert n.run_at.endswith("T02:00:02Z") and n.pswpin // 1000 == 2
    connection = sqlite3.connect(tmp_path / FILE_NAME)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()


def test_runs_within_one_night_are_one_night(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path, zone=UTC) as store:
        # A manual check in the evening, then the timer: one night, with the worse need.
        store.record("2026-11-24T19:05:00Z", "h", "d", _night(1, pswpin=10, codes=("shortage",)))
        evening_need = store.nights("h", "d")[0].need_kib
        store.record("2026-11-25T02:30:00Z", "h", "d", _night(9, pswpin=20, codes=("healthy",)))
        # The next night's run is a night of its own.
        store.record("2026-11-26T02:30:00Z", "h", "d", _night(5, pswpin=30))
        nights = store.nights("h", "d")
        assert [n.night for n in nights] == ["2026-11-24", "2026-11-25"]
        first = nights[0]
        assert first.runs == 2 and first.run_at == "2026-11-25T02:30:00Z"
        assert first.need_kib == evening_need  # the evening's was the larger need
        assert first.pswpin == 20  # counters from the later run
        assert first.finding_codes == ("healthy", "shortage")
        # What a run on the 25th at 03:00 sees as history: nights before its own.
        assert store.nights_before("h", "d", "2026-11-25T03:00:00Z") == ()
        assert [n.night for n in store.nights_before("h", "d", "2026-11-27T02:30:00Z")] == [
            "2026-11-24",
            "2026-11-25",
        ]
        assert store.first_seen("h", "d", "shortage") == "2026-11-24T19:05:00Z"


def test_night_of_counts_from_noon_to_noon() -> None:
    assert night_of("2026-11-24T11:59:00Z", UTC) == "2026-11-23"
    assert night_of("2026-11-24T12:00:00Z", UTC) == "2026-11-24"
    assert night_of("2026-11-25T11:00:00Z", UTC) == "2026-11-24"
    # Nights are counted in local time: 03:00 UTC is 13:00 at UTC+10, a new night there.
    assert night_of("2026-11-25T03:00:00Z", UTC) == "2026-11-24"
    assert night_of("2026-11-25T03:00:00Z", timezone(timedelta(hours=10))) == "2026-11-25"
    assert night_of("not a time") == "not a time"


def test_a_schema_1_history_is_converted_to_nights(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    connection = sqlite3.connect(path)
    connection.executescript(
        """
        CREATE TABLE nights (run_at TEXT NOT NULL, host TEXT NOT NULL, domain TEXT NOT NULL,
            mem_total_kib INTEGER, mem_available_kib INTEGER, swap_used_kib INTEGER,
            pswpin INTEGER, pgmajfault INTEGER, oom_kill_counter INTEGER,
            psi_some_avg60 REAL, page_alloc_failures INTEGER NOT NULL,
            oom_kills INTEGER NOT NULL, finding_codes TEXT NOT NULL,
            PRIMARY KEY (host, domain, run_at)) WITHOUT ROWID;
        INSERT INTO nights VALUES ('2026-11-24T21:00:00Z', 'h', 'd', 1000, 300, 0, 5, 7, 0,
            1.5, 2, 0, '["atomic_reserve"]');
        INSERT INTO nights VALUES ('2026-11-25T02:30:00Z', 'h', 'd', 1000, 600, 0, 9, 8, 0,
            0.5, 3, 0, '["healthy"]');
        INSERT INTO nights VALUES ('2026-11-26T02:30:00Z', 'h', 'd', 1000, 650, 0, 12, 9, 0,
            0.0, 3, 0, '[]');
        PRAGMA user_version = 1;
        """
    )
    connection.commit()
    connection.close()
    with HistoryStore.open(tmp_path, zone=UTC) as store:
        nights = store.nights("h", "d")
        assert store.count() == 2
    assert [n.night for n in nights] == ["2026-11-24", "2026-11-25"]
    assert nights[0].runs == 2 and nights[0].need_kib == 700 and nights[0].pswpin == 9
    assert nights[0].psi_some_avg60 == 1.5 and nights[0].page_alloc_failures == 3
    assert nights[0].finding_codes == ("atomic_reserve", "healthy")
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
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


def test_tomorrows_run_sees_tonights_events_as_old_but_unresolved(tmp_path: Path) -> None:
    analyzer = DefaultAnalyzer()
    tonight = classic_512(failures=3)
    first = analyzer.assess(tonight)
    atomic = next(f for f in first.findings if f.code == "atomic_reserve")
    assert atomic.severity == "warning" and atomic.first_seen is None
    with HistoryStore.open(tmp_path) as store:
        row = night_for_assessment(
            tonight.facts, "2026-11-24T02:30:00Z", first, tonight.config, tonight.domain.target_kib
        )
        store.record_run("2026-11-24T02:30:00Z", [("xen1", "web", row)])
        history = store.nights("xen1", "web")
        assert history[0].cfg_memory_mib == 512 and history[0].page_alloc_failures == 3
        second = analyzer.assess(replace(tonight, history=history))
        again = next(f for f in second.findings if f.code == "atomic_reserve")
        # Nothing changed since: the finding stays, saying why and until when.
        assert again.severity == "warning" and "unresolved" in again.detail.lower()
        assert again.first_seen == "2026-11-24T02:30:00Z" and again.nights_seen == 1
        # With one quiet night enough to resolve it, it is only a note.
        one = replace(tonight.thresholds, resolve_quiet_nights=1)
        resolved = analyzer.assess(replace(tonight, history=history, thresholds=one))
        old = next(f for f in resolved.findings if f.code == "atomic_reserve")
        assert old.severity == "info" and "No new ones since" in old.detail
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
