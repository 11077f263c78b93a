"""Pure parsing of what the xend-era `xm` prints, shared by the live `xm` backend and replay.

Formats, as read in xen-project/xen tools/python/xen (xend was removed in Xen 4.5):

* `xm list` (xm/main.py, xm_brief_list): a `Name ID Mem VCPUs State Time(s)`
  header, then `"%-40s %5s %5d %5d %10s %8.1f"` per domain. Mem is the
  domain's `memory` (memory_dynamic_max, the balloon target) in MiB, not what
  it holds; xend-managed domains that are not running have no ID and no
  state.
* `xm list -l` (PrettyPrint of XendConfig.to_sxp): one `(domain ...)` per
  domain with `(memory M)` = memory_dynamic_max and `(maxmem M)` =
  memory_static_max in MiB, `(image (linux ...))` for PV or `(image (hvm
  ...))` for HVM, `(state -b----)`.
* `xm info`: the same "key : value" lines as `xl info` (MiB figures); older
  versions have no xen_commandline.
* /etc/xen/xend-config.sxp: `(enable-dom0-ballooning yes|no)`, defaulting to
  yes unless `(dom0-min-mem 0)` (XendOptions.py).

What each domain holds comes from `xentop -b` (MEM(k), tot_pages), read with
the same call: xm itself never prints it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from xenaudit.hypervisor.interface import Domain, DomainState, GuestType, HostView
from xenaudit.hypervisor.parse_error import RawParseError, is_count, snippet
from xenaudit.hypervisor.signals import RAW_XENTOP
from xenaudit.hypervisor.sxp import Sxp, child, child_value, head, read_sxp
from xenaudit.hypervisor.xentop_parse import parse_xentop
from xenaudit.hypervisor.xl_parse import (
    NO_LIMIT_KIB,
    XlDetail,
    assemble_view,
    listed_domain,
    parse_xl_info,
    require_raw,
    state_from_flags,
)

RAW_XM_INFO = "xm-info.txt"
RAW_XM_LIST = "xm-list.txt"
RAW_XM_LIST_LONG = "xm-list-l.sxp"
RAW_XEND_CONFIG = "xend-config.sxp"
XM_RAW_NAMES = (RAW_XM_INFO, RAW_XM_LIST, RAW_XM_LIST_LONG, RAW_XEND_CONFIG)

#: What the report tells an admin of an xm-era Dom0.
XEND_REMOVED_NOTE = (
    "this Dom0 runs the xm toolstack (xend), which was deprecated in Xen 4.2 and removed in "
    "Xen 4.5: no security fixes reach it any more. Plan the move to xl (xl.cfg(5) reads most "
    "xm cfg files that are plain assignments) or another maintained toolstack."
)

_ROW = re.compile(
    r"^(?P<name>.*?)\s+(?:(?P<domid>\d+)\s+)?(?P<mem>\d+)\s+(?P<vcpus>\d+)\s+"
    r"(?:(?P<flags>[-a-zA-Z?]{6})\s+)?(?P<time>\d+(?:\.\d+)?)\s*$"
)
_TRUE = frozenset({"yes", "y", "true", "1", "on"})
_FALSE = frozenset({"no", "n", "false", "0", "off"})


@dataclass(frozen=True)
class XmListRow:
    name: str
    #: None for a xend-managed domain that is not running.
    domid: int | None
    #: memory_dynamic_max (the target), MiB.
    mem_mib: int
    vcpus: int
    flags: str | None
    state: DomainState


def parse_xm_list(text: str) -> tuple[XmListRow, ...]:
    """Rows of `xm list`; raises RawParseError naming the line that does not fit."""
    rows: list[XmListRow] = []
    header_seen = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if not header_seen:
            if line.lstrip().startswith("Name") and "ID" in line:
                header_seen = True
                continue
            if line.lstrip().startswith(("Warning", "WARNING")):
                continue  # deprecation notes some builds print before the table
            raise RawParseError(
                "xm list", f"line {number}: expected the Name/ID header, got {snippet(line)}"
            )
        match = _ROW.match(line)
        if match is None or not match["name"].strip():
            raise RawParseError("xm list", f"line {number} not understood: {snippet(line)}")
        flags = match["flags"]
        domid = int(match["domid"]) if match["domid"] is not None else None
        state: DomainState = state_from_flags(flags) if flags else "shutoff"
        if domid is None:
            state = "shutoff"
        rows.append(
            XmListRow(
                name=match["name"].strip(),
                domid=domid,
                mem_mib=int(match["mem"]),
                vcpus=int(match["vcpus"]),
                flags=flags,
                state=state,
            )
        )
    if not header_seen:
        raise RawParseError("xm list", "empty output (not even the header)")
    return tuple(rows)


def _mib_as_kib(value: str | None) -> int | None:
    if value is None or not is_count(value.strip()):
        return None
    kib = int(value) * 1024
    return None if kib >= NO_LIMIT_KIB else kib


def _guest_type(domain: Sxp) -> GuestType | None:
    image = child(domain, "image")
    if isinstance(image, tuple):
        kinds = {head(item) for item in image[1:]}
        if "hvm" in kinds:
            return "hvm"
        if "linux" in kinds:
            return "pv"
    return None


def _detail(domain: Sxp) -> XlDetail:
    domid = child_value(domain, "domid")
    uuid = child_value(domain, "uuid")
    vcpus = child_value(domain, "vcpus")
    return XlDetail(
        domid=int(domid) if domid and is_count(domid) else None,
        name=child_value(domain, "name") or None,
        uuid=uuid or None,
        guest_type=_guest_type(domain),
        max_vcpus=int(vcpus) if vcpus and is_count(vcpus) else None,
        target_kib=_mib_as_kib(child_value(domain, "memory")),
        max_kib=_mib_as_kib(child_value(domain, "maxmem")),
    )


def parse_xm_list_long(text: str) -> tuple[tuple[XlDetail, ...], list[str]]:
    """Every complete (domain ...) of `xm list -l`, and warnings (a cut-short last domain)."""
    document = read_sxp(text, "xm list -l")
    warnings: list[str] = []
    details = []
    for value in document.values:
        if head(value) != "domain":
            warnings.append(
                f"`xm list -l`: skipped a ({head(value) or '?'} ...) that is not a domain"
            )
            continue
        details.append(_detail(value))
    if document.unfinished:
        warnings.append(
            f"`xm list -l` output ends inside a domain ({document.unfinished}): "
            "that domain's type and memory settings are unknown"
        )
    return tuple(details), warnings


def xend_ballooning(text: str) -> str | None:
    """ "on"/"off" from xend-config.sxp's enable-dom0-ballooning as xend resolves it."""
    document = read_sxp(text, RAW_XEND_CONFIG, comments=True)
    settings: dict[str, str] = {}
    for value in document.values:
        key = head(value)
        if key is not None and isinstance(value, tuple) and len(value) > 1:
            first = value[1]
            if isinstance(first, str):
                settings.setdefault(key, first.lower())
    enabled = settings.get("enable-dom0-ballooning")
    if enabled in _TRUE:
        return "on"
    if enabled in _FALSE:
        return "off"
    return "off" if settings.get("dom0-min-mem", "0") == "0" else "on"


def _merge(
    rows: tuple[XmListRow, ...], details: tuple[XlDetail, ...], held: Mapping[str, int]
) -> tuple[Domain, ...]:
    by_domid = {d.domid: d for d in details if d.domid is not None}
    by_name = {d.name: d for d in details if d.name}
    domains = []
    for row in rows:
        detail = by_domid.get(row.domid) if row.domid is not None else by_name.get(row.name)
        domains.append(
            listed_domain(
                row,
                detail,
                target_kib=detail.target_kib
                if detail and detail.target_kib
                else row.mem_mib * 1024,
                current_kib=held.get(row.name) if row.domid is not None else None,
            )
        )
    return tuple(domains)


def build_xm_view(name: str, raw: Mapping[str, str]) -> HostView:
    """A HostView from the raw outputs alone: what both the live run and replay call."""
    require_raw(raw, RAW_XM_INFO, RAW_XM_LIST)
    try:
        info = parse_xl_info(raw[RAW_XM_INFO])
    except RawParseError as exc:
        raise RawParseError("xm info", exc.message) from None
    rows = parse_xm_list(raw[RAW_XM_LIST])
    warnings: list[str] = []
    details: tuple[XlDetail, ...] = ()
    if RAW_XM_LIST_LONG in raw:
        details, long_warnings = parse_xm_list_long(raw[RAW_XM_LIST_LONG])
        warnings.extend(long_warnings)
    else:
        warnings.append("no `xm list -l` output: guest types and maxmem unknown")
    held: dict[str, int] = {}
    if RAW_XENTOP in raw:
        try:
            top = parse_xentop(raw[RAW_XENTOP])
        except RawParseError as exc:
            warnings.append(f"{exc}: what each domain holds is unknown")
        else:
            for row in rows:
                match = top.match(row.name)
                if match is not None:
                    held[row.name] = match.mem_kib
            unmatched = [r.name for r in rows if r.domid is not None and r.name not in held]
            if unmatched:
                warnings.append(
                    "xentop has no unambiguous row for "
                    + ", ".join(repr(n) for n in unmatched)
                    + " (names cut to 10 characters clash, or the domain went away)"
                )
    else:
        warnings.append("no xentop output: what each domain holds is unknown")
    autoballoon = None
    if RAW_XEND_CONFIG in raw:
        try:
            autoballoon = xend_ballooning(raw[RAW_XEND_CONFIG])
        except RawParseError as exc:
            warnings.append(f"xend-config.sxp does not parse, dom0 ballooning unknown: {exc}")
    return assemble_view(name, "xm", info, raw, _merge(rows, details, held), warnings, autoballoon)
