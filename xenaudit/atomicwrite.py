"""Replace files so that a reader never sees half of one.

Reports are read while they are being rewritten: node_exporter scrapes the
Prometheus file at any moment, a browser may have last night's report open,
and `apply` rewrites /etc/xen/*.cfg that `xl create` may read. A crash or a
full disk half-way through must leave the old file whole, so every write goes
to a temporary file in the same directory (same filesystem, so the rename is
atomic), is flushed to disk, and only then renamed over the target.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_DEFAULT_FILE_MODE = 0o666


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


def _target_mode(path: Path, mode: int | None) -> int:
    """Explicit mode, else the mode of the file being replaced, else what open() would give."""
    if mode is not None:
        return mode
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return _DEFAULT_FILE_MODE & ~_current_umask()


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; some filesystems refuse to fsync directories."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` so that readers see either the old file or the new one.

    `mode` defaults to the replaced file's mode, or 0o666 minus the umask for a
    new file (mkstemp alone would make every report 0600).
    """
    path = Path(path)
    directory = path.parent
    final_mode = _target_mode(path, mode)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), final_mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(directory)


def atomic_write_text(
    path: Path, text: str, mode: int | None = None, encoding: str = "utf-8"
) -> None:
    """Text flavour of `atomic_write_bytes`; newlines are written exactly as given."""
    atomic_write_bytes(path, text.encode(encoding), mode)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces `path` only when the block ends cleanly.

    For outputs written piece by piece (a fleet report streamed from many
    inputs) that should not be held in memory whole; same guarantees as
    `atomic_write_bytes`.
    """
    path = Path(path)
    directory = path.parent
    final_mode = _target_mode(path, mode)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), final_mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(directory)
