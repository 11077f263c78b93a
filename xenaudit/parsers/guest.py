"""Parse every section of one guest snapshot into GuestFacts, never raising.

One bad section must not hide the others: a ParseError becomes an entry in
``GuestFacts.errors`` ("<domain>: <section>: <message>") and that field stays
None. Sections the collector marked missing, denied or failed are skipped silently
(that is already recorded in the snapshot's section status, and an error
message parsed as a log would look like a quiet log); a "denied" slabinfo is
recorded as such because it is a normal, non-root outcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from xenaudit.parsers.balloon import parse_balloon
from xenaudit.parsers.buddyinfo import parse_buddyinfo
from xenaudit.parsers.interface import GuestFacts, ParseError, Slabinfo
from xenaudit.parsers.kernlog import DEFAULT_KEEP_PER_KIND, parse_kernlog
from xenaudit.parsers.meminfo import parse_meminfo
from xenaudit.parsers.ps import parse_ps
from xenaudit.parsers.psi import parse_psi
from xenaudit.parsers.slabinfo import parse_slabinfo
from xenaudit.parsers.sysvm import parse_sysvm
from xenaudit.parsers.vmstat import parse_vmstat

T = TypeVar("T")

_RELEASE_RE = re.compile(r"\b(\d+\.\d+(?:\.\d+)?[\w.+~-]*)")
_SKIP_STATUSES = ("missing", "denied", "error", "skipped")


def kernel_release_of(uname: str | None) -> str | None:
    """The release from ``uname -r`` or ``uname -a`` output, e.g. "4.15.0-213-generic"."""
    if not uname:
        return None
    for line in uname.splitlines():
        words = line.split()
        # "uname -a": "Linux host 4.15.0-213-generic #224-Ubuntu SMP ..."
        candidates = words[2:3] if len(words) > 3 and words[0] == "Linux" else words[:1]
        for word in candidates:
            match = _RELEASE_RE.match(word)
            if match is not None:
                return match.group(1)
    return None


def page_size_kib_of(uname: str | None) -> int:
    """The page size the probe printed under the release (`getconf PAGESIZE`), in KiB.

    Buddy lists count pages, so a 64 KiB-page guest (some arm64 kernels) would
    otherwise look sixteen times poorer in large blocks than it is.
    """
    for line in (uname or "").splitlines()[1:]:
        word = line.strip()
        if word.isdigit():
            size = int(word)
            if 4096 <= size <= 1 << 20 and size & (size - 1) == 0:
                return size // 1024
    return 4


def boot_time_of(uname: str | None) -> int | None:
    """The guest's boot time (Unix seconds) from the probe's ``btime`` line (/proc/stat).

    Kernel-log lines from dmesg carry seconds since boot; with the boot time the
    report can say when an event happened on the wall clock.
    """
    for line in (uname or "").splitlines()[1:]:
        words = line.split()
        if len(words) == 2 and words[0] == "btime" and words[1].isdigit():
            value = int(words[1])
            # Before 2000 or after 2200 is a broken clock, not a boot time.
            if 946684800 <= value <= 7258118400:
                return value
    return None


def parse_guest(
    sections: Mapping[str, str],
    section_status: Mapping[str, str] | None = None,
    domain: str = "?",
    *,
    keep_events: int | None = DEFAULT_KEEP_PER_KIND,
) -> GuestFacts:
    """GuestFacts from a snapshot's sections (name -> text), as far as they parse.

    ``keep_events`` caps the kernel-log events kept per kind (first and last N);
    their counts stay exact. None keeps every event.
    """
    status = dict(section_status or {})
    errors: list[str] = []

    def text_of(name: str) -> str | None:
        text = sections.get(name)
        if text is None or status.get(name) in _SKIP_STATUSES:
            return None
        return text

    def run(name: str, parser: Callable[[str], T]) -> T | None:
        text = text_of(name)
        if text is None:
            return None
        try:
            return parser(text)
        except ParseError as exc:
            where = f"line {exc.line}: " if exc.line is not None else ""
            errors.append(f"{domain}: {name}: {where}{exc.message}")
        except Exception as exc:  # a parser bug must not lose the other sections
            errors.append(f"{domain}: {name}: unexpected {type(exc).__name__}: {exc}")
        return None

    slabinfo: Slabinfo | None
    if status.get("slabinfo") == "denied":
        slabinfo = Slabinfo(state="denied", version=None)
    else:
        slabinfo = run("slabinfo", parse_slabinfo)

    release = kernel_release_of(text_of("uname"))
    balloon = run("balloon", parse_balloon) or (None, None)
    return GuestFacts(
        meminfo=run("meminfo", parse_meminfo),
        buddyinfo=run(
            "buddyinfo",
            lambda text: parse_buddyinfo(text, page_size_kib=page_size_kib_of(text_of("uname"))),
        ),
        vmstat=run("vmstat", parse_vmstat),
        psi=run("psi_memory", parse_psi),
        slabinfo=slabinfo,
        sysvm=run("sysvm", parse_sysvm),
        processes=run("ps", parse_ps) or (),
        kernlog=run(
            "kernlog",
            lambda text: parse_kernlog(text, kernel_release=release, keep_per_kind=keep_events),
        ),
        balloon_target_kib=balloon[0],
        balloon_current_kib=balloon[1],
        errors=tuple(errors),
    )
