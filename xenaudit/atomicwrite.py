"""Write outputs so that a reader never sees half a file and no link redirects a write.

Reports are read while they are being rewritten: node_exporter scrapes the
Prometheus file at any moment, a browser may have last night's report open,
and `apply` rewrites /etc/xen/*.cfg that `xl create` may read. A crash or a
full disk half-way through must leave the old file whole, so every write goes
to a temporary file in the same directory (same filesystem, so the rename is
atomic), is flushed to disk, and only then renamed over the target.

xenaudit runs as root, and an output folder may hold links planted by
whoever could write there before (or by a crafted snapshot folder replayed in
place). So below an output folder (`root`) nothing is reached through a
symlink: each folder is opened with O_NOFOLLOW from the one above it, and
the final name is only ever created new (O_EXCL) and renamed into place,
which replaces a link instead of writing where it points. A path that would
leave `root` is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

_DEFAULT_FILE_MODE = 0o666
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
#: Longest single file name Linux file systems take.
MAX_NAME_BYTES = 255


class UnsafePathError(OSError):
    """A path xenaudit will not write or read: it leaves its folder, or crosses a link."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(errno.EPERM, reason, str(path))
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.filename}: {self.reason}"


class OutputFolderError(ValueError):
    """An output folder a run refuses to write into. The message says why."""


def _current_umask() -> int:
    """The process umask, read without changing it where Linux allows (thread safety)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def relative_parts(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> list[str]:
    """The components of `path` below `root` (or of a relative `path`); refuses any escape.

    Only plain names pass: no absolute path below the root, no `..`, no NUL and
    no name longer than a file system takes.
    """
    if root is not None:
        given, base = PurePosixPath(os.fspath(path)), PurePosixPath(os.fspath(root))
        try:
            rel = given.relative_to(base)
        except ValueError:
            raise UnsafePathError(path, f"leaves the folder {root}") from None
    else:
        rel = PurePosixPath(os.fspath(path))
    if rel.is_absolute():
        raise UnsafePathError(path, "is an absolute path")
    parts = [p for p in rel.parts if p != "."]
    for part in parts:
        if part == ".." or "\0" in part:
            raise UnsafePathError(path, "leaves its folder (..) or holds a NUL")
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise UnsafePathError(path, f"has a name longer than {MAX_NAME_BYTES} bytes")
    return parts


def _open_child(parent_fd: int, name: str, where: Path, create: bool, dir_mode: int) -> int:
    """A descriptor of the folder `name` in `parent_fd`, never through a link."""
    for attempt in (1, 2):
        try:
            return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create or attempt == 2:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, dir_mode, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePathError(where, "is a symlink or not a folder") from None
            raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def open_folder(
    root: str | os.PathLike[str],
    parts: Sequence[str] = (),
    *,
    create: bool = False,
    follow_root: bool = False,
    dir_mode: int = 0o777,
) -> Iterator[int]:
    """A descriptor of root/parts..., reached without following a link at or below `root`.

    `follow_root` lets `root` itself be a link (a folder the caller chose, not
    one found in an output). Missing folders are made when `create` is set.
    """
    root_path = Path(root)
    flags = _DIR_FLAGS if follow_root else _DIR_FLAGS | os.O_NOFOLLOW
    try:
        fd = os.open(root_path, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(root_path, "is a symlink or not a folder") from None
        raise
    try:
        where = root_path
        for part in parts:
            where = where / part
            child = _open_child(fd, part, where, create, dir_mode)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _target_mode(dir_fd: int, name: str, mode: int | None) -> int:
    """Explicit mode, else the mode of the regular file being replaced, else what open() gives."""
    if mode is not None:
        return mode
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISREG(info.st_mode):
        return stat.S_IMODE(info.st_mode)
    return _DEFAULT_FILE_MODE & ~_current_umask()


def _write_new(dir_fd: int, name: str, data: bytes, mode: int, durable: bool = True) -> str:
    """A temporary file beside `name`, created new (flushed to disk when `durable`)."""
    tmp = f".{name[:200]}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    return tmp


def write_in(
    dir_fd: int, name: str, data: bytes, mode: int | None = None, *, durable: bool = True
) -> None:
    """Atomically make `name` in the folder `dir_fd` hold `data` (a link there is replaced).

    `durable` flushes the file and the rename to disk; raw snapshots, many
    small files a crash would only cost a replay of, skip that.
    """
    relative_parts(name)
    if "/" in name or name in ("", ".", ".."):
        raise UnsafePathError(name, "is not a plain file name")
    tmp = _write_new(dir_fd, name, data, _target_mode(dir_fd, name, mode), durable)
    try:
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    if durable:
        with contextlib.suppress(OSError):
            # Make the rename itself durable; some filesystems refuse to fsync directories.
            os.fsync(dir_fd)


def atomic_write_bytes(
    path: str | os.PathLike[str],
    data: bytes,
    mode: int | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    durable: bool = True,
) -> None:
    """Write `data` to `path` so that readers see either the old file or the new one.

    With `root` (an output folder), `path` must lie below it and every folder
    between them is entered without following links (missing ones are made).
    Without it, only `path`'s own folder is opened, as given.

    `mode` defaults to the replaced file's mode, or 0o666 minus the umask for a
    new file (mkstemp alone would make every report 0600).
    """
    path = Path(path)
    if root is None:
        base, parts = path.parent, []
    else:
        *parts, _ = relative_parts(path, root) or [""]
        base = Path(root)
    name = path.name
    with open_folder(base, parts, create=root is not None, follow_root=root is None) as dir_fd:
        write_in(dir_fd, name, data, mode, durable=durable)


def atomic_write_text(
    path: str | os.PathLike[str],
    text: str,
    mode: int | None = None,
    encoding: str = "utf-8",
    *,
    root: str | os.PathLike[str] | None = None,
) -> None:
    """Text flavour of `atomic_write_bytes`; newlines are written exactly as given."""
    atomic_write_bytes(path, text.encode(encoding), mode, root=root)


def make_folders(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Make `path` (below `root`) and the folders above it, never through a link."""
    with open_folder(root, relative_parts(path, root), create=True):
        pass


def remove_in(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Remove the file (or link) `path` below `root` if it is there, never through a link."""
    *parts, name = relative_parts(path, root)
    try:
        with open_folder(root, parts) as dir_fd:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def prepare_output_folder(path: str | os.PathLike[str], force: bool = False) -> None:
    """Make a run's output folder, or check an existing one may be written into.

    An existing folder must be a real folder (never a link, even with
    `force`), owned by the user running xenaudit and empty: someone else's
    folder, or one holding files, may hold links placed to redirect root's
    writes. `force` accepts a non-empty or foreign folder; the writes below
    it still never follow a link. Raises OutputFolderError.
    """
    folder = Path(path)
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise OutputFolderError(f"{folder}: cannot check: {exc.strerror}") from None
    if info is None:
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(folder, 0o777)
        except FileExistsError:
            # Made by someone else between the check and now: check it like any other.
            return prepare_output_folder(folder, force)
        except OSError as exc:
            raise OutputFolderError(f"{folder}: cannot create: {exc.strerror}") from None
        return None
    if stat.S_ISLNK(info.st_mode):
        raise OutputFolderError(
            f"{folder} is a symbolic link; give the folder itself (xenaudit never writes "
            "through links)"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise OutputFolderError(f"{folder} exists and is not a folder")
    if force:
        return None
    if info.st_uid != os.geteuid():
        raise OutputFolderError(
            f"{folder} belongs to uid {info.st_uid}, not to the user running xenaudit; "
            "give a new folder (or --force)"
        )
    try:
        with os.scandir(folder) as entries:
            busy = next(iter(entries), None) is not None
    except OSError as exc:
        raise OutputFolderError(f"{folder}: cannot list: {exc.strerror}") from None
    if busy:
        raise OutputFolderError(
            f"{folder} is not empty; give a new folder (or --force to write into it)"
        )
    return None


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces `path` only when the block ends cleanly.

    For outputs written piece by piece (a fleet report streamed from many
    inputs) that should not be held in memory whole. Same guarantees as
    `atomic_write_bytes` without `root`: the temporary file is created new
    beside `path` and renamed over it, so a link at `path` is replaced, not
    followed.
    """
    path = Path(path)
    name = path.name
    if "/" in name or name in ("", ".", ".."):
        raise UnsafePathError(path, "is not a plain file name")
    with open_folder(path.parent, follow_root=True) as dir_fd:
        final_mode = _target_mode(dir_fd, name, mode)
        tmp = f".{name[:200]}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fchmod(handle.fileno(), final_mode)
                os.fsync(handle.fileno())
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
