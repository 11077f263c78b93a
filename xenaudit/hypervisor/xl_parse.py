"""Pure parsing of what `xl` prints, shared by the live backend and snapshot replay.

Formats, as read in xen-project/xen:

* `xl list` (tools/xl/xl_info.c, list_domains): a header whose last columns
  are TAB-separated, then `"%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f"`
  per domain. Mem is (current + outstanding) KiB / 1024. The six state
  columns are r(unning), b(locked), p(aused), s(hutdown), the shutdown
  reason letter from "-rscwS" (so `c` there means crashed) and d(ying).
* `xl list -l`, JSON (default): an array of {"domid", "config"} where config
  is libxl_domain_config as generated from libxl_types.idl: c_info.type is
  "pv" | "hvm" | "pvh", b_info holds max_vcpus, target_memkb, max_memkb and
  the keyed union as "type.pv" / "type.hvm" / "type.pvh"; fields still at
  their default are omitted. Xen before 4.5 printed one object per domain
  without the enclosing array. Domains whose configuration cannot be
  retrieved are skipped by xl.
* `xl list -l` with `output_format="sxp"` in xl.conf (tools/xl/xl_sxp.c):
  one "(domain ...)" block per domain, `(hvm 0|1)` and an image of
  `(linux 0)` or `(hvm ...)`; xl stops with "Unknown domain type" on the
  first PVH domain.
* `xl info`: "key : value" lines; memory figures in MiB.
* The Xen command line's `dom0_mem=` (docs/misc/xen-command-line.pandoc):
  a list of `min:<sz>`, `max:<sz>` and `<sz>`, where a size without suffix
  is KiB (parse_size_and_unit), may be negative (subtracted from the host's
  memory) or a percentage `[<size>+]<frac>%`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from xenaudit.hypervisor.interface import Domain, DomainState, GuestType, HostView
from xenaudit.hypervisor.parse_error import RawParseError, snippet
from xenaudit.hypervisor.signals import build_signals
from xenaudit.hypervisor.xlcfg_read import CfgReadError, read_autoballoon

#: Raw file names in HostView.raw (and in snapshots).
RAW_LIST_LONG_JSON = "xl-list-l.json"
RAW_LIST_LONG_SXP = "xl-list-l.sxp"
RAW_LIST = "xl-list.txt"
RAW_INFO = "xl-info.txt"
RAW_XL_CONF = "xl.conf"

#: libxl's slack between what a domain's config says and what Xen enforces
#: (tools/libs/light/libxl_internal.h).
LIBXL_MAXMEM_CONSTANT_KIB = 1024

#: A ceiling at or above this is Xen's "no limit" ((2^32 - 1) pages of 4 KiB,
#: what an uncapped Dom0 reports; xentop prints it as "no limit").
NO_LIMIT_KIB = (2**32 - 1) * 4

_GUEST_TYPES: dict[str, GuestType] = {"pv": "pv", "pvh": "pvh", "hvm": "hvm"}


# --------------------------------------------------------------------- xl list


@dataclass(frozen=True)
class XlListRow:
    name: str
    domid: int
    mem_mib: int
    vcpus: int
    flags: str
    state: DomainState


_LIST_ROW = re.compile(
    r"^(?P<name>.*?)\s+(?P<domid>\d+)\s+(?P<mem>\d+)\s+(?P<vcpus>\d+)\s+"
    r"(?P<flags>[-a-zA-Z?]{6})\s+(?P<time>\d+(?:\.\d+)?)\s*$"
)


def state_from_flags(flags: str) -> DomainState:
    """The report's state for xl's six state letters.

    Dying and crashed win over shutdown, which wins over paused; a domain
    that is neither running nor blocked ("------") is runnable, waiting for
    a CPU, and is reported as running.
    """
    if len(flags) != 6:
        return "unknown"
    if flags[5] == "d":
        return "dying"
    if flags[3] == "s":
        return "crashed" if flags[4] == "c" else "shutdown"
    if flags[4] == "c":
        return "crashed"
    if flags[2] == "p":
        return "paused"
    if flags[1] == "b" and flags[0] != "r":
        return "blocked"
    return "running"


def parse_xl_list(text: str) -> tuple[XlListRow, ...]:
    """Rows of `xl list`; raises RawParseError naming the line that does not fit."""
    lines = text.splitlines()
    rows: list[XlListRow] = []
    header_seen = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not header_seen:
            if not line.lstrip().startswith("Name") or "ID" not in line:
                raise RawParseError(
                    "xl list", f"line {number}: expected the Name/ID header, got {snippet(line)}"
                )
            header_seen = True
            continue
        match = _LIST_ROW.match(line)
        if match is None or not match.group("name").strip():
            raise RawParseError("xl list", f"line {number} not understood: {snippet(line)}")
        flags = match.group("flags")
        rows.append(
            XlListRow(
                name=match.group("name").strip(),
                domid=int(match.group("domid")),
                mem_mib=int(match.group("mem")),
                vcpus=int(match.group("vcpus")),
                flags=flags,
                state=state_from_flags(flags),
            )
        )
    if not header_seen:
        raise RawParseError("xl list", "empty output (not even the header)")
    return tuple(rows)


# ----------------------------------------------------------------- xl list -l


@dataclass(frozen=True)
class XlDetail:
    """What `xl list -l` says about one domain."""

    domid: int | None
    name: str | None
    uuid: str | None
    guest_type: GuestType | None
    max_vcpus: int | None
    target_kib: int | None
    max_kib: int | None
    #: Paging pool (shadow or HAP) Xen keeps for the domain beside its memory, KiB.
    shadow_kib: int | None = None
    #: Emulated video RAM (HVM), part of `memory` (libxl_dom.c subtracts it from the RAM).
    video_kib: int | None = None
    #: Passthrough as libxl applied it ("sync_pt", "share_pt", "enabled"), or PCI devices.
    passthrough: str | None = None


def _positive(value: Any) -> int | None:
    """A KiB figure from libxl, None when unset (libxl prints -1 for "default").

    A figure beyond 2^64 bytes only comes from an edited recording and is
    treated as unset: these are side figures (paging pool, video RAM), so
    they do not make the whole listing unreadable.
    """
    number = _int_or_none(value)
    if number is None or number < 0 or number > _MAX_MEMKB:
        return None
    return number


def _passthrough(config: Any, c_info: Any) -> str | None:
    mode = str(c_info.get("passthrough", "") or "").lower()
    devices = config.get("pcidevs") if isinstance(config, dict) else None
    count = len(devices) if isinstance(devices, list) else 0
    if mode and mode not in ("disabled", "default", "unknown"):
        return f"passthrough {mode}" + (f", {count} PCI device(s)" if count else "")
    if count:
        return f"{count} PCI device(s)"
    return None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        return int(value)
    return None


def _ceiling(kib: int | None) -> int | None:
    return None if kib is None or kib >= NO_LIMIT_KIB else kib


#: 2^64 bytes: no domain holds more, whatever a recorded output says.
_MAX_MEMKB = 2**54


def _memkb(value: Any, key: str, where: str, *, ceiling: bool = False) -> int | None:
    """A memory size from `xl list -l`; a negative or impossible one is refused.

    libxl keeps these as uint64, so a negative number (or one beyond 2^64
    bytes that is not the "no limit" marker of a ceiling) only comes from an
    edited recording.
    """
    kib = _int_or_none(value)
    if kib is None:
        return None
    if kib < 0:
        raise RawParseError("xl list -l", f"{where}: {key} = {kib} is negative")
    if kib > _MAX_MEMKB and not ceiling:
        raise RawParseError("xl list -l", f"{where}: {key} = {kib} is beyond 2^64 bytes")
    return kib


def _json_documents(text: str) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise RawParseError(
                "xl list -l",
                f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            ) from None
        except RecursionError:
            raise RawParseError("xl list -l", "not valid JSON: nested too deeply") from None
        yield document


def _detail_from_json(entry: Any, index: int) -> XlDetail:
    where = f"entry {index}"
    if not isinstance(entry, dict):
        kind = type(entry).__name__
        raise RawParseError("xl list -l", f"{where}: expected an object, got {kind}")
    config = entry.get("config")
    if not isinstance(config, dict):
        raise RawParseError("xl list -l", f'{where}: no "config" object')
    c_info = config.get("c_info") or {}
    b_info = config.get("b_info") or {}
    if not isinstance(c_info, dict) or not isinstance(b_info, dict):
        raise RawParseError("xl list -l", f"{where}: c_info and b_info must be objects")
    guest_type = _GUEST_TYPES.get(str(c_info.get("type", "")).lower())
    if guest_type is None:
        # The keyed union names the type even where c_info.type was omitted.
        union = [key[5:] for key in b_info if isinstance(key, str) and key.startswith("type.")]
        if len(union) == 1:
            guest_type = _GUEST_TYPES.get(union[0].lower())
    if guest_type == "pv" and str(c_info.get("pvh", "")).lower() == "true":
        guest_type = "pvh"  # Xen 4.4-4.9 ran PVH as a flag on a PV domain
    name = c_info.get("name")
    uuid = c_info.get("uuid")
    return XlDetail(
        domid=_int_or_none(entry.get("domid")),
        name=name if isinstance(name, str) else None,
        uuid=uuid if isinstance(uuid, str) else None,
        guest_type=guest_type,
        max_vcpus=_int_or_none(b_info.get("max_vcpus")),
        target_kib=_memkb(b_info.get("target_memkb"), "target_memkb", where),
        max_kib=_ceiling(_memkb(b_info.get("max_memkb"), "max_memkb", where, ceiling=True)),
        shadow_kib=_positive(b_info.get("shadow_memkb")),
        video_kib=_positive(b_info.get("video_memkb")),
        passthrough=_passthrough(config, c_info),
    )


def parse_xl_list_long_json(text: str) -> tuple[XlDetail, ...]:
    details: list[XlDetail] = []
    for document in _json_documents(text):
        entries = document if isinstance(document, list) else [document]
        for entry in entries:
            details.append(_detail_from_json(entry, len(details)))
    return tuple(details)


_SXP_FIELD = re.compile(r"^\t\((?P<key>[a-z_]+) (?P<value>.*)\)$")


def parse_xl_list_long_sxp(text: str) -> tuple[XlDetail, ...]:
    """Blocks of xl's legacy SXP; an unfinished last block (xl stopped) is dropped."""
    details: list[XlDetail] = []
    block: dict[str, str] | None = None
    image_kind: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line == "(domain":
            block, image_kind = {}, None
            continue
        if block is None:
            if line.strip():
                raise RawParseError(
                    "xl list -l", f'line {number}: expected "(domain", got {snippet(line)}'
                )
            continue
        if line == ")":
            details.append(_detail_from_sxp(block, image_kind, number))
            block = None
            continue
        stripped = line.strip()
        if image_kind is None and line.startswith("\t\t(") and not line.startswith("\t\t\t"):
            image_kind = stripped[1:].split(" ", 1)[0]
        field_match = _SXP_FIELD.match(line)
        if field_match is not None:
            block.setdefault(field_match.group("key"), field_match.group("value"))
    return tuple(details)


def _detail_from_sxp(block: Mapping[str, str], image_kind: str | None, line: int) -> XlDetail:
    if "domid" not in block:
        raise RawParseError("xl list -l", f"domain block ending at line {line} has no (domid)")
    guest_type: GuestType | None
    if block.get("hvm") == "1" or image_kind == "hvm":
        guest_type = "hvm"
    elif image_kind == "linux":
        guest_type = "pv"
    else:
        guest_type = None
    uuid = block.get("uuid")
    return XlDetail(
        domid=_int_or_none(block["domid"]),
        name=block.get("name"),
        uuid=None if uuid in (None, "<unknown>") else uuid,
        guest_type=guest_type,
        max_vcpus=_int_or_none(block.get("max_vcpus")),
        target_kib=_int_or_none(block.get("target_memkb")),
        max_kib=_ceiling(_int_or_none(block.get("max_memkb"))),
    )


# --------------------------------------------------------------------- xl info


@dataclass(frozen=True)
class XlInfo:
    fields: Mapping[str, str] = field(default_factory=dict)

    def mib_as_kib(self, key: str) -> int | None:
        value = _int_or_none(self.fields.get(key))
        return None if value is None else value * 1024

    def integer(self, key: str) -> int | None:
        return _int_or_none(self.fields.get(key))

    @property
    def xen_version(self) -> str | None:
        if self.fields.get("xen_version"):
            return self.fields["xen_version"]
        major, minor = self.fields.get("xen_major"), self.fields.get("xen_minor")
        if major and minor:
            return f"{major}.{minor}{self.fields.get('xen_extra', '')}"
        return None


def parse_xl_info(text: str) -> XlInfo:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key = key.strip()
        if re.fullmatch(r"[a-z_0-9]+", key) and key not in fields:
            fields[key] = value.strip()
    if "total_memory" not in fields:
        raise RawParseError("xl info", "no total_memory line: not the output of `xl info`")
    if _int_or_none(fields["total_memory"]) is None:
        raise RawParseError(
            "xl info", f"total_memory is not a whole number: {snippet(fields['total_memory'])}"
        )
    return XlInfo(fields)


# ------------------------------------------------------------------ dom0_mem


def xen_size_to_kib(text: str) -> int:
    """A Xen `<size>` in KiB: C integer syntax plus an optional B/K/M/G/T suffix, default K."""
    match = re.fullmatch(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([bBkKmMgGtT]?)", text)
    if match is None:
        raise ValueError(f"not a Xen size: {text!r}")
    digits, suffix = match.groups()
    if digits[:2] in ("0x", "0X"):
        number = int(digits[2:], 16)
    elif digits.startswith("0"):
        number = int(digits, 8)
    else:
        number = int(digits)
    shift = {"b": -10, "k": 0, "": 0, "m": 10, "g": 20, "t": 30}[suffix.lower()]
    return number << shift if shift >= 0 else number >> -shift


def _sz_to_kib(text: str, total_kib: int | None) -> int | None:
    """One `<sz>`: absolute, negative (from the total) or `[<size>+]<frac>%`."""
    negative = text.startswith("-")
    body = text[1:] if negative else text
    if body.endswith("%"):
        base, _, fraction = body[:-1].rpartition("+")
        if not fraction.isdigit() or total_kib is None:
            return None
        kib = (xen_size_to_kib(base) if base else 0) + total_kib * int(fraction) // 100
    else:
        kib = xen_size_to_kib(body)
    if negative:
        return None if total_kib is None else max(total_kib - kib, 0)
    return kib


def dom0_mem_kib(commandline: str, total_kib: int | None) -> int | None:
    """Dom0's memory from `dom0_mem=` on Xen's command line, in KiB; None when not set.

    The last `dom0_mem=` wins, as with any Xen option. Without an exact
    amount Xen gives Dom0 all memory less a reserve of min(1/16, 128 MiB),
    then applies min: and max: (max wins); that needs the host's total.
    """
    values = [token[9:] for token in commandline.split() if token.startswith("dom0_mem=")]
    if not values:
        return None
    exact = low = high = None
    for item in values[-1].split(","):
        if not item:
            continue
        try:
            if item.startswith("min:"):
                low = _sz_to_kib(item[4:], total_kib)
            elif item.startswith("max:"):
                high = _sz_to_kib(item[4:], total_kib)
            else:
                exact = _sz_to_kib(item, total_kib)
        except ValueError:
            return None
    amount = exact
    if amount is None:
        if total_kib is None:
            return high if high is not None and low is None else None
        amount = total_kib - min(total_kib // 16, 128 * 1024)
    if low is not None:
        amount = max(amount, low)
    if high is not None:
        amount = min(amount, high)
    return amount


def effective_autoballoon(autoballoon: str | None, dom0_mem_set: bool) -> bool | None:
    """Whether xl balloons Dom0 down for new domains: "auto" means off when dom0_mem is set."""
    if autoballoon == "on":
        return True
    if autoballoon == "off":
        return False
    if autoballoon == "auto":
        return not dom0_mem_set
    return None


# -------------------------------------------------------------- the whole view


class ListRow(Protocol):
    """A row of `xl list` or `xm list`."""

    @property
    def name(self) -> str: ...
    @property
    def domid(self) -> int | None: ...
    @property
    def vcpus(self) -> int: ...
    @property
    def state(self) -> DomainState: ...


def listed_domain(
    row: ListRow, detail: XlDetail | None, target_kib: int | None, current_kib: int | None
) -> Domain:
    """A domain as its list row and its `list -l` detail (when there is one) describe it."""
    return Domain(
        name=row.name,
        domid=row.domid,
        uuid=detail.uuid if detail else None,
        state=row.state,
        guest_type=detail.guest_type if detail else None,
        vcpus=row.vcpus,
        target_kib=target_kib,
        max_kib=detail.max_kib if detail else None,
        current_kib=current_kib,
        is_dom0=row.domid == 0,
        shadow_kib=detail.shadow_kib if detail else None,
        video_kib=detail.video_kib if detail else None,
        passthrough=detail.passthrough if detail else None,
    )


def _merge(rows: tuple[XlListRow, ...], details: tuple[XlDetail, ...]) -> tuple[Domain, ...]:
    by_domid = {d.domid: d for d in details if d.domid is not None}
    domains: list[Domain] = []
    for row in rows:
        detail = by_domid.pop(row.domid, None)
        domains.append(
            listed_domain(
                row,
                detail,
                target_kib=detail.target_kib if detail else None,
                # xl's Mem column: (current + outstanding claim) KiB / 1024, rounded down.
                current_kib=row.mem_mib * 1024,
            )
        )
    # Created between the two commands: known only from `xl list -l`.
    for detail in by_domid.values():
        domains.append(
            Domain(
                name=detail.name or f"domid {detail.domid}",
                domid=detail.domid,
                uuid=detail.uuid,
                state="unknown",
                guest_type=detail.guest_type,
                vcpus=detail.max_vcpus,
                target_kib=detail.target_kib,
                max_kib=detail.max_kib,
                is_dom0=detail.domid == 0,
                shadow_kib=detail.shadow_kib,
                video_kib=detail.video_kib,
                passthrough=detail.passthrough,
            )
        )
    return tuple(domains)


def build_xl_view(name: str, raw: Mapping[str, str]) -> HostView:
    """A HostView from the raw outputs alone: what both the live run and replay call."""
    require_raw(raw, RAW_INFO, RAW_LIST)
    info = parse_xl_info(raw[RAW_INFO])
    rows = parse_xl_list(raw[RAW_LIST])
    warnings: list[str] = []
    if RAW_LIST_LONG_SXP in raw:
        details = parse_xl_list_long_sxp(raw[RAW_LIST_LONG_SXP])
    elif RAW_LIST_LONG_JSON in raw:
        details = parse_xl_list_long_json(raw[RAW_LIST_LONG_JSON])
    else:
        details = ()
        warnings.append("no `xl list -l` output: guest types and memory targets unknown")
    domains = _merge(rows, details)
    described = {d.domid for d in details}
    undescribed = [d.name for d in domains if not d.is_dom0 and d.domid not in described]
    if undescribed and (RAW_LIST_LONG_SXP in raw or RAW_LIST_LONG_JSON in raw):
        warnings.append(
            "`xl list -l` gave no details for "
            + ", ".join(repr(n) for n in undescribed)
            + " (xl skips domains whose configuration it cannot retrieve; its SXP output"
            " stops at the first PVH domain): their type, target and maxmem are unknown"
        )
    autoballoon = None
    if RAW_XL_CONF in raw:
        try:
            autoballoon = read_autoballoon(raw[RAW_XL_CONF], "xl.conf")
        except CfgReadError as exc:
            warnings.append(f"xl.conf does not parse, autoballoon unknown: {exc}")
    return assemble_view(
        name,
        "xl",
        info,
        raw,
        domains,
        warnings,
        autoballoon,
        # xl already subtracts outstanding claims from free_memory (xl_info.c).
        outstanding_claims_kib=info.mib_as_kib("outstanding_claims"),
    )


def require_raw(raw: Mapping[str, str], *names: str) -> None:
    """RawParseError naming the outputs a snapshot lacks."""
    missing = [k for k in names if k not in raw]
    if missing:
        raise RawParseError("snapshot", f"missing {', '.join(missing)}")


def assemble_view(
    name: str,
    backend: str,
    info: XlInfo,
    raw: Mapping[str, str],
    domains: tuple[Domain, ...],
    warnings: list[str],
    autoballoon: str | None,
    outstanding_claims_kib: int | None = None,
) -> HostView:
    """The HostView of an `xl info`-style host: what the xl and xm views share.

    Reads Dom0's memory from the Xen command line and the hypervisor-side
    signals from `raw` (their log named after the backend's dmesg), adding
    their warnings to `warnings`.
    """
    total_kib = info.mib_as_kib("total_memory")
    commandline = info.fields.get("xen_commandline", "")
    dom0_mem = dom0_mem_kib(commandline, total_kib)
    if dom0_mem is None and "dom0_mem=" in commandline:
        warnings.append("xen_commandline has a dom0_mem= that could not be read")
    signals, signal_warnings = build_signals(raw, f"{backend} dmesg")
    warnings.extend(signal_warnings)
    return HostView(
        name=name,
        backend=backend,
        total_memory_kib=total_kib,
        free_memory_kib=info.mib_as_kib("free_memory"),
        domains=domains,
        outstanding_claims_kib=outstanding_claims_kib,
        free_cpus=info.integer("free_cpus"),
        xen_version=info.xen_version,
        dom0_mem_kib=dom0_mem,
        autoballoon=autoballoon,
        raw=dict(raw),
        warnings=tuple(warnings),
        signals=signals,
    )
