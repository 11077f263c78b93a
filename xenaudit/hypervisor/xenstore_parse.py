"""What `xenstore-ls` and `xenstore-read -p` print, and the memory keys of each domain in it.

Formats, as read in xen-project/xen tools/xenstore/xenstore_client.c (do_ls)
and the older xsls.c:

* `xenstore-ls -f PATH`: one node per line, `FULLPATH = "VALUE"`; a node whose
  value cannot be read is `FULLPATH:`; `-p` appends three spaces and the
  permissions, e.g. `   (n0,r1)`. With -f nothing is cut.
* `xenstore-ls PATH` (no -f): a tree, one space of indent per level, names
  relative to PATH; values longer than the terminal (80 columns when not a
  terminal) are cut and end in `\\...`. The old xsls.c cut at about 150
  characters and ended in `...`.
* Values are "sanitised" (xs_sanitise_value): bytes outside ' '..'~' and the
  backslash are written as \\t \\n \\r \\\\ \\ooo (below 010) or \\xNN; a
  double quote is NOT escaped, so the value ends at the last quote of the
  line. xsls.c printed raw values, newlines included.
* `xenstore-read -p K...`: `K: VALUE` per key, sanitised the same way in new
  versions, raw (multi-line) in old ones.

Which keys mean what (docs/misc/xenstore-paths.pandoc, libxl_dom.c,
xen-balloon.c, the XenServer/XCP-ng guest agents, xenballoond):

* memory/target: the balloon target in KiB, written by the toolstack (libxl
  writes target_memkb minus video memory, so an HVM guest holds about
  target + videoram); memory/static-max: the ceiling; memory/videoram: KiB,
  -1 when none;
* control/feature-balloon = "1": the guest's balloon driver says it runs;
* data/meminfo_total, data/meminfo_free (KiB): written by guest agents
  (xe-guest-utilities, XenServer/XCP-ng Windows tools); "free" is
  MemAvailable where the guest kernel has it (older Linux agents: MemFree;
  Windows: available physical memory); data/updated: when the agent wrote;
* memory/meminfo: the guest's whole /proc/meminfo, written by xenballoond
  (Xen 3.x-4.x tools/xenballoon); xenstore values are at most 4 KiB, so it
  may be cut.

Everything here is written or influenced by the guest and is hostile: values
are capped, numbers must be plain decimal digits, and lines that do not fit
(cut or re-wrapped output) are counted and skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from xenaudit.hypervisor.parse_error import RawParseError

#: Xenstore node values are at most XENSTORE_PAYLOAD_MAX (4096) bytes; sanitised, up to 4× that.
MAX_VALUE_CHARS = 4 * 4096
#: A number in KiB beyond this (1 PiB) is not a memory size.
MAX_KIB = 2**40

_PATH = re.compile(r"/[A-Za-z0-9_@/.\-]*")
_NAME = re.compile(r"[A-Za-z0-9_@.\-]+")
_PERMS = re.compile(r'^(?P<value>.*)"\s{2,}\((?:[nrwb]\d+,?)+\)$')
_TREE = re.compile(r"^(?P<indent> *)(?P<name>\S+?)(?: = \"(?P<rest>.*)|(?P<unreadable>:))$")
_DOMAIN_KEY = re.compile(r"^/local/domain/(?P<domid>\d{1,5})/(?P<key>.+)$")
_DOMAIN_NODE = re.compile(r"^/local/domain/(?P<domid>\d{1,5})$")


def unsanitise(value: str) -> str:
    """Undo xs_sanitise_value (\\t \\n \\r \\\\ \\xNN \\ooo); other escapes stand for the char."""
    if "\\" not in value:
        return value
    out: list[str] = []
    index, length = 0, len(value)
    while index < length:
        char = value[index]
        if char != "\\" or index + 1 >= length:
            out.append(char)
            index += 1
            continue
        code = value[index + 1]
        if code in "tnr\\":
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[code])
            index += 2
        elif code == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", value[index + 2 : index + 4]):
            out.append(chr(int(value[index + 2 : index + 4], 16)))
            index += 4
        elif code in "01234567":
            digits = re.match(r"[0-7]{1,3}", value[index + 1 :])
            assert digits is not None
            out.append(chr(int(digits.group(), 8)))
            index += 1 + len(digits.group())
        else:
            out.append(code)
            index += 2
    return "".join(out)


@dataclass(frozen=True)
class XenstoreListing:
    """Every node read: full path → value (None when the tool could not read it)."""

    values: Mapping[str, str | None]
    layout: Literal["flat", "tree", "read"]
    #: Paths whose printed value was cut (tree layout).
    truncated: frozenset[str] = frozenset()
    #: Lines that were not a node (cut or re-wrapped output, raw multi-line values).
    skipped_lines: int = 0
    #: Paths printed twice (raw values imitating nodes): their values are dropped.
    conflicts: frozenset[str] = frozenset()


def _value(rest: str) -> tuple[str, bool] | None:
    """The value from what follows ` = "`, and whether the printer cut it; None if malformed."""
    rest = rest.rstrip(" ")
    perms = _PERMS.match(rest)
    if perms is not None:
        rest = perms["value"] + '"'
    if not rest.endswith('"'):
        return None
    value = rest[:-1]
    cut = value.endswith("\\...")
    if cut:
        value = value[: -len("\\...")]
    return unsanitise(value[:MAX_VALUE_CHARS]), cut


def _join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


class _Collector:
    """Nodes as they are read; a path printed twice is a conflict and loses its value.

    xenstore-ls prints each node once. A path seen twice means a value held
    raw newlines (old tools print values unsanitised) that imitate another
    node: neither copy can be trusted.
    """

    def __init__(self) -> None:
        self.values: dict[str, str | None] = {}
        self.truncated: set[str] = set()
        self.conflicts: set[str] = set()

    def put(self, path: str, value: str | None, cut: bool = False) -> None:
        if path in self.values or path in self.conflicts:
            self.conflicts.add(path)
            self.values[path] = None
            self.truncated.discard(path)
            return
        self.values[path] = value
        if cut:
            self.truncated.add(path)


def parse_xenstore_ls(text: str, root: str = "/") -> XenstoreListing:
    """Both layouts of `xenstore-ls`; `root` is the PATH argument (needed for the tree layout).

    A value that does not end on its line (an old tool printing raw
    newlines) is kept as cut, so it is read again. Raises RawParseError
    only when no line at all is a node.
    """
    nodes = _Collector()
    skipped = 0
    first = next((line for line in text.splitlines() if line.strip()), "")
    layout: Literal["flat", "tree"] = "flat" if first.startswith("/") else "tree"
    stack: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if layout == "flat":
            path, separator, rest = line.partition(' = "')
            if separator and _PATH.fullmatch(path):
                parsed = _value(rest)
                if parsed is None:
                    skipped += 1
                    continue
                nodes.put(path, parsed[0], parsed[1])
            elif line.endswith(":") and _PATH.fullmatch(line[:-1]):
                nodes.put(line[:-1], None)
            else:
                skipped += 1
            continue
        match = _TREE.match(line)
        depth = len(match["indent"]) if match else -1
        if match is None or depth > len(stack) or not _NAME.fullmatch(match["name"]):
            skipped += 1
            continue
        del stack[depth:]
        stack.append(match["name"])
        path = _join(root, "/".join(stack))
        if match["unreadable"]:
            nodes.put(path, None)
            continue
        parsed = _value(match["rest"])
        if parsed is None:
            # The value went on past the line (raw newlines): keep its start, read it again.
            nodes.put(path, unsanitise(match["rest"][:MAX_VALUE_CHARS]), cut=True)
            continue
        value, cut = parsed
        # xsls.c cut long values at ~150 characters with a bare "...".
        if not cut and value.endswith("...") and len(match["name"]) + len(value) >= 148:
            cut = True
        nodes.put(path, value, cut)
    if not nodes.values:
        raise RawParseError("xenstore-ls", 'no `PATH = "VALUE"` line: not xenstore-ls output')
    return XenstoreListing(
        nodes.values, layout, frozenset(nodes.truncated), skipped, frozenset(nodes.conflicts)
    )


_READ_START = re.compile(r"^(?P<path>/local/domain/\d{1,5}/[A-Za-z0-9_@/.\-]+): (?P<value>.*)$")


def parse_xenstore_read(text: str) -> XenstoreListing:
    """`xenstore-read -p` output; an old tool's raw multi-line value is joined back.

    Only paths a listing cut are taken from it (see xenstore_domains), and a
    path that starts twice is a conflict, as in a listing.
    """
    nodes = _Collector()
    current: str | None = None
    skipped = 0
    for line in text.splitlines():
        start = _READ_START.match(line)
        if start is not None:
            current = start["path"]
            nodes.put(current, start["value"][:MAX_VALUE_CHARS])
            continue
        if current is None or current in nodes.conflicts:
            skipped += 1
            continue
        joined = f"{nodes.values[current]}\n{line}"
        nodes.values[current] = joined[:MAX_VALUE_CHARS]
    return XenstoreListing(
        {k: unsanitise(v) if v is not None else None for k, v in nodes.values.items()},
        "read",
        frozenset(),
        skipped,
        frozenset(nodes.conflicts),
    )


# ------------------------------------------------------------- per-domain keys


@dataclass(frozen=True)
class XenstoreDomain:
    """The memory-related keys of /local/domain/ID, as read (absent keys are None)."""

    domid: int
    name: str | None = None
    target_kib: int | None = None
    static_max_kib: int | None = None
    #: memory/videoram; None for "-1" (no video memory) or absent.
    videoram_kib: int | None = None
    #: control/feature-balloon: True for "1", False for another value, None when absent.
    feature_balloon: bool | None = None
    agent_total_kib: int | None = None
    agent_free_kib: int | None = None
    agent_updated: str | None = None
    #: memory/meminfo (xenballoond): the guest's /proc/meminfo text.
    balloond_meminfo: str | None = None
    #: Keys whose printed value was cut, e.g. "memory/meminfo".
    truncated: tuple[str, ...] = ()
    #: Keys present but not understood (not a number where one was expected).
    bad_values: tuple[str, ...] = field(default_factory=tuple)


_KIB_KEYS = {
    "memory/target": "target_kib",
    "memory/static-max": "static_max_kib",
    "data/meminfo_total": "agent_total_kib",
    "data/meminfo_free": "agent_free_kib",
}
#: Keys whose values are worth a second, uncut read when the listing cut them.
REREAD_KEYS = ("memory/meminfo", "data/meminfo_total", "data/meminfo_free", "memory/target")


def _kib(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 13:
        return None
    value = int(text)
    return value if value <= MAX_KIB else None


def xenstore_domains(*listings: XenstoreListing) -> dict[int, XenstoreDomain]:
    """Per-domid facts from one or more listings.

    A re-read (`xenstore-read`) only replaces values an earlier listing cut:
    it cannot add or change any other key.
    """
    merged: dict[str, str | None] = {}
    truncated: set[str] = set()
    for listing in listings:
        for path, value in listing.values.items():
            if listing.layout == "read":
                if path in truncated and path not in listing.conflicts:
                    merged[path] = value
                    truncated.discard(path)
                continue
            merged[path] = value
            if path in listing.truncated:
                truncated.add(path)
    keys: dict[int, dict[str, str | None]] = {}
    for path, value in merged.items():
        node = _DOMAIN_NODE.match(path)
        if node is not None:
            keys.setdefault(int(node["domid"]), {})
            continue
        match = _DOMAIN_KEY.match(path)
        if match is not None:
            keys.setdefault(int(match["domid"]), {})[match["key"]] = value
    domains: dict[int, XenstoreDomain] = {}
    for domid, found in keys.items():
        numbers: dict[str, int | None] = {}
        bad: list[str] = []
        for key, attribute in _KIB_KEYS.items():
            raw = found.get(key)
            numbers[attribute] = _kib(raw)
            if raw is not None and numbers[attribute] is None:
                bad.append(key)
        videoram = found.get("memory/videoram")
        balloon = found.get("control/feature-balloon")
        name = found.get("name")
        domains[domid] = XenstoreDomain(
            domid=domid,
            name=name[:256] if name else None,
            target_kib=numbers["target_kib"],
            static_max_kib=numbers["static_max_kib"],
            videoram_kib=_kib(videoram),
            feature_balloon=None if balloon is None else balloon.strip() == "1",
            agent_total_kib=numbers["agent_total_kib"],
            agent_free_kib=numbers["agent_free_kib"],
            agent_updated=(found.get("data/updated") or None),
            balloond_meminfo=found.get("memory/meminfo"),
            truncated=tuple(
                sorted(
                    path.split("/", 4)[4]
                    for path in truncated
                    if path.startswith(f"/local/domain/{domid}/")
                )
            ),
            bad_values=tuple(bad),
        )
    return domains
