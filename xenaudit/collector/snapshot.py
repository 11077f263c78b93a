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
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from xenaudit.atomicwrite import open_folder, relative_parts, write_in
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
from xenaudit.snapshots import (
    GUEST_META,
    SnapshotFileError,
    guest_dirs,
    is_clean_text,
    load_json,
    read_snapshot_file,
    safe_name,
)

#: Largest meta.json we read; a real one is under 1 KiB.
MAX_META_BYTES = 64 * 1024
#: Largest section file we read; the collector's own cap defaults to 16 MiB.
MAX_SECTION_BYTES = 64 * 1024 * 1024
#: How far ahead of this machine's clock a snapshot's time may be (clock skew).
FUTURE_TOLERANCE = timedelta(hours=1)

_STATUSES = frozenset(get_args(CollectionStatus))
_SECTION_STATUSES = frozenset(get_args(SectionStatus))


def save_guest_snapshot(
    snap: GuestSnapshot, snapshot_root: Path, taken: set[str], root: Path | None = None
) -> Path:
    """Write one guest's snapshot under `snapshot_root` and return its folder.

    `taken` holds the folder names already used in this run, so two domains
    whose names sanitise alike get distinct folders. meta.json is written
    last (atomically), so a half-written folder is never taken for a snapshot.
    Nothing below `root` (the run's output folder; default `snapshot_root`)
    is written through a link.
    """
    folder = snapshot_root / safe_name(snap.domain, taken)
    base = Path(root) if root is not None else Path(snapshot_root)
    if root is None:
        base.mkdir(parents=True, exist_ok=True)
    parts = relative_parts(folder, base)
    with open_folder(base, parts, create=True, follow_root=root is None) as dir_fd:
        for name in SECTIONS:
            if name in snap.sections:
                data = snap.sections[name].encode("utf-8", "replace")
                write_in(dir_fd, name, data, durable=False)
            else:
                # Left over from an earlier run into the same folder: not part of this snapshot.
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    os.unlink(name, dir_fd=dir_fd)
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
        write_in(dir_fd, GUEST_META, text.encode("utf-8", "replace"), durable=False)
    return folder


def load_guest_snapshot(folder: Path, now: datetime | None = None) -> GuestSnapshot:
    """Read a snapshot folder back, checking everything; raises CollectorError.

    `now` is the run's time: a snapshot collected after it is refused.
    """
    meta = _read_meta(folder, now)
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

    def __init__(self, snapshot_root: Path, now: datetime | None = None) -> None:
        self.snapshot_root = Path(snapshot_root)
        self.now = now
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
                    meta = _read_meta(folder, self.now)
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
                snap = load_guest_snapshot(folder, self.now)
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


def _read_meta(folder: Path, now: datetime | None = None) -> dict[str, Any]:
    label = folder.name
    raw = _read_file(folder / GUEST_META, MAX_META_BYTES, label)
    try:
        meta = load_json(raw)
    except SnapshotFileError as exc:
        raise CollectorError(label, str(folder / GUEST_META), str(exc)) from None
    if not isinstance(meta, dict):
        raise CollectorError(label, str(folder / GUEST_META), "expected a JSON object")

    def fail(key: str, expected: str) -> CollectorError:
        shown = repr(meta.get(key))
        shown = shown if len(shown) <= 80 else shown[:80] + "..."
        return CollectorError(
            label, str(folder / GUEST_META), f"{key}: expected {expected}, got {shown}"
        )

    checks: Mapping[str, tuple[Callable[[Any], bool], str]] = {
        "domain": (lambda v: is_clean_text(v) and bool(v), "a non-empty UTF-8 name"),
        "host": (is_clean_text, "a UTF-8 name"),
        "status": (lambda v: v in _STATUSES, " or ".join(sorted(_STATUSES))),
        "collected_at": (_is_timestamp, "an ISO-8601 time"),
        "error": (
            lambda v: v is None or is_clean_text(v, MAX_META_BYTES),
            "a UTF-8 string or null",
        ),
        "section_status": (_is_section_status, "an object of section name -> status"),
        "kernlog_source": (
            lambda v: v is None or v in KERNLOG_SOURCES,
            " or ".join(sorted(KERNLOG_SOURCES)) + " or null",
        ),
        "host_key_fingerprint": (
            lambda v: v is None or is_clean_text(v, 200),
            "a short string or null",
        ),
    }
    for key, (ok, expected) in checks.items():
        if key not in meta:
            raise CollectorError(label, str(folder / GUEST_META), f"{key}: missing")
        if not ok(meta[key]):
            raise fail(key, expected)
    when = _timestamp(meta["collected_at"])
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    if when > latest:
        raise CollectorError(
            label,
            str(folder / GUEST_META),
            f"collected_at {meta['collected_at']} is in the future; a snapshot from "
            "tomorrow would file its night ahead of every real one",
        )
    return meta


def _timestamp(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        _timestamp(value)
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
        return read_snapshot_file(path, limit)
    except SnapshotFileError as exc:
        raise CollectorError(label, str(path), str(exc)) from None
