"""Pure parsing of what the libvirt backend recorded (`libvirt.json`), shared with replay.

The record holds the URI, the driver's name and version, `getInfo()`,
`getFreeMemory()` and, per domain, `XMLDesc()`, `state()` and `info()`, so
a snapshot can be re-read without libvirt installed.

Free memory: libvirt's test driver answers 0 for a custom node file, which
would read as "the host is full". A 0 from the test driver is therefore
reported as unknown (None, with a warning); a real driver's answer is kept
as given, 0 included, because a Xen host whose Dom0 holds all memory can
really have (almost) none free.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from xenaudit.hypervisor.interface import Domain, DomainState, GuestType, HostView
from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.xl_parse import NO_LIMIT_KIB

RAW_LIBVIRT = "libvirt.json"

#: virDomainState values (libvirt-domain.h).
_STATES: dict[int, DomainState] = {
    0: "unknown",  # NOSTATE
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutdown",  # being shut down
    5: "shutoff",
    6: "crashed",
    7: "paused",  # PMSUSPENDED: suspended by the guest, holds its memory like a paused one
}

#: <os><type> of a Xen domain: "xen" (libvirt's test driver shows it as "linux") is PV.
_OS_TYPES: dict[str, GuestType] = {"xen": "pv", "linux": "pv", "hvm": "hvm", "xenpvh": "pvh"}

#: libvirt's memory units, as multiples of one KiB (docs: formatdomain, "memory").
_UNITS_BYTES: dict[str, int] = {
    "b": 1,
    "bytes": 1,
    "kb": 1000,
    "k": 1024,
    "kib": 1024,
    "mb": 1000**2,
    "m": 1024**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "g": 1024**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "t": 1024**4,
    "tib": 1024**4,
    "pb": 1000**5,
    "p": 1024**5,
    "pib": 1024**5,
    "eb": 1000**6,
    "e": 1024**6,
    "eib": 1024**6,
}


def _memory_kib(element: ET.Element | None, where: str) -> int | None:
    if element is None or element.text is None:
        return None
    unit = (element.get("unit") or "KiB").lower()
    digits = element.text.strip()
    if unit not in _UNITS_BYTES or not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
        raise RawParseError("libvirt", f"{where}: unreadable <{element.tag}> {element.text!r}")
    kib = int(element.text.strip()) * _UNITS_BYTES[unit] // 1024
    return None if kib >= NO_LIMIT_KIB else kib


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _domain(entry: Any, index: int) -> Domain:
    where = f"domain {index}"
    if not isinstance(entry, dict) or not isinstance(entry.get("xml"), str):
        raise RawParseError("libvirt", f"{where}: no XMLDesc recorded")
    try:
        root = ET.fromstring(entry["xml"])
    except ET.ParseError as exc:
        raise RawParseError("libvirt", f"{where}: XMLDesc is not XML: {exc}") from None
    name = root.findtext("name")
    if not name:
        raise RawParseError("libvirt", f"{where}: XMLDesc has no <name>")
    where = f"domain {name!r}"
    state_pair = entry.get("state")
    state_code = _int(state_pair[0]) if isinstance(state_pair, list) and state_pair else None
    state: DomainState = _STATES.get(state_code, "unknown") if state_code is not None else "unknown"
    id_attr = root.get("id")
    domid = int(id_attr) if id_attr is not None and id_attr.lstrip("-").isdigit() else None
    if domid is None:
        domid = _int(entry.get("id"))
    if domid is not None and domid < 0:
        domid = None
    os_type = (root.findtext("os/type") or "").strip().lower()
    vcpu = root.find("vcpu")
    vcpus: int | None = None
    if vcpu is not None:
        current = vcpu.get("current")
        text = current if current is not None else (vcpu.text or "")
        vcpus = int(text) if text.strip().isdigit() else None
    info = entry.get("info")
    active = state not in ("shutoff", "unknown")
    current_kib = None
    if active and isinstance(info, list) and len(info) >= 4:
        current_kib = _int(info[2])
        vcpus = _int(info[3]) or vcpus
    return Domain(
        name=name,
        domid=domid if active else None,
        uuid=root.findtext("uuid"),
        state=state,
        guest_type=_OS_TYPES.get(os_type) if root.get("type", "xen") == "xen" else None,
        vcpus=vcpus,
        target_kib=_memory_kib(root.find("currentMemory"), where),
        max_kib=_memory_kib(root.find("memory"), where),
        current_kib=current_kib,
        is_dom0=active and domid == 0,
    )


def _xen_version(driver: str, version: Any) -> str | None:
    number = _int(version)
    if driver.lower() != "xen" or not number:
        return None
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def build_libvirt_view(name: str, raw: Mapping[str, str]) -> HostView:
    """A HostView from `libvirt.json` alone: what both the live run and replay call."""
    if RAW_LIBVIRT not in raw:
        raise RawParseError("snapshot", f"missing {RAW_LIBVIRT}")
    try:
        record = json.loads(raw[RAW_LIBVIRT])
    except json.JSONDecodeError as exc:
        raise RawParseError(
            RAW_LIBVIRT, f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise RawParseError(RAW_LIBVIRT, "not valid JSON: nested too deeply") from None
    if not isinstance(record, dict) or not isinstance(record.get("domains"), list):
        raise RawParseError(RAW_LIBVIRT, 'expected an object with a "domains" list')
    driver = str(record.get("driver") or "")
    warnings: list[str] = []
    node_info = record.get("node_info")
    total_kib = None
    if isinstance(node_info, list) and len(node_info) >= 2 and _int(node_info[1]) is not None:
        total_kib = node_info[1] * 1024
    free_bytes = _int(record.get("free_memory_bytes"))
    free_kib = None if free_bytes is None else free_bytes // 1024
    if free_kib == 0 and driver.lower() == "test":
        free_kib = None
        warnings.append(
            "libvirt's test driver reports 0 free memory for a custom node file: "
            "free memory treated as unknown"
        )
    elif free_bytes is None:
        warnings.append("the libvirt driver did not report free memory")
    domains = tuple(_domain(entry, i) for i, entry in enumerate(record["domains"]))
    return HostView(
        name=name,
        backend="libvirt",
        total_memory_kib=total_kib,
        free_memory_kib=free_kib,
        domains=domains,
        xen_version=_xen_version(driver, record.get("version")),
        raw=dict(raw),
        warnings=tuple(warnings),
    )
