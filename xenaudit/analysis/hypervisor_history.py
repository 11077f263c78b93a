"""The hypervisor-side nights: one row per domain per run, in the state directory.

A file of its own (hypervisor-nights.sqlite3 beside the guest history), with
the same rules as the guest history: a file that is not ours, or is damaged,
or was written by a newer xenaudit, raises and is left byte-for-byte
untouched; overlapping runs are safe (WAL, busy timeout, one transaction per
run); a row for the same host, domain and night replaces the earlier one, so
replaying a run never counts a night twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

from xenaudit.analysis.hypervisor_nights import HypervisorNight

FILE_NAME = "hypervisor-nights.sqlite3"
SCHEMA_VERSION = 1
#: Tells this file from any other SQLite file ("XAHV").
APPLICATION_ID = 0x58414856
BUSY_TIMEOUT_S = 30.0
DEFAULT_LIMIT = 60

_COLUMNS = (
    "run_at",
    "domid",
    "state",
    "target_kib",
    "held_kib",
    "tools_total_kib",
    "tools_free_kib",
    "tools_source",
    "feature_balloon",
    "pod_events",
    "crash_events",
    "finding_codes",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS nights (
    host TEXT NOT NULL,
    domain TEXT NOT NULL,
    run_at TEXT NOT NULL,
    domid INTEGER,
    state TEXT NOT NULL,
    target_kib INTEGER,
    held_kib INTEGER,
    tools_total_kib INTEGER,
    tools_free_kib INTEGER,
    tools_source TEXT,
    feature_balloon INTEGER,
    pod_events INTEGER NOT NULL,
    crash_events INTEGER NOT NULL,
    finding_codes TEXT NOT NULL,
    PRIMARY KEY (host, domain, run_at)
) WITHOUT ROWID;
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

#: (host, domain, night) to record.
Row = tuple[str, str, HypervisorNight]


class HypervisorHistoryError(Exception):
    """The store cannot be used. Names the file and what is wrong with it."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _night(row: Sequence[object], path: Path) -> HypervisorNight:
    try:
        codes = json.loads(str(row[11]))
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise ValueError("finding_codes is not a list of strings")
    except ValueError as exc:
        raise HypervisorHistoryError(path, f"bad row of {row[0]}: {exc}") from None
    balloon = row[8]
    return HypervisorNight(
        run_at=str(row[0]),
        domid=_int(row[1]),
        state=str(row[2]),
        target_kib=_int(row[3]),
        held_kib=_int(row[4]),
        tools_total_kib=_int(row[5]),
        tools_free_kib=_int(row[6]),
        tools_source=str(row[7]) if row[7] is not None else None,
        feature_balloon=None if balloon is None else bool(balloon),
        pod_events=_int(row[9]) or 0,
        crash_events=_int(row[10]) or 0,
        finding_codes=tuple(codes),
    )


class HypervisorHistory:
    """The hypervisor-side nights of one state directory. Use `HypervisorHistory.open`."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def open(cls, state_dir: Path | str) -> HypervisorHistory:
        directory = Path(state_dir)
        path = directory / FILE_NAME
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise HypervisorHistoryError(path, f"cannot create: {exc}") from None
        try:
            connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
            )
        except sqlite3.Error as exc:
            raise HypervisorHistoryError(path, f"cannot open: {exc}") from None
        store = cls(path, connection)
        try:
            store._prepare()
        except BaseException:
            connection.close()
            raise
        return store

    def _prepare(self) -> None:
        db = self._db
        try:
            application = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise HypervisorHistoryError(
                self.path, f"not a readable database ({exc}); left untouched"
            ) from None
        fresh = application == 0 and version == 0 and not tables
        if not fresh and application != APPLICATION_ID:
            raise HypervisorHistoryError(
                self.path, "not xenaudit's hypervisor-side history; left untouched"
            )
        if version > SCHEMA_VERSION:
            raise HypervisorHistoryError(
                self.path,
                f"written by a newer xenaudit (schema {version}); left untouched, upgrade xenaudit",
            )
        if not fresh:
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise HypervisorHistoryError(
                    self.path, f"damaged ({'; '.join(problems[:3])}); left untouched"
                )
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                db.execute("PRAGMA journal_mode = DELETE")
            if fresh:
                db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        except sqlite3.DatabaseError as exc:
            raise HypervisorHistoryError(self.path, f"cannot prepare: {exc}") from None

    def nights(
        self, host: str, domain: str, limit: int = DEFAULT_LIMIT
    ) -> tuple[HypervisorNight, ...]:
        """The latest `limit` nights of one domain, oldest first."""
        try:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM nights WHERE host = ? AND domain = ? "
                "ORDER BY run_at DESC LIMIT ?",
                (host, domain, max(limit, 0)),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise HypervisorHistoryError(self.path, f"cannot read {host}/{domain}: {exc}") from None
        return tuple(_night(row, self.path) for row in reversed(rows))

    def record_run(self, run_at: str, rows: Iterable[Row]) -> None:
        """Record a run in one transaction, each row under `run_at`; a repeat replaces."""
        values = [
            (
                host,
                domain,
                run_at,
                n.domid,
                n.state,
                n.target_kib,
                n.held_kib,
                n.tools_total_kib,
                n.tools_free_kib,
                n.tools_source,
                None if n.feature_balloon is None else int(n.feature_balloon),
                n.pod_events,
                n.crash_events,
                json.dumps(sorted(set(n.finding_codes))),
            )
            for host, domain, n in rows
        ]
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    f"INSERT OR REPLACE INTO nights (host, domain, {', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})",
                    values,
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise HypervisorHistoryError(self.path, f"cannot record run {run_at}: {exc}") from None

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM nights").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HypervisorHistory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
