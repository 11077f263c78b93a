"""Reading one Dom0's report folder for the merge: strictly, and only what the fleet shows.

The folder is untrusted: report.json is opened without following symlinks,
read up to a cap, decoded strictly (duplicate keys, NaN and non-UTF-8 are
refused) and every field the fleet uses is type-checked, so a planted or
damaged report is named and left out instead of reaching the page half-read.
Only a digest is kept: the merge of hundreds of Dom0s never holds their
reports.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from xenaudit.analysis.interface import SEVERITY_ORDER
from xenaudit.fleet.actions import KINDS, report_actions
from xenaudit.fleet.interface import FleetAction, InputError
from xenaudit.report import SCHEMA_VERSION

REPORT_JSON = "report.json"
#: Same cap as `xenaudit apply` uses for the same file.
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: Longest host, domain or other name accepted from a report.
MAX_NAME_CHARS = 1024
#: The report's own errors kept per Dom0 (the count is kept too).
KEPT_ERRORS = 5
_CHANGES = ("increase", "decrease", "maxmem", "none")


@dataclass(frozen=True)
class ReportDigest:
    """What the merge keeps of one report folder."""

    source: str
    sha256: str
    hosts: tuple[str, ...]
    generated_at: str
    moment: datetime
    tool_version: str
    incomplete: bool
    demo: bool
    domains: int
    findings: tuple[tuple[str, int], ...]
    domain_severities: tuple[tuple[str, int], ...]
    shortfalls: tuple[tuple[str, int], ...]
    errors: tuple[str, ...]
    error_count: int
    actions: tuple[FleetAction, ...]
    worst_severity: str

    def without_actions(self) -> ReportDigest:
        return dataclasses.replace(self, actions=())


class _Bad(ValueError):
    """A field of report.json is not what the schema says; the message names it."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where} is not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"{where} is not a list")
    return value


def _text(value: Any, where: str, *, optional: bool = False, empty: bool = True) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{where} is not a string")
    if not empty and not value:
        raise _Bad(f"{where} is empty")
    return value


def _name(value: Any, where: str) -> str:
    text: str = _text(value, where, empty=False)
    if len(text) > MAX_NAME_CHARS:
        raise _Bad(f"{where} is longer than {MAX_NAME_CHARS} characters")
    return text


def _int(value: Any, where: str, *, optional: bool = False, low: int = 0) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise _Bad(f"{where} is not an integer ≥ {low}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"{where} is not true/false")
    return value


def _severity(value: Any, where: str) -> str:
    if value not in SEVERITY_ORDER:
        raise _Bad(f"{where} is not one of {', '.join(SEVERITY_ORDER)}")
    return str(value)


def _strings(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    for i, item in enumerate(items):
        _text(item, f"{where}[{i}]")
    return items


def _check_recommendation(value: Any, where: str) -> None:
    if value is None:
        return
    rec = _obj(value, where)
    if rec.get("change") not in _CHANGES:
        raise _Bad(f"{where}.change is not one of {', '.join(_CHANGES)}")
    _int(rec.get("memory_mib"), f"{where}.memory_mib", low=1)
    _int(rec.get("maxmem_mib"), f"{where}.maxmem_mib", low=1)
    _bool(rec.get("fits"), f"{where}.fits")
    _bool(rec.get("live_change_safe"), f"{where}.live_change_safe")
    _text(rec.get("not_fitting_reason"), f"{where}.not_fitting_reason", optional=True)
    _strings(rec.get("reasons", []), f"{where}.reasons")


def _check_domain(value: Any, where: str) -> dict[str, Any]:
    entry = _obj(value, where)
    _name(entry.get("name"), f"{where}.name")
    _name(entry.get("host"), f"{where}.host")
    _severity(entry.get("severity"), f"{where}.severity")
    _strings(entry.get("diagnosis", []), f"{where}.diagnosis")
    for i, finding in enumerate(_list(entry.get("findings", []), f"{where}.findings")):
        item = _obj(finding, f"{where}.findings[{i}]")
        _severity(item.get("severity"), f"{where}.findings[{i}].severity")
        _text(item.get("title"), f"{where}.findings[{i}].title")
    config = _obj(entry.get("config"), f"{where}.config")
    _int(config.get("memory_mib"), f"{where}.config.memory_mib", optional=True)
    _int(config.get("maxmem_mib"), f"{where}.config.maxmem_mib", optional=True)
    _check_recommendation(entry.get("recommendation"), f"{where}.recommendation")
    _text(entry.get("patch"), f"{where}.patch", optional=True)
    return entry


def _check_actions(value: Any, domains: int) -> None:
    """report.json's ready-made rows (reports from xenaudit versions that write them)."""
    if value is None:
        return
    for i, item in enumerate(_list(value, "actions")):
        where = f"actions[{i}]"
        row = _obj(item, where)
        _severity(row.get("severity"), f"{where}.severity")
        _name(row.get("domain"), f"{where}.domain")
        _name(row.get("host"), f"{where}.host")
        index = _int(row.get("domain_index"), f"{where}.domain_index")
        if index >= domains:
            raise _Bad(f"{where}.domain_index {index} is not a domain of the report")
        if row.get("kind") not in KINDS:
            raise _Bad(f"{where}.kind is not one of {', '.join(KINDS)}")
        _text(row.get("change"), f"{where}.change")
        _text(row.get("why"), f"{where}.why")
        _bool(row.get("fits"), f"{where}.fits")
        _bool(row.get("live_change_safe"), f"{where}.live_change_safe")
        _text(row.get("patch"), f"{where}.patch", optional=True)


def _shortfall(host: dict[str, Any], where: str) -> int:
    plan = host.get("plan")
    if plan is None:
        return 0
    plan = _obj(plan, f"{where}.plan")
    fits = _bool(plan.get("fits"), f"{where}.plan.fits")
    short: int = _int(plan.get("shortfall_mib"), f"{where}.plan.shortfall_mib")
    return 0 if fits else short


def _unread(domains: Sequence[dict[str, Any]]) -> list[str]:
    """'NAME: STATUS: error' for each domain the audit could not read (why it exited 3)."""
    problems = []
    for i, entry in enumerate(domains):
        collection = entry.get("collection")
        if not isinstance(collection, dict):
            continue
        status = collection.get("status")
        if isinstance(status, str) and status not in ("ok", "skipped"):
            error = _text(collection.get("error"), f"domains[{i}].collection.error", optional=True)
            problems.append(f"{entry['name']}: {status}" + (f": {error}" if error else ""))
    return problems


def _moment(value: Any) -> datetime:
    text = _text(value, "generated_at", empty=False)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Bad(f"generated_at {text[:64]!r} is not an ISO-8601 time") from exc
    if moment.tzinfo is None:
        raise _Bad(f"generated_at {text[:64]!r} has no time zone")
    return moment


def _counts(values: Sequence[str]) -> tuple[tuple[str, int], ...]:
    counted = Counter(values)
    return tuple((s, counted[s]) for s in reversed(SEVERITY_ORDER))


def digest(document: Any, source: str, sha256: str) -> ReportDigest:
    """Check a decoded report.json and keep what the fleet needs. Raises `_Bad`."""
    doc = _obj(document, "the top level")
    if "schema_version" not in doc:
        raise _Bad("no schema_version: not a xenaudit report")
    version = doc["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise _Bad(
            f"schema_version {str(version)[:32]} is not {SCHEMA_VERSION}, the version this "
            "xenaudit reads (merge with the xenaudit that made it, or upgrade)"
        )
    moment = _moment(doc.get("generated_at"))
    hosts_raw = _list(doc.get("hosts"), "hosts")
    hosts: list[str] = []
    shortfalls: list[tuple[str, int]] = []
    for i, value in enumerate(hosts_raw):
        host = _obj(value, f"hosts[{i}]")
        name = _name(host.get("name"), f"hosts[{i}].name")
        if name in hosts:
            raise _Bad(f"hosts[{i}].name {name!r} is listed twice")
        hosts.append(name)
        short = _shortfall(host, f"hosts[{i}]")
        if short:
            shortfalls.append((name, short))
    if not hosts:
        raise _Bad("hosts is empty: the report covers no Dom0")
    domains = [
        _check_domain(value, f"domains[{i}]")
        for i, value in enumerate(_list(doc.get("domains"), "domains"))
    ]
    _check_actions(doc.get("actions"), len(domains))
    errors = _strings(doc.get("errors"), "errors") + _unread(domains)
    findings = [f["severity"] for d in domains for f in d.get("findings", [])]
    severities = [d["severity"] for d in domains]
    worst = max(severities, key=SEVERITY_ORDER.index, default="ok")
    return ReportDigest(
        source=source,
        sha256=sha256,
        hosts=tuple(hosts),
        generated_at=doc["generated_at"],
        moment=moment,
        tool_version=_text(doc.get("tool_version"), "tool_version"),
        incomplete=_bool(doc.get("incomplete"), "incomplete"),
        demo=_bool(doc.get("demo", False), "demo"),
        domains=len(domains),
        findings=_counts(findings),
        domain_severities=_counts(severities),
        shortfalls=tuple(shortfalls),
        errors=tuple(errors[:KEPT_ERRORS]),
        error_count=len(errors),
        actions=tuple(report_actions(doc)),
        worst_severity=worst,
    )


def read_report_bytes(folder: Path) -> bytes:
    """report.json of `folder`, refusing symlinks, special files and oversized files.

    `folder` itself may be a symlink (a `latest` link is a normal way to name a
    report); nothing inside it is followed.
    """
    source = str(folder)
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        reason = "is not a directory" if exc.errno == errno.ENOTDIR else exc.strerror
        raise InputError(source, "folder", f"cannot open: {reason}") from exc
    try:
        try:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(REPORT_JSON, flags, dir_fd=dir_fd)
        except FileNotFoundError as exc:
            raise InputError(source, REPORT_JSON, "not a report folder: no report.json") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InputError(source, REPORT_JSON, "is a symlink; not followed") from exc
            raise InputError(source, REPORT_JSON, f"cannot open: {exc.strerror}") from exc
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InputError(source, REPORT_JSON, "is not a regular file")
        # Sized from the file, not the cap: read(cap) would allocate the whole cap.
        data = handle.read(min(info.st_size, MAX_REPORT_BYTES) + 1)
        while len(data) <= MAX_REPORT_BYTES:
            more = handle.read(1 << 20)
            if not more:
                break
            data += more
    if len(data) > MAX_REPORT_BYTES:
        raise InputError(source, REPORT_JSON, f"larger than {MAX_REPORT_BYTES} bytes")
    return data


def decode(data: bytes, source: str) -> Any:
    try:
        return json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(source, REPORT_JSON, f"not valid JSON: {exc}") from exc


def read_report(folder: Path) -> ReportDigest:
    """The digest of `folder`'s report.json; `InputError` names the folder when it is unusable."""
    source = str(folder)
    data = read_report_bytes(folder)
    document = decode(data, source)
    try:
        return digest(document, source, hashlib.sha256(data).hexdigest())
    except _Bad as exc:
        raise InputError(source, REPORT_JSON, str(exc)) from exc
