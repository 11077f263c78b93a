"""Reading each domain's cfg as xl does, and keeping a copy with the run's snapshots.

The audit judges the cfg files as they were when it ran; `apply` later refuses
a patch whose cfg changed since (the sha256 below), and a replay with
`--from-snapshots` sees exactly the files the original run saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenaudit.analysis.interface import ConfigFacts
from xenaudit.atomicwrite import atomic_write_bytes
from xenaudit.hypervisor.cfgfind import MAX_CFG_BYTES, CfgIndex, find_cfg
from xenaudit.inventory.interface import DomainOverride, HypervisorSpec
from xenaudit.snapshots import (
    SnapshotFileError,
    is_clean_text,
    load_json,
    read_snapshot_file,
    safe_name,
)
from xenaudit.xlcfg import CfgSyntaxError, parse
from xenaudit.xlcfg.linter import passthrough_of
from xenaudit.xlcfg.xmcfg import XmCfgRefused, parse_xm

#: Where a run keeps the cfg files it judged, under its snapshots folder.
CFG_DIR = "_cfg"
CFG_INDEX = "index.json"
#: An index of a few thousand domains is well under this.
MAX_INDEX_BYTES = 16 * 1024 * 1024
#: What `CfgStore` names its folders and files (from `safe_name`).
_SAVED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


@dataclass(frozen=True)
class LoadedConfig:
    facts: ConfigFacts
    #: The file's bytes, when it could be read (the patch is made from them).
    data: bytes | None


def missing(reason: str, path: str | None = None) -> LoadedConfig:
    return LoadedConfig(ConfigFacts(path, None, None, None, error=reason), None)


def config_facts(path: str, data: bytes, dialect: str = "xl") -> ConfigFacts:
    """Memory, maxmem and type the way xl reads them; a file xl refuses gets `error`.

    `dialect` "xm": an xm-era (Python) cfg, read only when it is plain
    assignments (see xlcfg.xmcfg); one that computes values gets `error`,
    so it is never patched.
    """
    digest = hashlib.sha256(data).hexdigest()
    try:
        cfg = parse_xm(data, path) if dialect == "xm" else parse(data, path)
        memory, maxmem, guest_type = cfg.memory_mib, cfg.maxmem_mib, cfg.guest_type
    except (CfgSyntaxError, XmCfgRefused, ValueError, TypeError) as exc:
        return ConfigFacts(path, None, None, None, sha256=digest, error=str(exc))
    return ConfigFacts(
        path, memory, maxmem, guest_type, sha256=digest, passthrough=passthrough_of(cfg)
    )


def read_config(path: Path, label: str, dialect: str = "xl") -> LoadedConfig:
    """Read one cfg file, capped; `label` is the path reports and patches name."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CFG_BYTES + 1)
    except OSError as exc:
        return missing(f"cannot read: {exc.strerror}", label)
    if len(data) > MAX_CFG_BYTES:
        return missing("larger than 1 MiB; not a cfg?", label)
    return LoadedConfig(config_facts(label, data, dialect), data)


def load_config(
    domain: str,
    spec: HypervisorSpec,
    override: DomainOverride,
    root: Path = Path("/"),
    index: CfgIndex | None = None,
    dialect: str = "xl",
) -> LoadedConfig:
    """Find and read a domain's cfg; `root` is taken as `/` (the path keeps its real name).

    `index` is the run's index of the host's cfg folder, shared by its domains.
    """
    path, note = find_cfg(domain, spec, override, root, index)
    if path is None:
        return missing(note or "no cfg file found")
    resolved = Path(path).resolve()
    try:
        label = "/" + str(resolved.relative_to(root.resolve())).lstrip("/")
    except ValueError:
        label = str(resolved)
    return read_config(resolved, label, dialect)


class CfgStore:
    """Saves each judged cfg under snapshots/_cfg/<host>/<domain>.cfg, with an index.

    Nothing below `root` (the run's output folder; default `folder`) is
    written through a link. A copy that cannot be written is recorded in
    `errors` (once per cause), never raised: the audit itself goes on.
    """

    def __init__(self, folder: Path, root: Path | None = None) -> None:
        self.folder = folder
        self.root = Path(root) if root is not None else Path(folder)
        self.index: dict[str, dict[str, dict[str, str]]] = {}
        self._domain_names: dict[str, set[str]] = {}
        self._host_dirs: dict[str, str] = {}
        self._host_names: set[str] = set()
        self.errors: list[str] = []

    def _failed(self, exc: OSError) -> None:
        message = f"cfg copies not saved: {exc}"
        if message not in self.errors:
            self.errors.append(message)

    def _prepare(self) -> None:
        if self.root == self.folder:
            # No output folder above: the store's own folder is the caller's choice.
            self.folder.mkdir(parents=True, exist_ok=True)

    def save(self, host: str, domain: str, real_path: str, data: bytes) -> None:
        host_dir = self._host_dirs.setdefault(host, safe_name(host, self._host_names))
        file_name = safe_name(domain, self._domain_names.setdefault(host, set())) + ".cfg"
        try:
            self._prepare()
            target = self.folder / host_dir / file_name
            atomic_write_bytes(target, data, root=self.root, durable=False)
        except OSError as exc:
            self._failed(exc)
            return
        self.index.setdefault(host, {})[domain] = {
            "path": real_path,
            "file": f"{host_dir}/{file_name}",
        }

    def write_index(self) -> None:
        if self.index:
            text = json.dumps(self.index, indent=2, sort_keys=True) + "\n"
            try:
                self._prepare()
                atomic_write_bytes(self.folder / CFG_INDEX, text.encode("utf-8"), root=self.root)
            except OSError as exc:
                self._failed(exc)


def replayable_cfg_path(path: Any, cfg_dir: str, cfg_path: str | None = None) -> bool:
    """Whether a cfg path read from a replayed index may name a domain's cfg.

    Patch headers and the report's `patch -p1` line name this path, so only a
    plain absolute path inside the Dom0's cfg folder (or the inventory's own
    cfg_path for the domain) is taken.
    """
    if not is_clean_text(path, 4096) or not path.startswith("/"):
        return False
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return False
    if posixpath.normpath(path) != path or path.startswith("//"):
        return False
    if cfg_path is not None and path == cfg_path:
        return True
    return path.startswith(cfg_dir.rstrip("/") + "/")


class CfgReplay:
    """Reads the cfg files an earlier run saved with `CfgStore`."""

    def __init__(self, snapshot_root: Path) -> None:
        self.folder = snapshot_root / CFG_DIR
        self.index: dict[str, Any] = {}
        self.error: str | None = None
        index_file = self.folder / CFG_INDEX
        if os.path.islink(self.folder) or not os.path.lexists(index_file):
            if os.path.islink(self.folder):
                self.error = f"{self.folder}: is a symlink; cfg copies not read"
            return
        try:
            index = load_json(read_snapshot_file(index_file, MAX_INDEX_BYTES))
        except SnapshotFileError as exc:
            self.error = f"{index_file}: unreadable cfg index: {exc}"
            return
        if isinstance(index, dict):
            self.index = index
        else:
            self.error = f"{index_file}: the cfg index is not a JSON object"

    def domains(self, host: str) -> list[str]:
        """The domains of `host` whose cfg the earlier run saved."""
        hosts = self.index.get(host)
        return sorted(hosts) if isinstance(hosts, dict) else []

    def load(
        self,
        host: str,
        domain: str,
        cfg_dir: str = "/etc/xen",
        cfg_path: str | None = None,
        dialect: str = "xl",
    ) -> LoadedConfig:
        hosts = self.index.get(host)
        entry = hosts.get(domain) if isinstance(hosts, dict) else None
        if not isinstance(entry, dict) or not all(
            is_clean_text(entry.get(k), 4096) for k in ("path", "file")
        ):
            return missing(self.error or "no cfg in the snapshot")
        if not replayable_cfg_path(entry["path"], cfg_dir, cfg_path):
            return missing(
                f"the snapshot's cfg index names {entry['path'][:200]!r}, which is not "
                f"a cfg file under {cfg_dir}"
            )
        parts = entry["file"].split("/")
        if len(parts) != 2 or not all(_SAVED_NAME.fullmatch(part) for part in parts):
            return missing(f"the snapshot's cfg index names an odd file {entry['file'][:200]!r}")
        source = self.folder / parts[0] / parts[1]
        try:
            data = read_snapshot_file(source, MAX_CFG_BYTES, root=self.folder)
        except SnapshotFileError as exc:
            return missing(f"cfg copy {source} in the snapshot: {exc}", entry["path"])
        return LoadedConfig(config_facts(entry["path"], data, dialect), data)
