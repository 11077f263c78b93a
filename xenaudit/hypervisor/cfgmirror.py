"""A local, read-only mirror of another Dom0's cfg files.

For a Dom0 reached over SSH, its /etc/xen lives over there. One command
prints every small regular file in the cfg folder and its auto/ folder
(base64, so bytes survive exactly) and every symlink's target; the mirror is
laid out under a scratch root, so `find_cfg` and the cfg parser work on it
exactly as on a local /etc/xen and the patches name the remote paths.
"""

from __future__ import annotations

import base64
import binascii
import os
import posixpath
from collections.abc import Iterable
from pathlib import Path

from xenaudit.atomicwrite import atomic_write_bytes, open_folder, relative_parts
from xenaudit.hypervisor.runner import CommandRunner

MARK = "@@xenaudit-cfg@@"
#: Files larger than this are not cfgs (kernels, disk images) and are not copied.
MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024

# $1 is the cfg folder; further arguments are single files (inventory cfg_path).
_SCRIPT = f"""
m='{MARK}'
emit() {{
  if [ -L "$1" ]; then printf '%s L %s\\n%s\\n' "$m" "$1" "$(readlink "$1")"
  elif [ -f "$1" ] && [ -r "$1" ]; then
    s=$(wc -c < "$1")
    if [ "$s" -le {MAX_FILE_BYTES} ]; then printf '%s F %s\\n' "$m" "$1"; base64 < "$1"; fi
  fi
}}
d=$1; shift
for f in "$d"/* "$d"/auto/*; do emit "$f"; done
for f in "$@"; do emit "$f"; done
"""


class MirrorError(Exception):
    """The remote cfg files could not be read."""


def mirror_cfg_dir(
    runner: CommandRunner,
    cfg_dir: str,
    root: Path,
    extra_files: Iterable[str] = (),
    timeout_s: float = 60.0,
) -> list[str]:
    """Copy the remote cfg files under `root` (as if `root` were `/`); returns warnings."""
    if not posixpath.isabs(cfg_dir):
        raise MirrorError(f"cfg_dir {cfg_dir!r} must be an absolute path on the Dom0")
    extras = [p for p in extra_files if posixpath.isabs(p)]
    result = runner.run(["sh", "-c", _SCRIPT, "sh", cfg_dir, *extras], timeout_s, MAX_TOTAL_BYTES)
    if result.returncode != 0 and MARK not in result.stdout:
        raise MirrorError(
            f"reading {cfg_dir} failed (exit {result.returncode}): {result.stderr.strip()[:200]}"
        )
    allowed = [posixpath.normpath(cfg_dir), *(posixpath.normpath(p) for p in extras)]
    return _write_mirror(result.stdout, root, allowed)


def _write_mirror(output: str, root: Path, allowed: list[str]) -> list[str]:
    warnings: list[str] = []
    root.mkdir(parents=True, exist_ok=True)
    lines = output.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.startswith(MARK + " "):
            continue
        kind, _, remote = line[len(MARK) + 1 :].partition(" ")
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith(MARK + " "):
            body.append(lines[index])
            index += 1
        local = _local_path(root, remote, allowed)
        if local is None:
            warnings.append(f"{remote!r}: outside the cfg folder, not mirrored")
            continue
        if kind == "L":
            target = body[0] if body else ""
            pointed = posixpath.normpath(posixpath.join(posixpath.dirname(remote), target))
            landing = _local_path(root, pointed, allowed) if target else None
            if landing is None:
                warnings.append(f"{remote}: link to {target!r} leaves the cfg folder, not mirrored")
                continue
            try:
                _link(root, local, os.path.relpath(landing, local.parent))
            except OSError as exc:
                warnings.append(f"{remote}: not mirrored: {exc}")
            continue
        try:
            data = base64.b64decode("".join(body), validate=True)
        except (binascii.Error, ValueError):
            warnings.append(f"{remote}: garbled while reading it, not mirrored")
            continue
        try:
            # Never through a link the listing made earlier (a file below a linked folder).
            atomic_write_bytes(local, data, 0o444, root=root)
        except OSError as exc:
            warnings.append(f"{remote}: not mirrored: {exc}")
    return warnings


def _link(root: Path, local: Path, target: str) -> None:
    """Make the link `local` (below `root`), reaching its folder without following links."""
    *folders, name = relative_parts(local, root)
    with open_folder(root, folders, create=True) as dir_fd:
        os.symlink(target, name, dir_fd=dir_fd)


def _local_path(root: Path, remote: str, allowed: list[str]) -> Path | None:
    """Where a remote path lands in the mirror; None for anything unexpected."""
    normal = posixpath.normpath(remote)
    if normal != remote.rstrip("/") or ".." in normal.split("/") or "\x00" in normal:
        return None
    inside = any(normal == a or normal.startswith(a.rstrip("/") + "/") for a in allowed)
    if not posixpath.isabs(normal) or not inside:
        return None
    return root / normal.lstrip("/")
