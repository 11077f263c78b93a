"""The action log: one JSON line per thing apply did, the record `--undo` works from.

Each cfg change is logged twice: a "started" line once its backup exists and
before the cfg is replaced, and a final line with the result. A crash in
between still leaves the backup findable, and `--undo` decides from the
file's hash whether the new content ever landed. The log is append-only,
fsynced per line, and read back tolerantly (a torn last line from a crash is
skipped, not fatal). A lock file in the same directory keeps two applies
from interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_FILE = "apply-log.jsonl"
LOCK_FILE = "apply.lock"
MAX_LOG_BYTES = 256 * 1024 * 1024


class LogBusy(Exception):
    """Another apply holds the lock."""


def who() -> dict[str, Any]:
    """The person behind this run: the login name, and the sudo caller when there is one."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"user": user, "sudo_user": os.environ.get("SUDO_USER"), "uid": os.getuid()}


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LogRead:
    records: tuple[dict[str, Any], ...]
    #: Lines that could not be read (e.g. torn by a crash), as "LOG:LINE: why".
    skipped: tuple[str, ...]


class ActionLog:
    """The state directory's log, held under an exclusive lock while a run uses it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOG_FILE
        self._lock_fd: int | None = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[ActionLog]:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.state_dir / LOCK_FILE, flags, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise LogBusy(f"another xenaudit apply holds {self.state_dir / LOCK_FILE}") from exc
            self._lock_fd = fd
            yield self
        finally:
            self._lock_fd = None
            os.close(fd)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=True, sort_keys=True, allow_nan=False) + "\n"
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o600)
        try:
            data = line.encode("ascii")
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A line torn by a crash: start on a fresh line, or this one is lost too.
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> LogRead:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return LogRead((), ())
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_LOG_BYTES + 1)
        skipped: list[str] = []
        if len(data) > MAX_LOG_BYTES:
            skipped.append(f"{self.path}: larger than {MAX_LOG_BYTES} bytes; read the start only")
        records: list[dict[str, Any]] = []
        for number, raw in enumerate(data[:MAX_LOG_BYTES].split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                skipped.append(f"{self.path}:{number}: not a JSON line (torn by a crash?)")
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                skipped.append(f"{self.path}:{number}: not a JSON object")
        return LogRead(tuple(records), tuple(skipped))
