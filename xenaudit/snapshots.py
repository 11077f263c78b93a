"""Where a run keeps the raw text it collected, so it can be replayed offline.

Layout under a run's `snapshots/` folder:

    snapshots/
      _hypervisor/<safe host>/host.json     backend, host name, collected_at
      _hypervisor/<safe host>/<raw files>   e.g. xl-list-l.json, xl-info.txt
      <safe domain>/meta.json               domain, host, status, error, times
      <safe domain>/<section>               one file per collected section

Domain and host names come from guests and hypervisors and are hostile, so
folder names are sanitised and the true names live in the JSON files.

A snapshots folder given to a replay may have been crafted: every file in it
is read with `read_snapshot_file` (a regular file, reached without following
a link below the folder, size-capped, never blocking on a FIFO) and every
JSON document with `load_json` (no NaN, bounded nesting), and names are
checked with `is_clean_text` before they are used.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from xenaudit.atomicwrite import UnsafePathError, open_folder, relative_parts

HYPERVISOR_DIR = "_hypervisor"
GUEST_META = "meta.json"
HOST_META = "host.json"
#: Longest domain or host name taken from a snapshot (Xen allows 64 bytes; libvirt more).
MAX_NAME_CHARS = 1024

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")


class SnapshotFileError(ValueError):
    """A file in a snapshots folder that cannot be used; the message says why (not where)."""


def safe_name(name: str, taken: set[str] | None = None) -> str:
    """A folder name for `name` that cannot escape its parent or clash with our own folders."""
    cleaned = _UNSAFE.sub("_", name)[:64].lstrip(".") or "unnamed"
    if cleaned.startswith("_"):
        cleaned = "d" + cleaned
    if taken is None:
        return cleaned
    candidate, n = cleaned, 2
    while candidate in taken:
        candidate = f"{cleaned}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def _real_folders(parent: Path) -> list[Path]:
    """Sub-folders of `parent` that are folders themselves, not links to one."""
    try:
        with os.scandir(parent) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def guest_dirs(snapshot_root: Path) -> list[Path]:
    """Every guest folder under a snapshots root, in a stable order."""
    return [p for p in _real_folders(snapshot_root) if os.path.lexists(p / GUEST_META)]


def host_dirs(snapshot_root: Path) -> list[Path]:
    base = snapshot_root / HYPERVISOR_DIR
    if os.path.islink(base):
        return []
    return [p for p in _real_folders(base) if os.path.lexists(p / HOST_META)]


def read_snapshot_file(path: Path, limit: int, root: Path | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, never read through a link.

    With `root`, no folder between `root` and `path` may be a link either.
    Raises SnapshotFileError (missing, a link, not a regular file, too large).
    """
    path = Path(path)
    try:
        parts = relative_parts(path, root) if root is not None else [path.name]
        if not parts:
            raise SnapshotFileError("not a file name")
        base = Path(root) if root is not None else path.parent
        *folders, name = parts
        with open_folder(base, folders, follow_root=True) as dir_fd:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise SnapshotFileError("missing") from None
    except UnsafePathError as exc:
        raise SnapshotFileError(exc.reason) from None
    except OSError as exc:
        # ELOOP is what O_NOFOLLOW gives for a symlink.
        reason = "is a symlink" if os.path.islink(path) else exc.strerror or str(exc)
        raise SnapshotFileError(f"cannot read: {reason}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SnapshotFileError("not a regular file")
        if info.st_size > limit:
            raise SnapshotFileError(f"larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise SnapshotFileError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise SnapshotFileError(f"larger than {limit} bytes")
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(data: bytes) -> Any:
    """A JSON document from a snapshot; SnapshotFileError for bad UTF-8, NaN or deep nesting."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise SnapshotFileError(f"not UTF-8: {exc.reason}") from None
    except RecursionError:
        raise SnapshotFileError("not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise SnapshotFileError(f"not valid JSON: {exc}") from None


def is_clean_text(value: Any, max_chars: int = MAX_NAME_CHARS) -> bool:
    """A string that can be written anywhere: a bounded length, UTF-8 encodable (no lone
    surrogate, which JSON's \\ud800 escapes can carry)."""
    if not isinstance(value, str) or len(value) > max_chars:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
