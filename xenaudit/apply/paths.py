"""Where apply may read and write, decided before any byte moves.

Paths in report.json are data. A patch path like `patches/../../etc/shadow`,
a cfg path outside the cfg directories, or a cfg that is a symlink to
somewhere else must all be refused, so every path is checked in its logical
form (as the report names it) and again where it lands on disk (under
`--root`), with no symlink allowed anywhere below the root.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PATCHES_DIR = "patches"
REPORT_FILE = "report.json"

_PATCH_NAME = re.compile(r"^[A-Za-z0-9._+-]+$")


class PathRefused(ValueError):
    """A path the report names that apply will not touch. The message says why."""


def normalise_root(root: str | os.PathLike[str]) -> Path:
    """`--root` as an absolute path with its own symlinks resolved (it is the admin's choice)."""
    resolved = Path(os.path.realpath(root))
    if not resolved.is_dir():
        raise PathRefused(f"--root {root} is not a directory")
    return resolved


def under_root(root: Path, logical: str) -> Path:
    """`logical` (absolute, as in the report) as seen with `root` taken as `/`."""
    return root / logical.lstrip("/")


def check_logical_path(logical: object, what: str) -> str:
    """An absolute, normalised path without `..`, NUL or doubled slashes."""
    if not isinstance(logical, str) or not logical:
        raise PathRefused(f"{what} is missing")
    if "\0" in logical or "\n" in logical:
        raise PathRefused(f"{what} contains a NUL or newline")
    if not logical.startswith("/") or logical.startswith("//"):
        raise PathRefused(f"{what} {logical!r} is not an absolute path")
    if os.path.normpath(logical) != logical:
        raise PathRefused(f"{what} {logical!r} is not a normalised path")
    return logical


def normalise_cfg_dirs(cfg_dirs: Sequence[str]) -> tuple[str, ...]:
    dirs = []
    for cfg_dir in cfg_dirs:
        checked = check_logical_path(cfg_dir.rstrip("/") or "/", "--cfg-dir")
        dirs.append(checked)
    return tuple(dirs)


def inside_cfg_dirs(logical: str, cfg_dirs: Sequence[str]) -> bool:
    return any(logical.startswith(d.rstrip("/") + "/") for d in cfg_dirs)


@dataclass(frozen=True)
class CfgLocation:
    """A cfg the report names, checked: where it is on disk and what it is."""

    logical: str
    physical: Path
    uid: int
    gid: int
    mode: int
    device: int
    inode: int

    @property
    def directory(self) -> Path:
        return self.physical.parent

    @property
    def name(self) -> str:
        return self.physical.name


def locate_cfg(logical: object, root: Path, cfg_dirs: Sequence[str]) -> CfgLocation:
    """The cfg at `logical` under `root`, or `PathRefused` if it is not a plain cfg file there."""
    path = check_logical_path(logical, "config.path")
    if not inside_cfg_dirs(path, cfg_dirs):
        allowed = ", ".join(cfg_dirs)
        raise PathRefused(f"{path} is outside the cfg directories ({allowed})")
    physical = under_root(root, path)
    try:
        info = os.lstat(physical)
    except FileNotFoundError as exc:
        raise PathRefused(f"{physical} does not exist") from exc
    except OSError as exc:
        raise PathRefused(f"{physical}: {exc.strerror}") from exc
    if stat.S_ISLNK(info.st_mode):
        raise PathRefused(f"{physical} is a symlink; apply only edits regular files")
    if not stat.S_ISREG(info.st_mode):
        raise PathRefused(f"{physical} is not a regular file")
    if os.path.realpath(physical) != str(physical):
        raise PathRefused(f"{physical} lies behind a symlinked directory")
    if info.st_mode & 0o111:
        raise PathRefused(f"{physical} is executable; a cfg never is (is it a script?)")
    if info.st_nlink > 1:
        raise PathRefused(
            f"{physical} has {info.st_nlink} hard links; replacing it would split them"
        )
    return CfgLocation(
        logical=path,
        physical=physical,
        uid=info.st_uid,
        gid=info.st_gid,
        mode=stat.S_IMODE(info.st_mode),
        device=info.st_dev,
        inode=info.st_ino,
    )


def locate_patch(report_dir: Path, relpath: object) -> Path:
    """The diff a domain entry names, which must be a plain file directly in `patches/`."""
    if not isinstance(relpath, str):
        raise PathRefused("patch is not a string")
    parts = relpath.split("/")
    if len(parts) != 2 or parts[0] != PATCHES_DIR or not _PATCH_NAME.match(parts[1]):
        raise PathRefused(f"patch {relpath!r} is not of the form patches/NAME.cfg.diff")
    if parts[1] in (".", ".."):
        raise PathRefused(f"patch {relpath!r} is not of the form patches/NAME.cfg.diff")
    path = report_dir / PATCHES_DIR / parts[1]
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise PathRefused(f"{path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise PathRefused(f"{path} is not a regular file (a symlink?)")
    real_dir = os.path.realpath(report_dir / PATCHES_DIR)
    if os.path.realpath(path) != os.path.join(real_dir, parts[1]):
        raise PathRefused(f"{path} lies outside the report folder")
    if not real_dir.startswith(os.path.realpath(report_dir) + os.sep):
        raise PathRefused(f"{report_dir / PATCHES_DIR} lies outside the report folder")
    return path


def expected_headers(logical: str) -> tuple[str, str]:
    """The `---`/`+++` names a diff for `logical` must carry (applicable with `patch -p1`)."""
    relative = logical.lstrip("/")
    return f"a/{relative}", f"b/{relative}"
