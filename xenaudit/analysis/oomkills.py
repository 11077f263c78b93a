"""One finding per OOM kill, with the victim and its RSS.

Kills already seen by an earlier run (still in the ring buffer) are listed
as info, cgroup kills point at the cgroup's limit, and kills only the vmstat
counter saw are treated as the guest's own.
"""

from __future__ import annotations

from xenaudit.analysis import evidence as ev
from xenaudit.analysis.interface import Finding
from xenaudit.analysis.signals import Signals

#: At most this many oom_kill findings per kind; further kills are summed up.
MAX_KILL_FINDINGS = 10


def oom_findings(s: Signals) -> list[Finding]:
    findings: list[Finding] = []
    kills = s.guest_oom_kills
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
        if not is_fresh:
            detail += " " + ev.stale_note(s) + "."
        findings.append(
            Finding(
                "oom_kill",
                "critical" if is_fresh else "info",
                f"OOM kill: {victim} (pid {kill.victim_pid}{rss_text})",
                detail,
                (ev.kill(s, kill),),
            )
        )
    if not kills:
        invocations = s.guest_oom_invocations
        fresh_from = len(invocations) - s.fresh_guest_oom_kills
        for index, invoked in list(enumerate(invocations))[-MAX_KILL_FINDINGS:]:
            is_fresh = index >= fresh_from
            who = ev.clean(invoked.process, 60)
            detail = (
                f"{who} could not get memory and invoked the OOM killer; the line naming the "
                "killed process is not in the log (cut or rotated)."
            )
            if not is_fresh:
                detail += " " + ev.stale_note(s) + "."
            findings.append(
                Finding(
                    "oom_kill",
                    "critical" if is_fresh else "info",
                    f"OOM killer invoked by {who}",
                    detail,
                    (ev.invoked(s, invoked),),
                )
            )
    if len(kills) > MAX_KILL_FINDINGS:
        findings.append(
            Finding(
                "oom_kill",
                "critical" if s.fresh_guest_oom_kills > MAX_KILL_FINDINGS else "info",
                f"{len(kills) - MAX_KILL_FINDINGS} earlier OOM kills",
                "Only the newest kills are listed one by one.",
                (ev.more(len(kills) - MAX_KILL_FINDINGS, "OOM kills"),),
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
