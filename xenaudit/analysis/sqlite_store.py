"""What the two history stores share: a private SQLite file that is ours or is left alone.

The guest history (history.py) and the hypervisor-side nights
(hypervisor_history.py) keep different rows in different files, but open,
check, lock and fail the same way:

* the state directory and the file are created private (0700, 0600): sqlite
  itself would follow the umask;
* a file that cannot be read as a database, is damaged, or was written by a
  newer xenaudit raises the store's error naming the file, and is left
  byte-for-byte untouched (each store also says what makes a file not ours);
* overlapping runs are safe: WAL journal (the rollback journal where the file
  system has no shared memory), a busy timeout, and one `BEGIN IMMEDIATE`
  transaction per write, rolled back on any error;
* every SQLite error becomes the store's own error, naming the file and what
  it was doing.
"""

from __future__ import annotations

import os
import sqlite3
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

BUSY_TIMEOUT_S = 30.0


class StoreError(Exception):
    """The store cannot be used. Names the file and what is wrong with it."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


class SqliteStore:
    """One SQLite file in a state directory, its rows in a table `nights`; subclasses say
    its name, schema and error."""

    FILE_NAME: ClassVar[str]
    #: What the store is, in messages ("history", "hypervisor-side history").
    KIND: ClassVar[str]
    Error: ClassVar[type[StoreError]]
    #: `PRAGMA synchronous` to use, or None for SQLite's default.
    SYNCHRONOUS: ClassVar[str | None] = None

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    # --- opening ---------------------------------------------------------------

    @classmethod
    def _connect(cls, state_dir: Path | str) -> tuple[Path, sqlite3.Connection]:
        """The store's file in `state_dir`, created private when missing, opened read-write."""
        directory = Path(state_dir)
        path = directory / cls.FILE_NAME
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise cls.Error(directory, f"cannot create the state directory: {exc}") from None
        if not path.exists():
            try:
                # An empty file is a valid empty database.
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
            except OSError as exc:
                raise cls.Error(path, f"cannot create: {exc}") from None
        try:
            connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
            )
        except sqlite3.Error as exc:
            raise cls.Error(path, f"cannot open: {exc}") from None
        return path, connection

    def _prepared(self) -> Self:
        """The store after `_prepare`; the connection is closed when that fails."""
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise
        return self

    @abstractmethod
    def _prepare(self) -> None:
        """Refuse a file that is not ours before writing a byte, then make it current."""

    def _header(self) -> tuple[int, int, set[str]]:
        """(application_id, user_version, table names): a file that is no database raises."""
        db = self._db
        try:
            application = int(db.execute("PRAGMA application_id").fetchone()[0])
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise self.Error(
                self.path, f"not a readable {self.KIND} database ({exc}); left untouched"
            ) from None
        return application, version, tables

    def _refuse_newer(self, version: int, known: int) -> None:
        if version > known:
            raise self.Error(
                self.path,
                f"written by a newer xenaudit (schema {version}, this one knows {known}); "
                "left untouched, upgrade xenaudit to use it",
            )

    def _check_integrity(self) -> None:
        try:
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise self.Error(self.path, f"damaged ({'; '.join(problems[:3])}); left untouched")

    def _set_journal(self) -> None:
        """Busy timeout and journal mode (call inside `_failing_as`)."""
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            # WAL needs shared memory (not on some network file systems);
            # the rollback journal with a busy timeout is safe, only slower.
            db.execute("PRAGMA journal_mode = DELETE")
        if self.SYNCHRONOUS is not None:
            db.execute(f"PRAGMA synchronous = {self.SYNCHRONOUS}")

    # --- errors and transactions ---------------------------------------------------

    @contextmanager
    def _failing_as(self, doing: str) -> Iterator[None]:
        """SQLite errors inside become the store's error: "cannot {doing}: ..."."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise self.Error(self.path, f"cannot {doing}: {exc}") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it or nothing (rolled back on any exception)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # --- lifetime ------------------------------------------------------------------

    def count(self) -> int:
        """Rows in the store."""
        return int(self._db.execute("SELECT count(*) FROM nights").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
