"""Reading each domain's cfg as xl does, and keeping a copy with the run's snapshots.

The audit judges the cfg files as they were when it ran; `apply` later refuses
a patch whose cfg changed since (the sha256 below), and a replay with
`--from-snapshots` sees exactly the files the original run saw.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from xenaudit.analysis.interface import ConfigFacts
from xenaudit.hypervisor.cfgfind import MAX_CFG_BYTES, find_cfg
from xenaudit.inventory.interface import DomainOverride, HypervisorSpec
from xenaudit.snapshots import safe_name
from xenaudit.xlcfg import CfgSyntaxError, parse

#: Where a run keeps the cfg files it judged, under its snapshots folder.
CFG_DIR = "_cfg"
CFG_INDEX = "index.json"


@dataclass(frozen=True)
class LoadedConfig:
    facts: ConfigFacts
    #: The file's bytes, when it could be read (the patch is made from them).
    data: bytes | None


def missing(reason: str, path: str | None = None) -> LoadedConfig:
    return LoadedConfig(ConfigFacts(path, None, None, None, error=reason), None)


def config_facts(path: str, data: bytes) -> ConfigFacts:
    """Memory, maxmem and type the way xl reads them; a file xl refuses gets `error`."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        cfg = parse(data, path)
        memory, maxmem, guest_type = cfg.memory_mib, cfg.maxmem_mib, cfg.guest_type
    except (CfgSyntaxError, ValueError, TypeError) as exc:
        return ConfigFacts(path, None, None, None, sha256=digest, error=str(exc))
    return ConfigFacts(path, memory, maxmem, guest_type, sha256=digest)


def read_config(path: Path, label: str) -> LoadedConfig:
    """Read one cfg file, capped; `label` is the path reports and patches name."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CFG_BYTES + 1)
    except OSError as exc:
        return missing(f"cannot read: {exc.strerror}", label)
    if len(data) > MAX_CFG_BYTES:
        return missing("larger than 1 MiB; not a cfg?", label)
    return LoadedConfig(config_facts(label, data), data)


def load_config(
    domain: str, spec: HypervisorSpec, override: DomainOverride, root: Path = Path("/")
) -> LoadedConfig:
    """Find and read a domain's cfg; `root` is taken as `/` (the path keeps its real name)."""
    path, note = find_cfg(domain, spec, override, root)
    if path is None:
        return missing(note or "no cfg file found")
    resolved = Path(path).resolve()
    try:
        label = "/" + str(resolved.relative_to(root.resolve())).lstrip("/")
    except ValueError:
        label = str(resolved)
    return read_config(resolved, label)


class CfgStore:
    """Saves each judged cfg under snapshots/_cfg/<host>/<domain>.cfg, with an index."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.index: dict[str, dict[str, dict[str, str]]] = {}
        self._domain_names: dict[str, set[str]] = {}
        self._host_dirs: dict[str, str] = {}
        self._host_names: set[str] = set()

    def save(self, host: str, domain: str, real_path: str, data: bytes) -> None:
        host_dir = self._host_dirs.setdefault(host, safe_name(host, self._host_names))
        file_name = safe_name(domain, self._domain_names.setdefault(host, set())) + ".cfg"
        target = self.folder / host_dir
        target.mkdir(parents=True, exist_ok=True)
        (target / file_name).write_bytes(data)
        self.index.setdefault(host, {})[domain] = {
            "path": real_path,
            "file": f"{host_dir}/{file_name}",
        }

    def write_index(self) -> None:
        if self.index:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / CFG_INDEX).write_text(
                json.dumps(self.index, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )


class CfgReplay:
    """Reads the cfg files an earlier run saved with `CfgStore`."""

    def __init__(self, snapshot_root: Path) -> None:
        self.folder = snapshot_root / CFG_DIR
        self.index: dict[str, dict[str, dict[str, str]]] = {}
        self.error: str | None = None
        index_file = self.folder / CFG_INDEX
        if not index_file.is_file():
            return
        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
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

    def load(self, host: str, domain: str) -> LoadedConfig:
        hosts = self.index.get(host)
        entry = hosts.get(domain) if isinstance(hosts, dict) else None
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("path", "file")
        ):
            return missing(self.error or "no cfg in the snapshot")
        source = (self.folder / entry["file"]).resolve()
        if self.folder.resolve() not in source.parents or not source.is_file():
            return missing("cfg missing from the snapshot", entry["path"])
        return read_config(source, entry["path"])
