"""The hypervisor-side nights: one row per domain per run, in the state directory.

A file of its own (hypervisor-nights.sqlite3 beside the guest history), opened,
checked and locked like the guest history (sqlite_store.py): a file that is
not ours (its application id says so), or is damaged, or was written by a
newer xenaudit, raises and is left byte-for-byte untouched; overlapping runs
are safe. A row for the same host, domain and night replaces the earlier
one, so replaying a run never counts a night twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from xenaudit.analysis.hypervisor_nights import HypervisorNight
from xenaudit.analysis.sqlite_store import SqliteStore, StoreError

FILE_NAME = "hypervisor-nights.sqlite3"
SCHEMA_VERSION = 1
#: Tells this file from any other SQLite file ("XAHV").
APPLICATION_ID = 0x58414856
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
_SCHEMA = """
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
) WITHOUT ROWID
"""

#: (host, domain, night) to record.
Row = tuple[str, str, HypervisorNight]


class HypervisorHistoryError(StoreError):
    """The store cannot be used. Names the file and what is wrong with it."""


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


class HypervisorHistory(SqliteStore):
    """The hypervisor-side nights of one state directory. Use `HypervisorHistory.open`."""

    FILE_NAME = FILE_NAME
    KIND = "hypervisor-side history"
    Error = HypervisorHistoryError

    @classmethod
    def open(cls, state_dir: Path | str) -> HypervisorHistory:
        path, connection = cls._connect(state_dir)
        return cls(path, connection)._prepared()

    def _prepare(self) -> None:
        application, version, tables = self._header()
        fresh = application == 0 and version == 0 and not tables
        if not fresh and application != APPLICATION_ID:
            raise HypervisorHistoryError(
                self.path, "not xenaudit's hypervisor-side history; left untouched"
            )
        self._refuse_newer(version, SCHEMA_VERSION)
        if not fresh:
            self._check_integrity()
        with self._failing_as(f"prepare the {self.KIND} database"):
            self._set_journal()
            if fresh:
                with self._transaction() as db:
                    db.execute(_SCHEMA)
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def nights(
        self, host: str, domain: str, limit: int = DEFAULT_LIMIT
    ) -> tuple[HypervisorNight, ...]:
        """The latest `limit` nights of one domain, oldest first."""
        with self._failing_as(f"read {host}/{domain}"):
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM nights WHERE host = ? AND domain = ? "
                "ORDER BY run_at DESC LIMIT ?",
                (host, domain, max(limit, 0)),
            ).fetchall()
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
        with self._failing_as(f"record run {run_at}"), self._transaction() as db:
            db.executemany(
                f"INSERT OR REPLACE INTO nights (host, domain, {', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})",
                values,
            )
