"""Saving a host's raw hypervisor outputs, and replaying them as a HypervisorSource.

A replay re-parses the saved text with the very functions the live backends
use (`build_xl_view`, `build_libvirt_view`), so a bug found in a replay is a
bug of the live run too. Raw file names become file names on disk: only
plain names are written or read, never a path.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from xenaudit.atomicwrite import open_folder, relative_parts, write_in
from xenaudit.hypervisor.interface import HostView, HypervisorError, HypervisorSource
from xenaudit.hypervisor.libvirt_parse import RAW_LIBVIRT, build_libvirt_view
from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.signals import SIGNAL_RAW_NAMES
from xenaudit.hypervisor.xl_parse import (
    RAW_INFO,
    RAW_LIST,
    RAW_LIST_LONG_JSON,
    RAW_LIST_LONG_SXP,
    RAW_XL_CONF,
    build_xl_view,
)
from xenaudit.hypervisor.xm_parse import XM_RAW_NAMES, build_xm_view
from xenaudit.snapshots import (
    HOST_META,
    SnapshotFileError,
    is_clean_text,
    load_json,
    read_snapshot_file,
)

#: Cap on one saved file when it is read back (they are our own, but may be tampered with).
MAX_RAW_BYTES = 64 * 1024 * 1024
#: host.json holds three short strings.
MAX_META_BYTES = 64 * 1024

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_BUILDERS: dict[str, tuple[Callable[[str, Mapping[str, str]], HostView], tuple[str, ...]]] = {
    "xl": (
        build_xl_view,
        (RAW_INFO, RAW_LIST, RAW_LIST_LONG_JSON, RAW_LIST_LONG_SXP, RAW_XL_CONF, *SIGNAL_RAW_NAMES),
    ),
    "xm": (build_xm_view, (*XM_RAW_NAMES, *SIGNAL_RAW_NAMES)),
    "libvirt": (build_libvirt_view, (RAW_LIBVIRT,)),
}


def is_plain_name(name: str) -> bool:
    """A file name with no directory part, no leading dot and no odd characters."""
    return bool(_PLAIN_NAME.fullmatch(name)) and name != HOST_META and ".." not in name


def save_host_snapshot(
    view: HostView, directory: Path, collected_at: str, root: Path | None = None
) -> None:
    """Write host.json and every raw output of `view` into `directory`.

    Nothing below `root` (the run's output folder; default `directory`) is
    written through a link. Raises ValueError, before writing anything, when a
    raw name is not a plain file name.
    """
    bad = [name for name in view.raw if not is_plain_name(name)]
    if bad:
        raise ValueError(f"refusing to save raw outputs with unsafe names: {bad!r}")
    base = Path(root) if root is not None else Path(directory)
    if root is None:
        base.mkdir(parents=True, exist_ok=True)
    meta = {"name": view.name, "backend": view.backend, "collected_at": collected_at}
    parts = relative_parts(directory, base)
    with open_folder(base, parts, create=True, follow_root=root is None) as dir_fd:
        meta_bytes = (json.dumps(meta, indent=2) + "\n").encode("utf-8")
        write_in(dir_fd, HOST_META, meta_bytes, durable=False)
        for name, text in view.raw.items():
            write_in(dir_fd, name, text.encode("utf-8", "replace"), durable=False)


class SnapshotSource(HypervisorSource):
    """Replays a directory written by `save_host_snapshot`."""

    backend = "snapshot"

    def __init__(self, directory: Path | str, name: str | None = None) -> None:
        self.directory = Path(directory)
        self.name_override = name

    def _fail(self, message: str) -> HypervisorError:
        return HypervisorError(self.name_override or str(self.directory), "snapshot", message)

    def _meta(self) -> dict[str, str]:
        path = self.directory / HOST_META
        if not os.path.lexists(path):
            raise self._fail(f"no {HOST_META} in {self.directory}")
        try:
            data = load_json(read_snapshot_file(path, MAX_META_BYTES))
        except SnapshotFileError as exc:
            raise self._fail(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict) or not all(
            is_clean_text(data.get(k)) for k in ("name", "backend")
        ):
            raise self._fail(f'{path}: expected {{"name": str, "backend": str, ...}}')
        return data

    def read(self) -> HostView:
        meta = self._meta()
        backend = meta["backend"]
        if backend not in _BUILDERS:
            raise self._fail(f"backend {backend!r} cannot be replayed")
        build, names = _BUILDERS[backend]
        raw: dict[str, str] = {}
        for name in names:
            path = self.directory / name
            if not os.path.lexists(path):
                continue
            try:
                data = read_snapshot_file(path, MAX_RAW_BYTES)
            except SnapshotFileError as exc:
                raise self._fail(f"{path}: {exc}") from None
            raw[name] = data.decode("utf-8", errors="replace")
        host = self.name_override or meta["name"]
        try:
            return build(host, raw)
        except RawParseError as exc:
            source = f"snapshot {self.directory}: {exc.source}"
            raise HypervisorError(host, source, exc.message) from None
