"""Nightly history: one row per domain per run, in a small SQLite file.

History turns one night's snapshot into a trend: the peak need over weeks
sizes memory, counter deltas give swap-in rates, and "first seen" tells an
admin whether a finding is new. The store lives in the state directory
(Inventory.state_dir, history.sqlite3) and is only ever appended to by the
nightly run.

Robustness rules:

* a file that is not our database (corrupt, foreign, or written by a newer
  xenaudit) raises HistoryError and is left byte-for-byte untouched: the
  history is worth more than one night's run;
* concurrent runs (two cron jobs overlapping) must not corrupt it: WAL
  journal, a busy timeout, and one write transaction per run.

Event counts are stored as read from that night's kernel log (the ring
buffer repeats old reports), which is what the analysis needs to tell new
events from old ones.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from xenaudit.analysis.interface import Assessment, HistoryNight
from xenaudit.analysis.signals import guest_oom_events
from xenaudit.parsers.interface import GuestFacts, PageAllocFailure

FILE_NAME = "history.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
DEFAULT_LIMIT = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nights (
    run_at TEXT NOT NULL,
    host TEXT NOT NULL,
    domain TEXT NOT NULL,
    mem_total_kib INTEGER,
    mem_available_kib INTEGER,
    swap_used_kib INTEGER,
    pswpin INTEGER,
    pgmajfault INTEGER,
    oom_kill_counter INTEGER,
    psi_some_avg60 REAL,
    page_alloc_failures INTEGER NOT NULL,
    oom_kills INTEGER NOT NULL,
    finding_codes TEXT NOT NULL,
    PRIMARY KEY (host, domain, run_at)
) WITHOUT ROWID;
"""
_COLUMNS = (
    "run_at",
    "mem_total_kib",
    "mem_available_kib",
    "swap_used_kib",
    "pswpin",
    "pgmajfault",
    "oom_kill_counter",
    "psi_some_avg60",
    "page_alloc_failures",
    "oom_kills",
    "finding_codes",
)

#: One row to record: (host, domain, night).
Row = tuple[str, str, HistoryNight]


class HistoryError(Exception):
    """The history store cannot be used. Names the file and what is wrong with it."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


def _codes(night: HistoryNight) -> str:
    return json.dumps(sorted(set(night.finding_codes)))


def _night(row: Sequence[object], path: Path) -> HistoryNight:
    try:
        codes = json.loads(str(row[10]))
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise ValueError("finding_codes is not a list of strings")
    except ValueError as exc:
        raise HistoryError(path, f"bad finding_codes in row of {row[0]}: {exc}") from None
    return HistoryNight(
        run_at=str(row[0]),
        mem_total_kib=row[1],  # type: ignore[arg-type]
        mem_available_kib=row[2],  # type: ignore[arg-type]
        swap_used_kib=row[3],  # type: ignore[arg-type]
        pswpin=row[4],  # type: ignore[arg-type]
        pgmajfault=row[5],  # type: ignore[arg-type]
        oom_kill_counter=row[6],  # type: ignore[arg-type]
        psi_some_avg60=row[7],  # type: ignore[arg-type]
        page_alloc_failures=int(row[8]),  # type: ignore[call-overload]
        oom_kills=int(row[9]),  # type: ignore[call-overload]
        finding_codes=tuple(codes),
    )


class HistoryStore:
    """The history file of one state directory. Use `HistoryStore.open`."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    # --- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path | str) -> HistoryStore:
        """Open (creating if needed) the store in `state_dir`, checking it is ours."""
        directory = Path(state_dir)
        path = directory / FILE_NAME
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(directory, f"cannot create the state directory: {exc}") from None
        if not path.exists():
            try:
                # An empty file is a valid empty database; creating it ourselves
                # keeps it private (sqlite would use the umask).
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
            except OSError as exc:
                raise HistoryError(path, f"cannot create: {exc}") from None
        try:
            connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
            )
        except sqlite3.Error as exc:
            raise HistoryError(path, f"cannot open: {exc}") from None
        store = cls(path, connection)
        try:
            store._check_and_prepare()
        except BaseException:
            connection.close()
            raise
        return store

    def _check_and_prepare(self) -> None:
        """Refuse anything that is not our schema before writing a single byte."""
        db = self._db
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                self.path, f"not a readable history database ({exc}); left untouched"
            ) from None
        if version > SCHEMA_VERSION:
            raise HistoryError(
                self.path,
                f"written by a newer xenaudit (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); left untouched, upgrade xenaudit to use it",
            )
        if version == 0 and tables - {"nights"}:
            raise HistoryError(
                self.path,
                f"not a xenaudit history (tables: {', '.join(sorted(tables))}); left untouched",
            )
        if version == SCHEMA_VERSION:
            self._check_columns()
            self._check_integrity()
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                # WAL needs shared memory (not on some network file systems);
                # the rollback journal with a busy timeout is safe, only slower.
                db.execute("PRAGMA journal_mode = DELETE")
            db.execute("PRAGMA synchronous = NORMAL")
            if version == 0:
                db.execute("BEGIN IMMEDIATE")
                try:
                    again = db.execute("PRAGMA user_version").fetchone()[0]
                    if again == 0:
                        db.execute(_SCHEMA)
                        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except sqlite3.DatabaseError as exc:
            raise HistoryError(self.path, f"cannot prepare the history database: {exc}") from None

    def _check_integrity(self) -> None:
        try:
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise HistoryError(self.path, f"damaged ({'; '.join(problems[:3])}); left untouched")

    def _check_columns(self) -> None:
        try:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(nights)")}
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                self.path, f"cannot read the schema ({exc}); left untouched"
            ) from None
        missing = set(_COLUMNS) | {"host", "domain"}
        missing -= columns
        if missing:
            raise HistoryError(
                self.path,
                f"history table lacks columns {', '.join(sorted(missing))}; left untouched",
            )

    # --- reading -----------------------------------------------------------------

    def nights(
        self, host: str, domain: str, limit: int = DEFAULT_LIMIT
    ) -> tuple[HistoryNight, ...]:
        """The latest `limit` nights of one domain, oldest first."""
        if limit <= 0:
            return ()
        try:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM nights WHERE host = ? AND domain = ? "
                "ORDER BY run_at DESC LIMIT ?",
                (host, domain, limit),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(self.path, f"cannot read {host}/{domain}: {exc}") from None
        return tuple(_night(row, self.path) for row in reversed(rows))

    def first_seen(self, host: str, domain: str, code: str) -> str | None:
        """run_at of the earliest night on which `code` was raised for this domain."""
        try:
            rows = self._db.execute(
                "SELECT run_at, finding_codes FROM nights WHERE host = ? AND domain = ? "
                "AND instr(finding_codes, ?) > 0 ORDER BY run_at",
                (host, domain, json.dumps(code)),
            )
            for run_at, codes in rows:
                try:
                    if code in json.loads(codes):
                        return str(run_at)
                except ValueError:
                    continue
        except sqlite3.DatabaseError as exc:
            raise HistoryError(self.path, f"cannot read {host}/{domain}: {exc}") from None
        return None

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM nights").fetchone()[0])

    # --- writing -----------------------------------------------------------------

    def record(self, run_at: str, host: str, domain: str, night: HistoryNight) -> None:
        """Record one domain's night (its own transaction); `run_at` wins over night.run_at."""
        self.record_run(run_at, [(host, domain, night)])

    def record_run(self, run_at: str, rows: Iterable[Row]) -> None:
        """Record a whole run in one transaction: all rows or none.

        A row for the same host, domain and run_at replaces the earlier one,
        so re-running a night does not count it twice. Every row is stored
        under `run_at`, whatever its night's own run_at says.
        """
        values = [
            (
                run_at,
                host,
                domain,
                night.mem_total_kib,
                night.mem_available_kib,
                night.swap_used_kib,
                night.pswpin,
                night.pgmajfault,
                night.oom_kill_counter,
                night.psi_some_avg60,
                int(night.page_alloc_failures),
                int(night.oom_kills),
                _codes(night),
            )
            for host, domain, night in rows
        ]
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO nights (run_at, host, domain, mem_total_kib, "
                    "mem_available_kib, swap_used_kib, pswpin, pgmajfault, oom_kill_counter, "
                    "psi_some_avg60, page_alloc_failures, oom_kills, finding_codes) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise HistoryError(self.path, f"cannot record run {run_at}: {exc}") from None

    # --- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def night_from_facts(
    facts: GuestFacts | None,
    run_at: str,
    finding_codes: Iterable[str] = (),
) -> HistoryNight:
    """Tonight's row for one domain, from what its guest showed.

    Event counts are those in tonight's kernel log (old reports included,
    plus reports the kernel suppressed), so tomorrow's run can tell new
    events from ones it already saw.
    """
    meminfo = facts.meminfo if facts else None
    vmstat = facts.vmstat if facts else None
    psi = facts.psi if facts else None
    events = facts.kernlog.events if facts and facts.kernlog else ()
    failures = [e for e in events if isinstance(e, PageAllocFailure)]
    suppressed = sum(max(0, getattr(f, "callbacks_suppressed", 0) or 0) for f in failures)
    counts = facts.kernlog.counts if facts and facts.kernlog else None
    n_failures = len(failures)
    if counts is not None:  # exact even when only the first and last events were kept
        n_failures, suppressed = counts.page_alloc_failures, counts.page_alloc_suppressed
    swap_total = meminfo.get("SwapTotal") if meminfo else None
    swap_free = meminfo.get("SwapFree") if meminfo else None
    return HistoryNight(
        run_at=run_at,
        mem_total_kib=meminfo.mem_total_kib if meminfo else None,
        mem_available_kib=meminfo.mem_available_kib if meminfo else None,
        swap_used_kib=(
            max(0, swap_total - swap_free)
            if swap_total is not None and swap_free is not None
            else None
        ),
        pswpin=vmstat.get("pswpin") if vmstat else None,
        pgmajfault=vmstat.get("pgmajfault") if vmstat else None,
        oom_kill_counter=vmstat.get("oom_kill") if vmstat else None,
        psi_some_avg60=psi.some.avg60 if psi and psi.some else None,
        page_alloc_failures=n_failures + suppressed,
        oom_kills=guest_oom_events(facts.kernlog if facts else None),
        finding_codes=tuple(sorted(set(finding_codes))),
    )


def night_for_assessment(
    facts: GuestFacts | None, run_at: str, assessment: Assessment
) -> HistoryNight:
    """Tonight's row with the finding codes the analysis raised."""
    return night_from_facts(facts, run_at, (f.code for f in assessment.findings))


def with_first_seen(assessment: Assessment, store: HistoryStore) -> Assessment:
    """Take each finding's first_seen from the store, which reaches past the 60-night window."""
    findings = []
    for finding in assessment.findings:
        earliest = store.first_seen(assessment.host, assessment.domain, finding.code)
        if earliest is not None and (finding.first_seen is None or earliest < finding.first_seen):
            finding = replace(finding, first_seen=earliest)
        findings.append(finding)
    return replace(assessment, findings=tuple(findings))
