"""Save guest snapshots to disk and replay them as a collector.

A run saves what it read so that the same audit can be replayed offline, in
tests, in the demo, or by a colleague who has no access to the guests.
Snapshot folders are as hostile as the guests that produced them (and may
come from another machine), so loading checks every field of meta.json,
refuses symlinks and oversized files, and reports any problem as a
`CollectorError` that names the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from xenaudit.collector.interface import (
    SECTIONS,
    CollectionStatus,
    CollectorError,
    GuestCollector,
    GuestSnapshot,
    GuestTarget,
    SectionStatus,
)
from xenaudit.collector.stream import KERNLOG_SOURCES
from xenaudit.snapshots import GUEST_META, guest_dirs, safe_name

#: Largest meta.json we read; a real one is under 1 KiB.
MAX_META_BYTES = 64 * 1024
#: Largest section file we read; the collector's own cap defaults to 16 MiB.
MAX_SECTION_BYTES = 64 * 1024 * 1024

_STATUSES = frozenset(get_args(CollectionStatus))
_SECTION_STATUSES = frozenset(get_args(SectionStatus))


def save_guest_snapshot(snap: GuestSnapshot, snapshot_root: Path, taken: set[str]) -> Path:
    """Write one guest's snapshot under `snapshot_root` and return its folder.

    `taken` holds the folder names already used in this run, so two domains
    whose names sanitise alike get distinct folders. meta.json is written
    last (atomically), so a half-written folder is never taken for a snapshot.
    """
    folder = snapshot_root / safe_name(snap.domain, taken)
    folder.mkdir(parents=True, exist_ok=True)
    for name in SECTIONS:
        path = folder / name
        if name in snap.sections:
            _write_atomic(path, snap.sections[name].encode("utf-8", "replace"))
        elif path.is_file() or path.is_symlink():
            # Left over from an earlier run into the same folder: not part of this snapshot.
            path.unlink()
    meta = {
        "domain": snap.domain,
        "host": snap.host,
        "status": snap.status,
        "collected_at": snap.collected_at,
        "error": snap.error,
        "section_status": dict(snap.section_status),
        "kernlog_source": snap.kernlog_source,
        "host_key_fingerprint": snap.host_key_fingerprint,
    }
    text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    _write_atomic(folder / GUEST_META, text.encode("utf-8", "replace"))
    return folder


def load_guest_snapshot(folder: Path) -> GuestSnapshot:
    """Read a snapshot folder back, checking everything; raises CollectorError."""
    meta = _read_meta(folder)
    domain = meta["domain"]
    sections: dict[str, str] = {}
    for name in SECTIONS:
        path = folder / name
        if not os.path.lexists(path):
            continue
        data = _read_file(path, MAX_SECTION_BYTES, domain)
        sections[name] = data.decode("utf-8", "replace")
    return GuestSnapshot(
        domain=domain,
        host=meta["host"],
        status=meta["status"],
        collected_at=meta["collected_at"],
        error=meta["error"],
        sections=sections,
        section_status=meta["section_status"],
        kernlog_source=meta["kernlog_source"],
        host_key_fingerprint=meta["host_key_fingerprint"],
    )


class SnapshotCollector(GuestCollector):
    """Replays saved snapshots for the targets asked, matching by host and domain.

    A snapshot recorded under another host name still matches by domain when
    exactly one folder has that domain (a replay under a renamed Dom0); the
    returned snapshot then carries the target's host.
    """

    def __init__(self, snapshot_root: Path) -> None:
        self.snapshot_root = Path(snapshot_root)
        self._index: list[tuple[Path, str | None, str | None, str | None]] | None = None

    def collect(
        self,
        targets: Iterable[GuestTarget],
        on_done: Callable[[GuestSnapshot], None] | None = None,
    ) -> Iterator[GuestSnapshot]:
        index = self._load_index()
        for target in targets:
            snap = self._replay(target, index)
            if on_done is not None:
                on_done(snap)
            yield snap
            del snap  # the consumer may drop a big kernel log; do not keep it alive here

    def _load_index(self) -> list[tuple[Path, str | None, str | None, str | None]]:
        """(folder, domain, host, error) for every guest folder; meta only, sections later."""
        if self._index is None:
            index: list[tuple[Path, str | None, str | None, str | None]] = []
            for folder in guest_dirs(self.snapshot_root):
                try:
                    meta = _read_meta(folder)
                except CollectorError as exc:
                    index.append((folder, None, None, str(exc)))
                    continue
                index.append((folder, meta["domain"], meta["host"], None))
            self._index = index
        return self._index

    def _replay(
        self, target: GuestTarget, index: list[tuple[Path, str | None, str | None, str | None]]
    ) -> GuestSnapshot:
        exact = [e for e in index if e[1] == target.domain and e[2] == target.host]
        by_domain = [e for e in index if e[1] == target.domain]
        # A folder whose meta.json is broken can still be recognised by its name.
        broken = [e for e in index if e[1] is None and e[0].name == safe_name(target.domain)]
        chosen = exact[0] if exact else by_domain[0] if len(by_domain) == 1 else None
        if chosen is None and broken:
            chosen = broken[0]
        if chosen is None:
            return _missing(target, f"no snapshot for {target.domain}")
        folder, _, _, error = chosen
        if error is None:
            try:
                snap = load_guest_snapshot(folder)
            except CollectorError as exc:
                error = str(exc)
            else:
                return GuestSnapshot(
                    domain=target.domain,
                    host=target.host,
                    status=snap.status,
                    collected_at=snap.collected_at,
                    error=snap.error,
                    sections=snap.sections,
                    section_status=snap.section_status,
                    kernlog_source=snap.kernlog_source,
                    host_key_fingerprint=snap.host_key_fingerprint,
                )
        return _missing(target, f"snapshot unreadable: {error}")


def _missing(target: GuestTarget, message: str) -> GuestSnapshot:
    return GuestSnapshot(
        domain=target.domain,
        host=target.host,
        status="unreachable",
        collected_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        error=message,
    )


# --- reading and checking -------------------------------------------------------------


def _read_meta(folder: Path) -> dict[str, Any]:
    label = folder.name
    raw = _read_file(folder / GUEST_META, MAX_META_BYTES, label)
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CollectorError(label, str(folder / GUEST_META), f"not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise CollectorError(label, str(folder / GUEST_META), "expected a JSON object")

    def fail(key: str, expected: str) -> CollectorError:
        return CollectorError(
            label, str(folder / GUEST_META), f"{key}: expected {expected}, got {meta.get(key)!r}"
        )

    checks: Mapping[str, tuple[Callable[[Any], bool], str]] = {
        "domain": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
        "host": (lambda v: isinstance(v, str), "a string"),
        "status": (lambda v: v in _STATUSES, " or ".join(sorted(_STATUSES))),
        "collected_at": (_is_timestamp, "an ISO-8601 time"),
        "error": (lambda v: v is None or isinstance(v, str), "a string or null"),
        "section_status": (_is_section_status, "an object of section name -> status"),
        "kernlog_source": (
            lambda v: v is None or v in KERNLOG_SOURCES,
            " or ".join(sorted(KERNLOG_SOURCES)) + " or null",
        ),
        "host_key_fingerprint": (lambda v: v is None or isinstance(v, str), "a string or null"),
    }
    for key, (ok, expected) in checks.items():
        if key not in meta:
            raise CollectorError(label, str(folder / GUEST_META), f"{key}: missing")
        if not ok(meta[key]):
            raise fail(key, expected)
    return meta


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_section_status(value: Any) -> bool:
    return isinstance(value, dict) and all(
        k in SECTIONS and v in _SECTION_STATUSES for k, v in value.items()
    )


def _read_file(path: Path, limit: int, label: str) -> bytes:
    """Read a regular file (never through a symlink) of at most `limit` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise CollectorError(label, str(path), "missing") from None
    except OSError as exc:
        # ELOOP is what O_NOFOLLOW gives for a symlink.
        reason = "is a symlink" if os.path.islink(path) else exc.strerror or str(exc)
        raise CollectorError(label, str(path), f"cannot read: {reason}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CollectorError(label, str(path), "not a regular file")
        if info.st_size > limit:
            raise CollectorError(label, str(path), f"larger than {limit} bytes")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise CollectorError(label, str(path), f"larger than {limit} bytes")
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
