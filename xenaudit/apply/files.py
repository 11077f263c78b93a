"""Replacing a root-owned cfg so that nothing is ever lost or torn.

`xl create` may read a cfg at any moment and a power cut may come at any
moment, so the new bytes go to a temporary file in the same directory, are
flushed, get the old file's owner, mode and extended attributes (ACLs,
SELinux label), and only then are renamed over the cfg; the directory is
flushed last so the rename itself survives a crash. Every operation goes
through one descriptor of the cfg's directory, opened without following
symlinks, so the file checked is the file written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

#: An xl.cfg is a few KiB; reading stops well before a huge file could hurt.
MAX_CFG_BYTES = 4 * 1024 * 1024

_TMP_MARK = ".xenaudit-"
_TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Ownership:
    uid: int
    gid: int
    mode: int
    xattrs: Mapping[str, bytes]


@contextlib.contextmanager
def directory(path: Path) -> Iterator[int]:
    """A descriptor of `path`, which must be a real directory (not a symlink to one)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def read_regular(
    dir_fd: int, name: str, limit: int = MAX_CFG_BYTES
) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file in the directory, refusing symlinks, devices and huge files."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{name} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise OSError(f"{name} is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks), info
    finally:
        os.close(fd)


def ownership_of(dir_fd: int, name: str) -> Ownership:
    """Owner, mode and extended attributes of a file, to give its replacement."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        return Ownership(
            uid=info.st_uid,
            gid=info.st_gid,
            mode=stat.S_IMODE(info.st_mode),
            xattrs=_read_xattrs(fd),
        )
    finally:
        os.close(fd)


def _read_xattrs(fd: int) -> dict[str, bytes]:
    values: dict[str, bytes] = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        return values
    for name in names:
        with contextlib.suppress(OSError):
            values[name] = os.getxattr(fd, name)
    return values


def _write_temp(dir_fd: int, name: str, data: bytes, owner: Ownership) -> str:
    """A flushed temporary file beside `name` holding `data`, owned and moded like `owner`."""
    tmp = f".{name}{_TMP_MARK}{secrets.token_hex(6)}{_TMP_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        info = os.fstat(fd)
        if (info.st_uid, info.st_gid) != (owner.uid, owner.gid):
            try:
                os.fchown(fd, owner.uid, owner.gid)
            except PermissionError as exc:
                raise PermissionError(
                    exc.errno,
                    f"cannot keep owner {owner.uid}:{owner.gid} (run as root)",
                ) from exc
        os.fchmod(fd, owner.mode)
        for key, value in owner.xattrs.items():
            # A label or ACL the filesystem will not take is not worth losing the edit.
            with contextlib.suppress(OSError):
                os.setxattr(fd, key, value)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    return tmp


def fsync_directory(dir_fd: int) -> None:
    """Make renames durable; some filesystems refuse to fsync a directory, which is fine."""
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)


def replace(dir_fd: int, name: str, data: bytes, owner: Ownership) -> None:
    """Atomically make `name` hold `data`: a reader sees the old file or the new, never half."""
    tmp = _write_temp(dir_fd, name, data, owner)
    try:
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    fsync_directory(dir_fd)


def backup_name(name: str, stamp: str, attempt: int) -> str:
    suffix = "" if attempt == 1 else f"-{attempt}"
    return f"{name}.xenaudit-{stamp}{suffix}.bak"


def create_backup(dir_fd: int, name: str, data: bytes, owner: Ownership, stamp: str) -> str:
    """Keep `data` beside `name` as NAME.xenaudit-STAMP.bak, never overwriting an older backup.

    The backup is complete before it gets its name (written, flushed, then
    hard-linked into place), so a crash never leaves a half backup behind.
    """
    tmp = _write_temp(dir_fd, name, data, owner)
    try:
        for attempt in range(1, 1000):
            candidate = backup_name(name, stamp, attempt)
            try:
                os.link(tmp, candidate, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except FileExistsError:
                continue
            fsync_directory(dir_fd)
            return candidate
        raise FileExistsError(f"too many backups of {name} at {stamp}")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)


def remove_leftovers(dir_fd: int, name: str) -> list[str]:
    """Remove temporary files an interrupted apply left beside `name` (run under the apply lock)."""
    prefix = f".{name}{_TMP_MARK}"
    removed = []
    for entry in os.listdir(dir_fd):
        if entry.startswith(prefix) and entry.endswith(_TMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                info = os.lstat(entry, dir_fd=dir_fd)
                if stat.S_ISREG(info.st_mode):
                    os.unlink(entry, dir_fd=dir_fd)
                    removed.append(entry)
    return removed
