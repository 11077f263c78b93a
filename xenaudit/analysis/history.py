"""Nightly history: one row per domain per night, in a small SQLite file.

History turns one night's snapshot into a trend: the peak need over weeks
sizes memory, counter deltas show the pressure between two nightly samples,
and "first seen" tells an admin whether a finding is new. The store lives in
the state directory (Inventory.state_dir, history.sqlite3) and is only ever
written by the nightly run (or a replay of one).

Nights, not runs: every run between noon and the next noon (local time)
belongs to one night, so a manual check in the evening and the timer at
02:30 are one night, and a decrease that needs seven nights needs seven
distinct nights. A run merges into its night's row: peaks (need, swap, PSI)
keep the worst run, cumulative counters and the kernel log's event counts
keep the latest run, finding codes are the union.

Robustness rules:

* a file that is not our database (corrupt, foreign, or written by a newer
  xenaudit) raises HistoryError and is left byte-for-byte untouched: the
  history is worth more than one night's run;
* a schema-1 file (one row per run) is converted in place, in one
  transaction, by merging its runs into nights;
* concurrent runs (two cron jobs overlapping) must not corrupt it: WAL
  journal, a busy timeout, and one write transaction per run, which reads
  and merges the night rows it replaces.

Event counts are stored as read from that night's kernel log (the ring
buffer repeats old reports), which is what the analysis needs to tell new
events from old ones.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from xenaudit.analysis.interface import Assessment, ConfigFacts, HistoryNight
from xenaudit.analysis.sqlite_store import SqliteStore, StoreError
from xenaudit.analysis.tonight import night_from_facts
from xenaudit.parsers.interface import GuestFacts

FILE_NAME = "history.sqlite3"
SCHEMA_VERSION = 2
DEFAULT_LIMIT = 60
#: A night runs from this local hour to the same hour the next day.
NIGHT_STARTS_AT_HOUR = 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nights (
    night TEXT NOT NULL,
    host TEXT NOT NULL,
    domain TEXT NOT NULL,
    run_at TEXT NOT NULL,
    run_ats TEXT NOT NULL,
    mem_total_kib INTEGER,
    mem_available_kib INTEGER,
    mem_free_kib INTEGER,
    swap_used_kib INTEGER,
    sunreclaim_kib INTEGER,
    pswpin INTEGER,
    pgmajfault INTEGER,
    oom_kill_counter INTEGER,
    psi_some_avg60 REAL,
    psi_some_total_us INTEGER,
    psi_full_total_us INTEGER,
    allocstall INTEGER,
    pgscan_direct INTEGER,
    compact_stall INTEGER,
    workingset_refault INTEGER,
    page_alloc_failures INTEGER NOT NULL,
    oom_kills INTEGER NOT NULL,
    cfg_memory_mib INTEGER,
    cfg_maxmem_mib INTEGER,
    live_target_kib INTEGER,
    rec_memory_mib INTEGER,
    rec_maxmem_mib INTEGER,
    boot_time INTEGER,
    damaged INTEGER NOT NULL,
    finding_codes TEXT NOT NULL,
    PRIMARY KEY (host, domain, night)
) WITHOUT ROWID;
"""
#: HistoryNight fields stored as they are (plain columns of the same name).
_PLAIN = (
    "run_at",
    "mem_total_kib",
    "mem_available_kib",
    "mem_free_kib",
    "swap_used_kib",
    "sunreclaim_kib",
    "pswpin",
    "pgmajfault",
    "oom_kill_counter",
    "psi_some_avg60",
    "psi_some_total_us",
    "psi_full_total_us",
    "allocstall",
    "pgscan_direct",
    "compact_stall",
    "workingset_refault",
    "page_alloc_failures",
    "oom_kills",
    "cfg_memory_mib",
    "cfg_maxmem_mib",
    "live_target_kib",
    "rec_memory_mib",
    "rec_maxmem_mib",
    "boot_time",
)
_COLUMNS = ("night", "run_ats", *_PLAIN, "damaged", "finding_codes")
#: Schema 1 (one row per run), converted on open.
_V1_COLUMNS = (
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
#: Peaks: a night keeps its worst run's (see merge_nights).
_PEAKS = ("mem_total_kib", "mem_available_kib", "mem_free_kib", "swap_used_kib", "psi_some_avg60")
#: Everything else (cumulative counters, the cfg, the recommendation): a night keeps its
#: latest run's values.
_LATEST = tuple(name for name in _PLAIN if name not in ("run_at", *_PEAKS))

#: One row to record: (host, domain, night).
Row = tuple[str, str, HistoryNight]


def parse_time(run_at: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(run_at)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def night_of(run_at: str, zone: tzinfo | None = None) -> str:
    """The night a run belongs to: the local date of (run time − 12 h).

    Runs from noon to the next noon are one night, so an evening check and the
    02:30 timer count once. `zone` defaults to the machine's local time zone;
    an unreadable time falls back to its first ten characters.
    """
    when = parse_time(run_at)
    if when is None:
        return run_at[:10]
    local = when.astimezone(zone) if zone is not None else when.astimezone()
    return (local - timedelta(hours=NIGHT_STARTS_AT_HOUR)).date().isoformat()


def merge_nights(a: HistoryNight, b: HistoryNight) -> HistoryNight:
    """Two runs (or nights) of one night as one: worst peaks, latest counters, all codes."""
    early, late = (a, b) if a.run_at <= b.run_at else (b, a)
    if early.run_at == late.run_at:
        return replace(late, runs=max(a.runs, b.runs))
    merged: dict[str, Any] = {f.name: getattr(late, f.name) for f in fields(HistoryNight)}
    for name in _LATEST:
        if merged[name] is None:
            merged[name] = getattr(early, name)

    def need(n: HistoryNight) -> int:
        value = n.need_kib
        return -1 if value is None or n.damaged else value

    peak = early if need(early) > need(late) else late
    merged["mem_total_kib"], merged["mem_available_kib"] = (
        peak.mem_total_kib,
        peak.mem_available_kib,
    )

    def touched(n: HistoryNight) -> int:
        if n.mem_total_kib is None or n.mem_free_kib is None:
            return -1
        return n.mem_total_kib - n.mem_free_kib

    merged["mem_free_kib"] = (early if touched(early) > touched(late) else late).mem_free_kib
    for name in ("swap_used_kib", "psi_some_avg60"):
        values = [v for v in (getattr(early, name), getattr(late, name)) if v is not None]
        merged[name] = max(values) if values else None
    merged["damaged"] = early.damaged and late.damaged
    merged["finding_codes"] = tuple(sorted(set(early.finding_codes) | set(late.finding_codes)))
    merged["runs"] = early.runs + late.runs
    merged["night"] = late.night or early.night
    return HistoryNight(**merged)


class HistoryError(StoreError):
    """The history store cannot be used. Names the file and what is wrong with it."""


def _codes(night: HistoryNight) -> str:
    return json.dumps(sorted(set(night.finding_codes)))


def _night(row: Sequence[object], path: Path) -> tuple[HistoryNight, tuple[str, ...]]:
    """A stored row as a HistoryNight, with the run times merged into it."""
    values = dict(zip(_COLUMNS, row, strict=True))
    try:
        codes = json.loads(str(values["finding_codes"]))
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise ValueError("finding_codes is not a list of strings")
        run_ats = json.loads(str(values["run_ats"]))
        if not isinstance(run_ats, list) or not all(isinstance(r, str) for r in run_ats):
            raise ValueError("run_ats is not a list of strings")
    except ValueError as exc:
        raise HistoryError(path, f"bad row for night {values['night']}: {exc}") from None
    plain: dict[str, Any] = {name: values[name] for name in _PLAIN}
    plain["run_at"] = str(plain["run_at"])
    plain["page_alloc_failures"] = int(plain["page_alloc_failures"])
    plain["oom_kills"] = int(plain["oom_kills"])
    night = HistoryNight(
        **plain,
        night=str(values["night"]),
        runs=max(1, len(run_ats)),
        damaged=bool(values["damaged"]),
        finding_codes=tuple(codes),
    )
    return night, tuple(run_ats)


def _row(host: str, domain: str, night: HistoryNight, run_ats: Iterable[str]) -> tuple[Any, ...]:
    values: dict[str, Any] = {name: getattr(night, name) for name in _PLAIN}
    values["night"] = night.night
    values["run_ats"] = json.dumps(sorted(set(run_ats)))
    values["damaged"] = int(night.damaged)
    values["finding_codes"] = _codes(night)
    values["page_alloc_failures"] = int(night.page_alloc_failures)
    values["oom_kills"] = int(night.oom_kills)
    return (host, domain, *(values[c] for c in _COLUMNS))


class HistoryStore(SqliteStore):
    """The history file of one state directory. Use `HistoryStore.open`."""

    FILE_NAME = FILE_NAME
    KIND = "history"
    Error = HistoryError
    SYNCHRONOUS = "NORMAL"

    def __init__(self, path: Path, connection: sqlite3.Connection, zone: tzinfo | None) -> None:
        super().__init__(path, connection)
        #: Time zone nights are counted in (None: the machine's).
        self.zone = zone

    # --- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path | str, zone: tzinfo | None = None) -> HistoryStore:
        """Open (creating if needed) the store in `state_dir`, checking it is ours."""
        path, connection = cls._connect(state_dir)
        return cls(path, connection, zone)._prepared()

    def night_of(self, run_at: str) -> str:
        return night_of(run_at, self.zone)

    def _prepare(self) -> None:
        """Refuse anything that is not our schema before writing a single byte."""
        _, version, tables = self._header()
        self._refuse_newer(version, SCHEMA_VERSION)
        if version == 0 and tables - {"nights"}:
            raise HistoryError(
                self.path,
                f"not a xenaudit history (tables: {', '.join(sorted(tables))}); left untouched",
            )
        if version >= 1:
            self._check_columns(_V1_COLUMNS if version == 1 else _COLUMNS)
            self._check_integrity()
        with self._failing_as(f"prepare the {self.KIND} database"):
            self._set_journal()
            if version < SCHEMA_VERSION:
                with self._transaction() as db:
                    again = db.execute("PRAGMA user_version").fetchone()[0]
                    if again == 0:
                        db.execute(_SCHEMA)
                    elif again == 1:
                        self._convert_v1()
                    if again < SCHEMA_VERSION:
                        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _convert_v1(self) -> None:
        """Schema 1 kept one row per run: merge them into nights (inside the caller's
        transaction, so a failure leaves the file as it was)."""
        db = self._db
        rows = db.execute(f"SELECT host, domain, {', '.join(_V1_COLUMNS)} FROM nights").fetchall()
        merged: dict[tuple[str, str, str], tuple[HistoryNight, set[str]]] = {}
        for host, domain, *values in rows:
            record = dict(zip(_V1_COLUMNS, values, strict=True))
            try:
                codes = json.loads(str(record.pop("finding_codes")))
            except ValueError:
                codes = []
            run = HistoryNight(
                **record,
                finding_codes=tuple(c for c in codes if isinstance(c, str)),
                night=self.night_of(str(record["run_at"])),
            )
            key = (str(host), str(domain), str(run.night))
            if key in merged:
                earlier, run_ats = merged[key]
                merged[key] = (merge_nights(earlier, run), run_ats | {run.run_at})
            else:
                merged[key] = (run, {run.run_at})
        db.execute("ALTER TABLE nights RENAME TO nights_v1")
        db.execute(_SCHEMA)
        self._insert(
            [_row(host, domain, n, run_ats) for (host, domain, _), (n, run_ats) in merged.items()]
        )
        db.execute("DROP TABLE nights_v1")

    def _insert(self, values: Sequence[tuple[Any, ...]]) -> None:
        columns = ("host", "domain", *_COLUMNS)
        self._db.executemany(
            f"INSERT OR REPLACE INTO nights ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            values,
        )

    def _check_columns(self, expected: Sequence[str]) -> None:
        try:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(nights)")}
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                self.path, f"cannot read the schema ({exc}); left untouched"
            ) from None
        missing = set(expected) | {"host", "domain"}
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
        with self._failing_as(f"read {host}/{domain}"):
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM nights WHERE host = ? AND domain = ? "
                "ORDER BY night DESC LIMIT ?",
                (host, domain, limit),
            ).fetchall()
        return tuple(_night(row, self.path)[0] for row in reversed(rows))

    def nights_before(
        self, host: str, domain: str, run_at: str, limit: int = DEFAULT_LIMIT
    ) -> tuple[HistoryNight, ...]:
        """The nights before the one `run_at` belongs to, oldest first.

        An earlier run of the same night is not a night of its own: it merges
        with tonight's row when tonight is recorded.
        """
        tonight = self.night_of(run_at)
        earlier = [n for n in self.nights(host, domain, limit + 1) if (n.night or "") < tonight]
        return tuple(earlier[-limit:])

    def first_seen(self, host: str, domain: str, code: str) -> str | None:
        """run_at of the earliest night on which `code` was raised for this domain."""
        with self._failing_as(f"read {host}/{domain}"):
            rows = self._db.execute(
                "SELECT run_ats, finding_codes FROM nights WHERE host = ? AND domain = ? "
                "AND instr(finding_codes, ?) > 0 ORDER BY night",
                (host, domain, json.dumps(code)),
            )
            for run_ats, codes in rows:
                try:
                    if code in json.loads(codes):
                        runs = json.loads(run_ats)
                        return str(min(runs)) if runs else None
                except ValueError:
                    continue
        return None

    # --- writing -----------------------------------------------------------------

    def record(self, run_at: str, host: str, domain: str, night: HistoryNight) -> None:
        """Record one domain's run (its own transaction); `run_at` wins over night.run_at."""
        self.record_run(run_at, [(host, domain, night)])

    def record_run(self, run_at: str, rows: Iterable[Row]) -> None:
        """Record a whole run in one transaction: all rows or none.

        Each row merges into its domain's row for the run's night (peaks kept,
        counters from the later run, codes united), so several runs in one
        night count as one night. Recording the same run again replaces what
        it recorded before. Every row is stored under `run_at`, whatever its
        night's own run_at says.
        """
        tonight = self.night_of(run_at)
        batch = [
            (host, domain, replace(night, run_at=run_at, night=tonight, runs=1))
            for host, domain, night in rows
        ]
        with self._failing_as(f"record run {run_at}"), self._transaction() as db:
            values = []
            for host, domain, night in batch:
                existing = db.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM nights "
                    "WHERE host = ? AND domain = ? AND night = ?",
                    (host, domain, tonight),
                ).fetchone()
                run_ats: set[str] = {run_at}
                if existing is not None:
                    stored, stored_runs = _night(existing, self.path)
                    if set(stored_runs) - {run_at}:
                        night = merge_nights(stored, night)
                        run_ats |= set(stored_runs)
                values.append(_row(host, domain, night, run_ats))
            self._insert(values)


def night_for_assessment(
    facts: GuestFacts | None,
    run_at: str,
    assessment: Assessment,
    config: ConfigFacts | None = None,
    live_target_kib: int | None = None,
    boot_time: int | None = None,
) -> HistoryNight:
    """Tonight's row with the finding codes the analysis raised."""
    codes = [f.code for f in assessment.findings]
    night = night_from_facts(facts, run_at, codes, config, live_target_kib, boot_time)
    if "damaged_read" in codes:
        night = replace(night, damaged=True)
    rec = assessment.recommendation
    if rec is not None and rec.change != "none":
        night = replace(night, rec_memory_mib=rec.memory_mib, rec_maxmem_mib=rec.maxmem_mib)
    return night


def with_first_seen(assessment: Assessment, store: HistoryStore) -> Assessment:
    """Take each finding's first_seen from the store, which reaches past the 60-night window."""
    findings = []
    for finding in assessment.findings:
        earliest = store.first_seen(assessment.host, assessment.domain, finding.code)
        if earliest is not None and (finding.first_seen is None or earliest < finding.first_seen):
            finding = replace(finding, first_seen=earliest)
        findings.append(finding)
    return replace(assessment, findings=tuple(findings))
