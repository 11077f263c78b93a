"""What `xentop -b` prints, read as the hypervisor's own account of each domain's memory.

Format, as read in xen-project/xen tools/xenstat/xentop/xentop.c:

* batch mode prints, per iteration, a header line (`NAME  STATE  CPU(sec) ...`)
  then one row per domain; newer versions and `xl top` also print a banner
  (`xentop - HH:MM:SS   Xen V`, domain counts, `Mem: ...k total, ...`) first;
  `-r` repeats the header before every domain;
* NAME is `%10.10s` (cut to ten characters) unless `-f` asks for the full name;
* STATE is six letters from "dsbcpr" (dying, shutdown, blocked, crashed,
  paused, running) or '-';
* MEM(k) is tot_pages × page size / 1024: the memory the domain holds now;
  MAXMEM(k) is max_pages, or "no limit" (two words) with MAXMEM(%) "n/a";
* VBD_RSECT/VBD_WSECT exist only in later versions, so the header decides
  which column is which.

With several iterations (`-i 2`) the last one is kept: the first one's CPU(%)
is meaningless, and the last is the freshest memory figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xenaudit.hypervisor.parse_error import RawParseError, is_count

_STATE = re.compile(r"[dsbcpr-]{6}")
_BANNER = re.compile(r"^xentop - \S+\s+Xen (?P<version>\S+)")
_COUNTS = re.compile(r"^\d+ domains: ")
_MEM_LINE = re.compile(r"^Mem: (?P<total>\d+)k total, (?P<used>\d+)k used, (?P<free>\d+)k free")
#: The name column is ten characters wide when xentop truncates it.
NAME_WIDTH = 10


@dataclass(frozen=True)
class XentopDomain:
    name: str
    #: The six state letters as printed.
    state: str
    #: MEM(k): what the domain holds (tot_pages), KiB.
    mem_kib: int
    #: MAXMEM(k); None for "no limit".
    maxmem_kib: int | None
    vcpus: int | None

    @property
    def maybe_truncated(self) -> bool:
        """The name fills the column exactly, so xentop may have cut it."""
        return len(self.name) == NAME_WIDTH


@dataclass(frozen=True)
class XentopReading:
    domains: tuple[XentopDomain, ...]
    iterations: int
    xen_version: str | None = None
    total_kib: int | None = None
    free_kib: int | None = None
    #: Lines that looked like neither header, banner nor domain row.
    skipped_lines: int = 0

    def match(self, name: str) -> XentopDomain | None:
        """The row for a full domain name; a cut name matches only when no other row shares it."""
        exact = [row for row in self.domains if row.name == name]
        if len(exact) == 1:
            return exact[0]
        if exact:
            return None
        cut = name[:NAME_WIDTH]
        candidates = [row for row in self.domains if row.maybe_truncated and row.name == cut]
        return candidates[0] if len(candidates) == 1 else None


def _row(line: str, columns: list[str]) -> XentopDomain | None:
    words = line.split()
    values: dict[str, str] = {}
    index = len(words) - 1
    for column in reversed(columns[1:]):
        if index < 0:
            return None
        if column == "MAXMEM(k)" and words[index] == "limit" and index > 0:
            if words[index - 1] != "no":
                return None
            values[column] = "no limit"
            index -= 2
            continue
        values[column] = words[index]
        index -= 1
    name_words = words[: index + 1]
    if not name_words or not _STATE.fullmatch(values.get("STATE", "")):
        return None
    mem, maxmem = values.get("MEM(k)", ""), values.get("MAXMEM(k)", "")
    if not is_count(mem) or not (is_count(maxmem) or maxmem == "no limit"):
        return None
    vcpus = values.get("VCPUS", "")
    return XentopDomain(
        name=" ".join(name_words),
        state=values["STATE"],
        mem_kib=int(mem),
        maxmem_kib=None if maxmem == "no limit" else int(maxmem),
        vcpus=int(vcpus) if is_count(vcpus) else None,
    )


def _looks_like_row(words: list[str]) -> bool:
    return len(words) > 2 and any(_STATE.fullmatch(word) for word in words[1:3])


def parse_xentop(text: str) -> XentopReading:
    """The last iteration of a `xentop -b` output; RawParseError when there is no table at all.

    Iterations start at a banner when there are banners; otherwise at each
    header, unless every row has its own header (`-r`): then a new iteration
    starts where Domain-0, listed once per iteration, comes round again.
    """
    lines = [line.strip() for line in text.splitlines()]
    banners = sum(1 for line in lines if _BANNER.match(line))
    headers = sum(1 for line in lines if line.split()[:2] == ["NAME", "STATE"])
    rows = sum(1 for line in lines if _looks_like_row(line.split()))
    repeated_headers = not banners and headers > 1 and headers == rows
    iterations: list[list[XentopDomain]] = []
    columns: list[str] | None = None
    version = total = free = None
    skipped = 0
    for line in lines:
        if not line:
            continue
        banner = _BANNER.match(line)
        if banner:
            version = banner["version"]
            iterations.append([])
            continue
        mem_line = _MEM_LINE.match(line)
        if mem_line:
            total, free = int(mem_line["total"]), int(mem_line["free"])
            continue
        if _COUNTS.match(line):
            continue
        words = line.split()
        if words[:2] == ["NAME", "STATE"]:
            columns = words
            if not banners and (not repeated_headers or not iterations):
                iterations.append([])
            continue
        if columns is None or not iterations:
            skipped += 1
            continue
        row = _row(line, columns)
        if row is None:
            skipped += 1
            continue
        if (
            repeated_headers
            and row.name == "Domain-0"
            and any(seen.name == "Domain-0" for seen in iterations[-1])
        ):
            iterations.append([])
        iterations[-1].append(row)
    if columns is None:
        raise RawParseError("xentop", "no NAME/STATE header: not the output of `xentop -b`")
    return XentopReading(
        domains=tuple(iterations[-1]) if iterations else (),
        iterations=len(iterations),
        xen_version=version,
        total_kib=total,
        free_kib=free,
        skipped_lines=skipped,
    )
