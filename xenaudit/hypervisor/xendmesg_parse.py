"""The hypervisor's own log (`xl dmesg`, `xm dmesg`): PoD exhaustion and domain crashes.

Messages, as printed by xen-project/xen:

* xen/arch/x86/mm/p2m-pod.c (p2m_pod_demand_populate):
  `"%s: Dom%d out of PoD memory! (tot=%u ents=%ld dom%d)"` then domain_crash();
  some builds print it without the trailing `domN` (the domain that was
  running when it happened);
* xen/include/xen/sched.h (domain_crash): `"domain_crash called from %s:%d"`,
  later `"domain_crash called from %ps"` (symbol+offset);
* xen/common/domain.c (__domain_crash): `"Domain %d (vcpu#%d) crashed on
  cpu#%d:"` when the domain itself was running, `"Domain %d reported crashed
  by domain %d on cpu#%d:"` otherwise.

Lines carry `(XEN) ` and, with console_timestamps, `[seconds]`; copies from
serial consoles or syslog carry their own prefix before `(XEN)`. Guests can
write to the console too (the `(dN)` prefix, `HVMN:` on old versions): those
lines are guest text and never count as the hypervisor's word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PREFIX = re.compile(r"^.*?\(XEN\) ?")
_STAMP = re.compile(r"^\[[^\]]{1,40}\]\s*")
_GUEST_TEXT = re.compile(r"^(?:\(d\d+\)|HVM\d+:)")
_POD = re.compile(
    r"\bDom(?P<domid>\d{1,5}) out of PoD memory! \(tot=(?P<tot>\d+) ents=(?P<ents>-?\d+)"
    r"(?: dom(?P<context>\d{1,5}))?\)"
)
_CRASHED = re.compile(r"\bDomain (?P<domid>\d{1,5}) \(vcpu#\d+\) crashed on cpu#\d+:")
_REPORTED = re.compile(
    r"\bDomain (?P<domid>\d{1,5}) reported crashed by domain (?P<by>\d{1,5}) on cpu#\d+:"
)
_CALLED = re.compile(r"\bdomain_crash called from (?P<where>\S{1,120})")
#: How far back a "domain_crash called from" line is taken as the cause of a crash line.
_CAUSE_WINDOW = 4
MAX_LINE_CHARS = 2000


@dataclass(frozen=True)
class PodExhausted:
    """Xen could not populate a PoD guest's page: the guest touched more than `memory`."""

    domid: int
    #: Pages the domain held then (tot=).
    tot_pages: int
    #: Outstanding populate-on-demand entries (ents=).
    entries: int
    line: int
    text: str


@dataclass(frozen=True)
class DomainCrashed:
    domid: int
    line: int
    text: str
    #: The code that called domain_crash, when the log says (e.g. "p2m-pod.c:1218").
    called_from: str | None = None
    #: Another domain reported the crash (e.g. 0 for a toolstack-detected failure).
    reported_by: int | None = None


XenEvent = PodExhausted | DomainCrashed


@dataclass(frozen=True)
class XenLog:
    events: tuple[XenEvent, ...]
    lines_read: int

    def for_domid(self, domid: int) -> tuple[XenEvent, ...]:
        return tuple(event for event in self.events if event.domid == domid)


def _message(line: str) -> str:
    message = _PREFIX.sub("", line, count=1) if "(XEN)" in line else line
    return _STAMP.sub("", message, count=1)


def parse_xen_dmesg(text: str) -> XenLog:
    """Every PoD exhaustion and domain crash in the log, with its 1-based line number."""
    events: list[XenEvent] = []
    recent_cause: tuple[int, str] | None = None
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw[:MAX_LINE_CHARS]
        message = _message(line).strip()
        if not message or _GUEST_TEXT.match(message):
            continue
        quoted = message[:300]
        called = _CALLED.search(message)
        if called is not None:
            recent_cause = (number, called["where"])
            continue
        pod = _POD.search(message)
        if pod is not None:
            events.append(
                PodExhausted(int(pod["domid"]), int(pod["tot"]), int(pod["ents"]), number, quoted)
            )
            continue
        crash = _CRASHED.search(message) or _REPORTED.search(message)
        if crash is not None:
            cause = None
            if recent_cause is not None and number - recent_cause[0] <= _CAUSE_WINDOW:
                cause = recent_cause[1]
            by = crash.groupdict().get("by")
            events.append(
                DomainCrashed(
                    int(crash["domid"]),
                    number,
                    quoted,
                    called_from=cause,
                    reported_by=int(by) if by is not None else None,
                )
            )
            recent_cause = None
    return XenLog(tuple(events), len(lines))
