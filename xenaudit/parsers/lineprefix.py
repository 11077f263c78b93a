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
from collections import namedtuple

from xenaudit.parsers.lazyre import lazy

TYPE_CHECKING = False  # typing is not imported at run time (start-up of small scans)
if TYPE_CHECKING:
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
# "[ 1234.567890]" (some vendor kernels print "[1234.567890s]"), or dmesg -T's date.
_STAMP = (
    r"\[\s*(?P<uptime>\d+\.\d+)s?\] ?"
    rf"|\[(?P<human>{_WDAY} {_MONTH} [ \d]\d \d\d:\d\d:\d\d \d{{4}})\] ?"
)
# Who printed the line, after the stamp: CONFIG_PRINTK_CALLER's "[    C1]" (CPU,
# from interrupt context) or "[  T123]" (task), or a vendor kernel's
# "[pid:1361,cpu5,name]" (the task's own name then starts the message).
_CALLER = (
    r"\[\s*(?P<caller>[CT]\d+)\] ?"
    r"|\[pid:(?P<vpid>\d+),cpu(?P<vcpu>\d+),[^\]\n]{0,64}\] ?"
)
# A file name in front, as "grep -r" or "grep -H" prints it, before a syslog date.
_FILE = (
    r"(?:[\w.+~-]*/[\w./+~-]*|[\w.+~-]*(?:log|messages)[\w.+~-]*):"
    rf"(?=<\d|{_MONTH} [ \d]\d |\d{{4}}-\d\d-\d\d[T ])"
)
_PREFIX_RE = lazy(
    rf"(?:{_FILE})?"
    rf"(?:<(?P<prio0>\d{{1,3}})>)?(?:{_RFC5424}|{_WALL}|{_BARE})?(?:<(?P<prio1>\d{{1,3}})>)?"
    rf"(?:{_FACILITY})?(?:<(?P<prio2>\d{{1,3}})>)?(?:{_STAMP})?(?:{_CALLER})?"
)

# journalctl -o short-monotonic: "[ 1234.567890] host kernel: text".
_MONO_TAIL_RE = lazy(r"(?P<host>\S+) (?P<tag>kernel)(?:\[\d+\])?: ?")
_TAG_TAIL_RE = lazy(r"kernel: ?")


if TYPE_CHECKING:

    class Stripped(NamedTuple):
        """A line split into its prefix facts and the kernel message text."""

        timestamp: str | None
        text: str
        is_kernel: bool
        has_prefix: bool
        caller: str | None = None

else:
    # The same named tuple, made without importing typing (start-up of small scans).
    Stripped = namedtuple(
        "Stripped", ("timestamp", "text", "is_kernel", "has_prefix", "caller"), defaults=(None,)
    )
    Stripped.__doc__ = """A line split into its prefix facts and the kernel message text.

    ``timestamp`` as printed; ``text`` the message; ``is_kernel`` False for syslog or
    journal lines whose tag is not the kernel's (daemons); ``has_prefix`` True when
    any prefix was recognised (used to spot wrapped continuation lines); ``caller``
    who printed it, when the prefix says: "C1"/"T123" (printk caller id) or "cpu5"
    (vendor task prefix), by which lines of interleaved reports group.

    A named tuple rather than a frozen dataclass: one is built per line read, and
    tuples are several times cheaper to create.
    """


# The two shapes nearly every line has (raw dmesg, and rsyslog's kern.log with the
# dmesg stamp inside), matched first because the full pattern costs several times
# more. A line they match gives exactly what the full pattern gives; anything that
# might need the full pattern (a caller tag, a priority, a journal tail) falls
# through to it.
_NOT_MORE = r"(?!\[\s*[CT]\d+\]|\[pid:|<\d|\[\s*\d+\.\d+s?\]|\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )"
_FAST_DMESG_RE = lazy(r"\[\s*(\d+\.\d+)\] ?+" + _NOT_MORE + r"(?!\S+ kernel|kernel:)")
_FAST_SYSLOG_RE = lazy(
    f"({_SYSLOG_DATE})" + r" [^\s\[<]\S* kernel: ?+(?:\[\s*\d+\.\d+\] ?+)?+" + _NOT_MORE
)


# The same two shapes for a run of lines held in one string (the block reader in
# kernscan): matched at a line start, a line they match gives the timestamp and text
# that strip_prefix gives for it alone. Blanks that the one-line forms match with
# "\s" exclude the newline here, and the host is bounded, so a match never reaches
# into the next line; a line they do not match is read alone. Groups: the dmesg
# stamp, the syslog date, the text (without its newline).
_BLOCK_PREFIX = (
    r"(?:\[[^\S\n]{0,32}(\d{1,20}\.\d{1,20})\] ?+" + _NOT_MORE + r"(?!\S+ kernel|kernel:)"
    rf"|({_SYSLOG_DATE}) [^\s\[<]\S{{0,255}} kernel: ?+"
    r"(?:\[[^\S\n]{0,32}\d{1,20}\.\d{1,20}\] ?+)?+" + _NOT_MORE + ")"
)
#: One line of a block, newline included.
BLOCK_LINE_RE = lazy(_BLOCK_PREFIX + r"([^\n]*)\n")


#: Lines joined with "\n" and preceded by one, whole: ``findall`` gives the text of
#: every line the block prefix matches (a line it does not match gives nothing).
JOINED_TEXTS_RE = lazy(
    "\n"
    + _BLOCK_PREFIX.replace("(\\d{1,20}\\.", "(?:\\d{1,20}\\.", 1).replace(
        "|((?:Jan", "|(?:(?:Jan", 1
    )
    + r"([^\n]*)"
)


def block_pattern(text: str) -> str:
    """A pattern for one block line whose message matches ``text`` (groups as in
    BLOCK_LINE_RE; ``text`` must not match a newline)."""
    return _BLOCK_PREFIX + f"({text})\n"


def strip_prefix(line: str) -> Stripped:
    """Split one line (no line terminator) into timestamp and message text."""
    first = line[:1]
    if first == "[":
        fast = _FAST_DMESG_RE.match(line)
        if fast is not None:
            return _new(Stripped, (fast.group(1), line[fast.end() :], True, True, None))
    elif first in _MONTH_INITIALS:
        fast = _FAST_SYSLOG_RE.match(line)
        if fast is not None:
            return _new(Stripped, (fast.group(1), line[fast.end() :], True, True, None))
    return _strip_full(line)


#: Builds a Stripped from a complete tuple without the generated __new__'s call.
_new = tuple.__new__


_MONTH_INITIALS = frozenset("JFMASOND")


def _strip_full(line: str) -> Stripped:
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
    if uptime is not None and wall is None and bare is None and "kernel" in text[:80]:
        # journalctl -o short-monotonic ("host kernel:"), or a journal pasted into
        # dmesg form with only the tag left ("[ 1.234567] kernel: text").
        mono = _MONO_TAIL_RE.match(text) or _TAG_TAIL_RE.match(text)
        if mono is not None:
            text = text[mono.end() :]
    caller, vcpu = match.group("caller", "vcpu")
    if vcpu is not None:
        caller = f"cpu{vcpu}"
    return Stripped(wall or human or uptime, text, is_kernel, True, caller)


_CUT_START_RE = lazy(
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
