"""One finding per OOM kill, with the victim, its RSS and what the report says caused it.

Kills already seen by an earlier run (still in the ring buffer) are listed
as info once they are resolved; while unresolved (memory unchanged since,
see unresolved.py) they keep their severity. Cgroup kills point at the
cgroup's limit, and kills only the vmstat counter saw are treated as the
guest's own. Each kill names its cause when its report shows one other than
a shortage (fragmentation, a zone, a slab leak).
"""

from __future__ import annotations

from collections.abc import Sequence

from xenaudit.analysis import evidence as ev
from xenaudit.analysis.interface import Finding, Severity
from xenaudit.analysis.oomcause import OomCause
from xenaudit.analysis.signals import Signals
from xenaudit.parsers.interface import OomInvoked

#: At most this many oom_kill findings per kind; further kills are summed up.
MAX_KILL_FINDINGS = 10


def _cause_before(
    line: int, invocations: Sequence[OomInvoked], causes: Sequence[OomCause]
) -> tuple[OomCause, OomInvoked] | None:
    """The cause read from the report that led to the kill on `line` (the last one before it)."""
    pairs = [(c, i) for c, i in zip(causes, invocations, strict=False) if i.line <= line]
    return pairs[-1] if pairs else None


def _stale(s: Signals, detail: str, carried: bool) -> tuple[Severity, str]:
    unresolved = s.unresolved
    if carried and unresolved is not None:
        text = unresolved.describe()
        return "critical", detail + " " + text[0].upper() + text[1:] + "."
    return "info", detail + " " + ev.stale_note(s) + "."


def _explained(detail: str, found: tuple[OomCause, OomInvoked] | None) -> str:
    if found is None:
        return detail
    cause, invoked = found
    order = f" (order {invoked.order})" if invoked.order else ""
    who = f" The allocation came from {cause.caller.description}." if cause.caller else ""
    if cause.kind == "shortage":
        return detail + who if invoked.order else detail
    return f"{detail} Its report{order} shows this was not a plain shortage: {cause.text}{who}"


def _invoked_finding(
    s: Signals,
    invoked: OomInvoked,
    cause: OomCause | None,
    missing: str,
    fresh: bool,
    carried: bool,
) -> Finding:
    """An "invoked oom-killer" report without its kill; `missing` says why it stands alone."""
    who = ev.clean(ev.process_name(invoked), 60)
    detail = f"{who} could not get memory and invoked the OOM killer; {missing}."
    detail = _explained(detail, (cause, invoked) if cause is not None else None)
    severity: Severity = "critical"
    if not fresh:
        severity, detail = _stale(s, detail, carried)
    return Finding(
        "oom_kill", severity, f"OOM killer invoked by {who}", detail, (ev.invoked(s, invoked),)
    )


def oom_findings(
    s: Signals, causes: Sequence[OomCause] = (), carried: bool = False
) -> list[Finding]:
    findings: list[Finding] = []
    kills = s.guest_oom_kills
    invocations = s.guest_oom_invocations
    fresh_from = len(kills) - s.fresh_guest_oom_kills
    shown = list(enumerate(kills))[-MAX_KILL_FINDINGS:]
    for index, kill in shown:
        is_fresh = index >= fresh_from
        rss = ev.rss_kib(kill)
        rss_text = f", RSS {round(rss / 1024)} MiB" if rss is not None else ""
        victim = ev.clean(kill.victim_process, 60)
        detail = (
            f"The guest ran out of memory and the kernel killed {victim} "
            f"(pid {kill.victim_pid}{rss_text})."
        )
        found = _cause_before(kill.line, invocations, causes)
        detail = _explained(detail, found)
        severity: Severity = "critical"
        if not is_fresh:
            severity, detail = _stale(s, detail, carried)
        evidence = [ev.kill(s, kill)]
        if found is not None:
            evidence.insert(0, ev.invoked(s, found[1]))
        findings.append(
            Finding(
                "oom_kill",
                severity,
                f"OOM kill: {victim} (pid {kill.victim_pid}{rss_text})",
                detail,
                tuple(evidence),
            )
        )
    last_kill = max((k.line for k in kills), default=None)
    if last_kill is not None:
        # Reports after the last kill line: the kill was cut off, or nothing was killable.
        known: list[OomCause | None] = list(causes) or [None] * len(invocations)
        for invoked, cause in zip(invocations, known, strict=False):
            if invoked.line > last_kill:
                findings.append(
                    _invoked_finding(
                        s,
                        invoked,
                        cause,
                        "no kill follows it in the log (cut, or nothing was left to kill)",
                        bool(s.fresh_guest_oom_kills),
                        carried,
                    )
                )
    if not kills:
        fresh_from = len(invocations) - s.fresh_guest_oom_kills
        pairs = list(zip(invocations, causes, strict=False)) if causes else []
        for index, invoked in list(enumerate(invocations))[-MAX_KILL_FINDINGS:]:
            findings.append(
                _invoked_finding(
                    s,
                    invoked,
                    next((c for i, c in pairs if i is invoked), None),
                    "the line naming the killed process is not in the log (cut or rotated)",
                    index >= fresh_from,
                    carried,
                )
            )
    total_kills = max(len(kills), s.guest_oom_kill_lines)
    if total_kills > MAX_KILL_FINDINGS:
        findings.append(
            Finding(
                "oom_kill",
                "critical" if s.fresh_guest_oom_kills > MAX_KILL_FINDINGS else "info",
                f"{total_kills - MAX_KILL_FINDINGS:,} earlier OOM kills",
                "Only the newest kills are listed one by one.",
                (ev.shown(MAX_KILL_FINDINGS, total_kills, "OOM kills"),),
            )
        )
    if s.unlogged_oom_kills:
        findings.append(
            Finding(
                "oom_kill",
                "critical",
                f"{s.unlogged_oom_kills} OOM kill(s) counted but not in the log",
                "The vmstat oom_kill counter grew but the kernel log no longer shows the "
                "reports (rotated or cut); we cannot tell whether a cgroup limit or the "
                "guest ran out, so they are treated as guest OOM kills.",
                (ev.counter(s.oom_kill_counter),),
            )
        )
    for kill in s.memcg_oom_kills[-MAX_KILL_FINDINGS:]:
        findings.append(
            Finding(
                "oom_kill",
                "warning",
                f"Cgroup OOM kill: {ev.clean(kill.victim_process, 60)} (pid {kill.victim_pid})",
                "A memory cgroup (container or systemd unit) hit its own limit; the guest "
                "had memory left. Raise that cgroup's memory.max (MemoryMax=), not the domain.",
                (ev.kill(s, kill),),
            )
        )
    return findings
