"""Saving a host's raw hypervisor outputs, and replaying them as a HypervisorSource.

A replay re-parses the saved text with the very functions the live backends
use (`build_xl_view`, `build_libvirt_view`), so a bug found in a replay is a
bug of the live run too. Raw file names become file names on disk: only
plain names are written or read, never a path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path

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
from xenaudit.snapshots import HOST_META

#: Cap on one saved file when it is read back (they are our own, but may be tampered with).
MAX_RAW_BYTES = 64 * 1024 * 1024

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


def save_host_snapshot(view: HostView, directory: Path, collected_at: str) -> None:
    """Write host.json and every raw output of `view` into `directory`.

    Raises ValueError, before writing anything, when a raw name is not a plain
    file name.
    """
    bad = [name for name in view.raw if not is_plain_name(name)]
    if bad:
        raise ValueError(f"refusing to save raw outputs with unsafe names: {bad!r}")
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"name": view.name, "backend": view.backend, "collected_at": collected_at}
    (directory / HOST_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    for name, text in view.raw.items():
        (directory / name).write_text(text, encoding="utf-8", newline="")


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
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise self._fail(f"no {HOST_META} in {self.directory}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self._fail(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) for k in ("name", "backend")
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
            if not path.is_file():
                continue
            with path.open("rb") as handle:
                data = handle.read(MAX_RAW_BYTES + 1)
            if len(data) > MAX_RAW_BYTES:
                raise self._fail(f"{path} is larger than {MAX_RAW_BYTES} bytes")
            raw[name] = data.decode("utf-8", errors="replace")
        host = self.name_override or meta["name"]
        try:
            return build(host, raw)
        except RawParseError as exc:
            source = f"snapshot {self.directory}: {exc.source}"
            raise HypervisorError(host, source, exc.message) from None
