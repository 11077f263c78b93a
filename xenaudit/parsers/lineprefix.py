"""Strip the prefixes that dmesg, syslog and journald put in front of kernel messages.

The same kernel message reaches us in many wrappings: raw console output,
``dmesg`` (uptime, ``-T`` wall clock, ``-x`` facility/level, ``-r`` priority),
``/var/log/kern.log`` via rsyslog (classic, high-precision ISO or RFC 5424),
``journalctl -k`` (short, short-iso, short-precise, short-monotonic,
short-full) and copies that kept only the ``kernel:`` tag. Event detection
must see the message text alone, while the timestamp is kept as printed.

When a line carries several timestamps (syslog date, then a dmesg uptime), the
first one printed is kept: it is the wall clock when there is one.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_WDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"

# One line, left to right: [<prio>] [wall-clock host tag:] [<prio>] [facility:level:]
# [<prio>] [[uptime] | [dmesg -T date]] text. Built from pieces to keep each readable.
_SYSLOG_DATE = _MONTH + r" [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?"  # syslog, journalctl short(-precise)
_ISO_DATE = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_FULL_DATE = _WDAY + r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? [A-Za-z][A-Za-z+\-\d]*"
_WALL = (
    rf"(?P<wall>{_SYSLOG_DATE}|{_ISO_DATE}|{_FULL_DATE})"
    r" (?P<host>\S+) (?P<tag>[^\s:\[]+)(?:\[\d+\])?: ?"
)
_BARE = r"(?P<bare>kernel): ?"
# RFC 5424 (rsyslog/syslog-ng "protocol 23" files, forwarded logs), after its <PRI>:
# VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG, "-" for nil.
_RFC5424 = (
    rf"1 (?P<wall5>{_ISO_DATE}|-) (?P<host5>\S+) (?P<tag5>\S+) \S+ \S+ "
    r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+) ?"
)
_FACILITY = (
    r"(?P<fac>kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7]) *:"
    r"(?P<lvl>emerg|alert|crit|err|warn|notice|info|debug) *: ?"
)
_STAMP = (
    r"\[\s*(?P<uptime>\d+\.\d+)\] ?"
    rf"|\[(?P<human>{_WDAY} {_MONTH} [ \d]\d \d\d:\d\d:\d\d \d{{4}})\] ?"
)
_PREFIX_RE = re.compile(
    rf"(?:<(?P<prio0>\d{{1,3}})>)?(?:{_RFC5424}|{_WALL}|{_BARE})?(?:<(?P<prio1>\d{{1,3}})>)?"
    rf"(?:{_FACILITY})?(?:<(?P<prio2>\d{{1,3}})>)?(?:{_STAMP})?"
)

# journalctl -o short-monotonic: "[ 1234.567890] host kernel: text".
_MONO_TAIL_RE = re.compile(r"(?P<host>\S+) (?P<tag>kernel)(?:\[\d+\])?: ?")


class Stripped(NamedTuple):
    """A line split into its prefix facts and the kernel message text.

    A named tuple rather than a frozen dataclass: one is built per line read, and
    tuples are several times cheaper to create.
    """

    timestamp: str | None
    text: str
    #: False for syslog/journal lines whose tag is not the kernel's (daemons).
    is_kernel: bool
    #: True when any prefix was recognised (used to spot wrapped continuation lines).
    has_prefix: bool


def strip_prefix(line: str) -> Stripped:
    """Split one line (no line terminator) into timestamp and message text."""
    match = _PREFIX_RE.match(line)
    # The pattern is all optional, so it always matches (possibly empty).
    assert match is not None
    end = match.end()
    if end == 0:
        return Stripped(None, line, True, False)
    wall, tag, bare, uptime, human = match.group("wall", "tag", "bare", "uptime", "human")
    if match.group("tag5") is not None:
        wall5 = match.group("wall5")
        wall, tag = (None if wall5 == "-" else wall5), match.group("tag5")
    is_kernel = tag is None or tag.startswith("kernel")
    text = line[end:]
    if uptime is not None and wall is None and bare is None and " kernel" in text:
        mono = _MONO_TAIL_RE.match(text)
        if mono is not None:
            text = text[mono.end() :]
    return Stripped(wall or human or uptime, text, is_kernel, True)


_CUT_START_RE = re.compile(
    r"""
    [\d.]*\d\]\s                              # "...567890] text": inside a dmesg stamp
  | [a-z]{1,2}\ [ \d]\d\ \d\d:\d\d:\d\d\ \S+\ \S+:   # "ov 25 10:00:00 host kernel:"
  | \d?\d:\d\d(?::\d\d)?(?:\.\d+)?\ \S+\ kernel:     # "0:00:00 host kernel:"
  | [^\[\]]*\d{4}\]\s                          # tail of a dmesg -T stamp
    """,
    re.VERBOSE,
)


def looks_like_cut_start(line: str) -> bool:
    """True when a line starts inside a prefix, as the first line of a cut excerpt does."""
    return _CUT_START_RE.match(line) is not None
