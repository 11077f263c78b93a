"""Reading report.json back as the list of changes an admin reviewed.

The report folder may have been copied around, edited or planted, so this is
a strict reader: duplicate keys, non-finite numbers, booleans posing as
numbers and out-of-range sizes are refused. A bad domain entry is named and
skipped; only a report that cannot be read at all stops the run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenaudit.apply.interface import HostEntry, LiveMemory, ProposedChange
from xenaudit.apply.paths import REPORT_FILE
from xenaudit.snapshots import SnapshotFileError, read_snapshot_file

MAX_REPORT_BYTES = 64 * 1024 * 1024
SUPPORTED_SCHEMA = 1
#: 16 TiB: no Xen guest is bigger, and a larger number is a typo or an attack.
MAX_MIB = 16 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GUEST_TYPES = ("pv", "pvh", "hvm")


class ReportError(Exception):
    """The report as a whole cannot be used. The message names the file."""


class EntryError(ValueError):
    """One domain entry cannot be used; the caller adds the domain's name."""


@dataclass(frozen=True)
class ReviewedReport:
    directory: Path
    #: sha256 of report.json's bytes: the report's identity in the action log.
    sha256: str
    generated_at: str | None
    hosts: Mapping[str, HostEntry]
    changes: tuple[ProposedChange, ...]
    #: Entries that carry a patch but could not be read, each naming the domain.
    problems: tuple[str, ...]
    #: Every "name" and "host/name" in the report, for --domain.
    labels: frozenset[str]
    #: Made from the bundled demo fleet: its hosts are recordings, never live.
    demo: bool = False


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _decode(data: bytes, path: Path) -> dict[str, Any]:
    try:
        document = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ReportError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ReportError(f"{path}: the top level is not an object")
    return document


def _int(
    value: Any, what: str, *, optional: bool = False, low: int = 0, high: int = MAX_MIB
) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise EntryError(f"{what} is not an integer")
    if not low <= value <= high:
        raise EntryError(f"{what} = {value} is out of range {low}..{high}")
    return value


def _str(value: Any, what: str, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise EntryError(f"{what} is not a non-empty string")
    if len(value) > 4096 or "\0" in value:
        raise EntryError(f"{what} is too long or contains NUL")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise EntryError(f"{what} is not true/false")
    return value


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EntryError(f"{what} is not an object")
    return value


def _host(entry: Any) -> HostEntry:
    host = _obj(entry, "hosts[]")
    name = _str(host.get("name"), "hosts[].name")
    backend = _str(host.get("backend"), f"hosts[{name}].backend")
    uri = _str(host.get("uri"), f"hosts[{name}].uri", optional=True)
    remote = bool(host.get("ssh_host")) or host.get("remote") is True
    return HostEntry(name=name, backend=backend, uri=uri, remote=remote)


def _live(value: Any) -> LiveMemory | None:
    if value is None:
        return None
    live = _obj(value, "live")
    big = MAX_MIB * 1024
    return LiveMemory(
        target_kib=_int(live.get("target_kib"), "live.target_kib", optional=True, high=big),
        max_kib=_int(live.get("max_kib"), "live.max_kib", optional=True, high=big),
        current_kib=_int(live.get("current_kib"), "live.current_kib", optional=True, high=big),
    )


def _change(entry: dict[str, Any], name: str, host: str) -> ProposedChange:
    config = _obj(entry.get("config"), "config")
    rec = _obj(entry.get("recommendation"), "recommendation")
    sha = config.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise EntryError("config.sha256 is not a sha256 hex digest")
    path = _str(config.get("path"), "config.path")
    memory = _int(rec.get("memory_mib"), "recommendation.memory_mib", low=1)
    maxmem = _int(rec.get("maxmem_mib"), "recommendation.maxmem_mib", low=1)
    if maxmem < memory:
        raise EntryError(f"recommendation.maxmem_mib {maxmem} is below memory_mib {memory}")
    guest_type = entry.get("guest_type")
    if guest_type is not None and guest_type not in _GUEST_TYPES:
        raise EntryError(f"guest_type {guest_type!r} is not one of {_GUEST_TYPES}")
    reasons = rec.get("reasons") or []
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise EntryError("recommendation.reasons is not a list of strings")
    need = entry.get("need_mib", rec.get("need_mib"))
    return ProposedChange(
        domain=name,
        host=host,
        state=_str(entry.get("state"), "state"),
        guest_type=guest_type,
        domid=_int(entry.get("domid"), "domid", optional=True, high=2**31),
        uuid=_str(entry.get("uuid"), "uuid", optional=True),
        cfg_path=path,
        cfg_sha256=sha,
        cfg_memory_mib=_int(config.get("memory_mib"), "config.memory_mib", optional=True),
        cfg_maxmem_mib=_int(config.get("maxmem_mib"), "config.maxmem_mib", optional=True),
        memory_mib=memory,
        maxmem_mib=maxmem,
        change=_str(rec.get("change"), "recommendation.change"),
        fits=_bool(rec.get("fits", True), "recommendation.fits"),
        not_fitting_reason=_str(
            rec.get("not_fitting_reason"), "recommendation.not_fitting_reason", optional=True
        ),
        live_change_safe=_bool(rec.get("live_change_safe", False), "live_change_safe"),
        need_mib=_int(need, "need_mib", optional=True),
        live=_live(entry.get("live")),
        patch_relpath=_str(entry.get("patch"), "patch"),
        reasons=tuple(reasons),
    )


def _read(path: Path) -> bytes:
    """report.json's bytes: a regular file (not a link, a FIFO or a device), size-capped."""
    try:
        return read_snapshot_file(path, MAX_REPORT_BYTES)
    except SnapshotFileError as exc:
        raise ReportError(f"{path}: {exc}") from None


def load(report_dir: Path) -> ReviewedReport:
    """The changes report_dir/report.json proposes, or `ReportError` if it is unusable."""
    path = Path(report_dir) / REPORT_FILE
    data = _read(path)
    document = _decode(data, path)
    version = document.get("schema_version")
    if version != SUPPORTED_SCHEMA or isinstance(version, bool):
        raise ReportError(f"{path}: schema_version {version!r} is not {SUPPORTED_SCHEMA}")
    hosts_raw = document.get("hosts", [])
    domains_raw = document.get("domains")
    if not isinstance(hosts_raw, list) or not isinstance(domains_raw, list):
        raise ReportError(f"{path}: 'hosts' and 'domains' must be lists")
    hosts: dict[str, HostEntry] = {}
    problems: list[str] = []
    for raw in hosts_raw:
        try:
            host = _host(raw)
        except EntryError as exc:
            problems.append(f"{path}: {exc}")
            continue
        hosts[host.name] = host
    changes: list[ProposedChange] = []
    labels: set[str] = set()
    for index, raw in enumerate(domains_raw):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            problems.append(f"{path}: domains[{index}] has no name")
            continue
        name = raw["name"]
        host_name = raw["host"] if isinstance(raw.get("host"), str) else "?"
        labels.update((name, f"{host_name}/{name}"))
        if raw.get("patch") is None or raw.get("recommendation") is None:
            continue
        try:
            _str(raw.get("host"), "host")
            changes.append(_change(raw, name, host_name))
        except EntryError as exc:
            problems.append(f"{host_name}/{name}: {REPORT_FILE}: {exc}")
    generated = document.get("generated_at")
    return ReviewedReport(
        directory=Path(report_dir),
        sha256=hashlib.sha256(data).hexdigest(),
        generated_at=generated if isinstance(generated, str) else None,
        hosts=hosts,
        changes=tuple(changes),
        problems=tuple(problems),
        labels=frozenset(labels),
        demo=document.get("demo") is True,
    )
