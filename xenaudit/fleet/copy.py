"""Copying a Dom0's report folder into the fleet folder without trusting it.

A report folder fetched from a Dom0 is data. Its copy must not be steered by
it: symlinks are never followed (a link to /etc/shadow stays behind), only
regular files and folders are copied, every file is opened relative to its
folder's descriptor so a swapped path cannot redirect the read, sizes, file
counts and depth are capped, the copy is written through descriptors of the
folders it made itself, and copies get plain modes (no setuid bits, no
foreign owners). Whatever is left out is named, so the fleet report can say
so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from xenaudit.fleet.defaults import DEFAULT_MAX_DOM0_MIB

CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class CopyLimits:
    """Caps for one Dom0's folder. A nightly report folder is a few MiB (snapshots included)."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = DEFAULT_MAX_DOM0_MIB * 1024 * 1024
    max_files: int = 20_000
    max_depth: int = 8
    #: Top-level entries not copied at all (e.g. "snapshots").
    skip: frozenset[str] = frozenset()


@dataclass
class CopyResult:
    files: int = 0
    bytes: int = 0
    #: What was left out, each naming the file relative to the folder.
    problems: list[str] = field(default_factory=list)
    #: sha256 of the report.json that was copied, None when there was none.
    report_sha256: str | None = None
    stopped: bool = False


class _Copier:
    def __init__(self, limits: CopyLimits) -> None:
        self.limits = limits
        self.result = CopyResult()

    def copy_dir(self, src_fd: int, dest_fd: int, rel: str, depth: int) -> None:
        with os.scandir(src_fd) as listing:
            entries = [(e.name, e.stat(follow_symlinks=False)) for e in listing]
        # Small files at the top first (report.json, patches), bulky snapshots last,
        # so a cap cuts what matters least.
        entries.sort(key=lambda e: (stat.S_ISDIR(e[1].st_mode), e[0] == "snapshots", e[0]))
        for name, info in entries:
            if self.result.stopped:
                return
            where = f"{rel}/{name}" if rel else name
            if not rel and name in self.limits.skip:
                continue
            mode = info.st_mode
            if stat.S_ISLNK(mode):
                self.result.problems.append(f"{where}: symlink, not followed")
            elif stat.S_ISDIR(mode):
                self._subdir(src_fd, name, dest_fd, where, depth)
            elif stat.S_ISREG(mode):
                self._file(src_fd, name, dest_fd, where, info.st_size)
            else:
                self.result.problems.append(f"{where}: not a regular file, not copied")

    def _subdir(self, src_fd: int, name: str, dest_fd: int, where: str, depth: int) -> None:
        if depth >= self.limits.max_depth:
            self.result.problems.append(f"{where}: deeper than {self.limits.max_depth} folders")
            return
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=src_fd)
        except OSError as exc:
            self.result.problems.append(f"{where}: cannot open: {exc.strerror}")
            return
        try:
            os.mkdir(name, 0o755, dir_fd=dest_fd)
            sub_fd = os.open(name, _DIR_FLAGS, dir_fd=dest_fd)
            try:
                self.copy_dir(fd, sub_fd, where, depth + 1)
            finally:
                os.close(sub_fd)
        finally:
            os.close(fd)

    def _stop(self, why: str) -> None:
        self.result.stopped = True
        self.result.problems.append(
            f"copy stopped after {self.result.files} files ({self.result.bytes} bytes): {why}"
        )

    def _file(self, src_fd: int, name: str, dest_fd: int, where: str, size: int) -> None:
        limits = self.limits
        if self.result.files >= limits.max_files:
            self._stop(f"more than {limits.max_files} files")
            return
        if size > limits.max_file_bytes:
            self.result.problems.append(
                f"{where}: {size} bytes, over the {limits.max_file_bytes}-byte cap; not copied"
            )
            return
        if self.result.bytes + size > limits.max_total_bytes:
            self._stop(f"the folder is over the {limits.max_total_bytes}-byte cap")
            return
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=src_fd)
        except OSError as exc:
            self.result.problems.append(f"{where}: cannot open: {exc.strerror}")
            return
        hasher = hashlib.sha256() if where == "report.json" else None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.result.problems.append(f"{where}: replaced while copying; not copied")
                return
            copied = self._stream(fd, dest_fd, name, limits.max_file_bytes, hasher)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dest_fd)
            self.result.problems.append(f"{where}: not copied: {exc.strerror or exc}")
            return
        finally:
            os.close(fd)
        if copied is None:
            self.result.problems.append(f"{where}: grew past the cap while copying; not copied")
            return
        self.result.files += 1
        self.result.bytes += copied
        if hasher is not None:
            self.result.report_sha256 = hasher.hexdigest()

    @staticmethod
    def _stream(
        fd: int, dest_fd: int, name: str, cap: int, hasher: hashlib._Hash | None
    ) -> int | None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        out = os.open(name, flags, 0o644, dir_fd=dest_fd)
        total = 0
        try:
            while True:
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > cap:
                    break
                if hasher is not None:
                    hasher.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
        finally:
            os.close(out)
        if total > cap:
            os.unlink(name, dir_fd=dest_fd)
            return None
        return total


def copy_report_folder(source: Path, dest: Path, limits: CopyLimits | None = None) -> CopyResult:
    """Copy the report folder `source` into `dest`, which must not exist yet.

    `source` itself may be a symlink (as `reports/latest` is); nothing inside it
    is followed.
    """
    copier = _Copier(limits or CopyLimits())
    src_fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dest.mkdir(mode=0o755)
        # Every file below is made through this descriptor, never through a path.
        dest_fd = os.open(dest, _DIR_FLAGS)
        try:
            copier.copy_dir(src_fd, dest_fd, "", 0)
        finally:
            os.close(dest_fd)
    finally:
        os.close(src_fd)
    return copier.result
