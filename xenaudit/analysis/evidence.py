"""Evidence lines quoted in findings, built the same way everywhere.

Kernel-log text is hostile: it is quoted shortened and without control
characters, and the formats escape it again when rendering.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from xenaudit.analysis.counters import CounterDelta
from xenaudit.analysis.interface import Evidence
from xenaudit.analysis.logevents import Tally
from xenaudit.analysis.signals import Signals
from xenaudit.parsers.interface import OomInvoked, OomKill, PageAllocFailure

#: Longest quoted text from a guest; longer text is cut with an ellipsis.
MAX_QUOTE = 300
#: At most this many events are quoted per finding; the rest are counted.
MAX_EVENTS = 5


#: "CPU: 2 PID: 24 Comm: ksoftirqd/2 Not tainted ..." (3.x and later) and the older
#: "Pid: 0, comm: swapper Not tainted ...".
_COMM = re.compile(r"(?:\bPID: \d+ Comm: |\bPid: \d+, comm: )(\S{1,64})")
#: A process name as the kernel prints it: no spaces, brackets or colons (TASK_COMM_LEN 16).
_PLAUSIBLE_COMM = re.compile(r"^[^\s\[\]:]{1,64}$")


def process_name(event: PageAllocFailure | OomInvoked) -> str:
    """The process a report names: its header's, else its "Comm:" line's.

    On multi-vCPU guests reports from several CPUs interleave, and a header
    can lose its process name or start in the middle of another CPU's line;
    the report's own "CPU: N PID: M Comm: X" line still names the task.
    """
    name = (event.process or "").strip()
    if _PLAUSIBLE_COMM.match(name):
        return name
    for entry in event.context[:12]:
        match = _COMM.search(entry.text)
        if match is not None:
            return match.group(1)
    return name.rsplit("] ", 1)[-1][-64:] or "?"


def clean(text: str, limit: int = MAX_QUOTE) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def meminfo(s: Signals) -> Evidence:
    text = f"MemTotal: {s.mem_total_kib} kB, MemAvailable: {s.mem_available_kib} kB"
    if s.available_pct is not None:
        text += f" ({s.available_pct:.1f}% available)"
    if s.available_estimated:
        text += " — " + (
            s.available_note
            or "MemAvailable estimated from MemFree + Buffers + Cached − Shmem (pre-3.14 kernel)"
        )
    return Evidence("meminfo", text)


def swap(s: Signals) -> Evidence:
    text = f"SwapTotal: {s.swap_total_kib} kB, swap used: {s.swap_used_kib} kB"
    if s.swap_used_pct is not None:
        text += f" ({s.swap_used_pct:.1f}% used)"
    return Evidence("meminfo", text)


def psi(s: Signals) -> Evidence:
    parts = []
    if s.psi_some_avg60 is not None:
        parts.append(f"some avg10={s.psi_some_avg10:.2f} avg60={s.psi_some_avg60:.2f}")
    if s.psi_full_avg60 is not None:
        parts.append(f"full avg10={s.psi_full_avg10:.2f} avg60={s.psi_full_avg60:.2f}")
    return Evidence("psi_memory", "; ".join(parts) or "no pressure lines")


def kswapd(s: Signals) -> Evidence | None:
    """kswapd's own counters: how often it went back to sleep too early, and direct reclaim."""
    if not s.reserve_counters:
        return None
    text = ", ".join(f"{name} {value}" for name, value in s.reserve_counters)
    return Evidence("vmstat", f"{text} (since boot)")


def counter(delta: CounterDelta) -> Evidence:
    return Evidence("vmstat", delta.describe())


def failure(s: Signals, event: PageAllocFailure) -> Evidence:
    """The header as printed; flags decoded from a bare hex mask are added after it."""
    stamp = f"[{event.timestamp}] " if event.timestamp else ""
    header = event.text or (
        f"{process_name(event)}: page allocation failure: order:{event.order}, "
        f"mode:{event.gfp_mask}"
    )
    decoded = ""
    if event.gfp_flags_source == "decoded" and event.gfp_flags:
        decoded = f"  [decoded: {'|'.join(event.gfp_flags)}]"
    return Evidence(f"kernlog ({s.kernlog_source})", clean(stamp + header + decoded), event.line)


def kill(s: Signals, event: OomKill) -> Evidence:
    stamp = f"[{event.timestamp}] " if event.timestamp else ""
    rss = rss_kib(event)
    if event.text:
        text = stamp + event.text
        if rss is not None:
            text += f" (RSS {round(rss / 1024)} MiB)"
        return Evidence(f"kernlog ({s.kernlog_source})", clean(text), event.line)
    what = "Memory cgroup out of memory: " if event.memcg else ""
    text = f"{stamp}{what}Killed process {event.victim_pid} ({event.victim_process})"
    details = []
    if event.total_vm_kib is not None:
        details.append(f"total-vm:{event.total_vm_kib}kB")
    for label, value in (
        ("anon-rss", event.anon_rss_kib),
        ("file-rss", event.file_rss_kib),
        ("shmem-rss", event.shmem_rss_kib),
    ):
        if value is not None:
            details.append(f"{label}:{value}kB")
    if details:
        text += " " + ", ".join(details)
    if rss is not None:
        text += f" (RSS {round(rss / 1024)} MiB)"
    return Evidence(f"kernlog ({s.kernlog_source})", clean(text), event.line)


def invoked(s: Signals, event: OomInvoked) -> Evidence:
    stamp = f"[{event.timestamp}] " if event.timestamp else ""
    if event.text:
        return Evidence(f"kernlog ({s.kernlog_source})", clean(stamp + event.text), event.line)
    text = f"{stamp}{event.process} invoked oom-killer: gfp_mask={event.gfp_mask}"
    if event.order is not None:
        text += f", order={event.order}"
    return Evidence(f"kernlog ({s.kernlog_source})", clean(text), event.line)


def rss_kib(event: OomKill) -> int | None:
    parts = [event.anon_rss_kib, event.file_rss_kib, event.shmem_rss_kib]
    if all(p is None for p in parts):
        return None
    return sum(p or 0 for p in parts)


def shown(quoted: int, total: Tally | int, what: str) -> Evidence:
    """How many of all the events of a kind are quoted ("5 of 2,112 failure reports shown")."""
    count = total if isinstance(total, Tally) else Tally(total, total)
    return Evidence("kernlog", f"{quoted} of {count} {what} shown, the newest")


def processes(s: Signals) -> Evidence | None:
    if not s.top_processes:
        return None
    listed = ", ".join(
        f"{clean(p.comm, 40)} (pid {p.pid}) {round(p.rss_kib / 1024)} MiB" for p in s.top_processes
    )
    return Evidence("ps", f"largest processes by RSS: {listed}")


def failures(
    s: Signals, events: Sequence[PageAllocFailure], total: Tally | None = None
) -> tuple[Evidence, ...]:
    """The newest failure reports quoted, with how many there are in all (`total`, exact over
    the whole log, for reports the parser counted without keeping) when not all are quoted."""
    quoted = [failure(s, e) for e in events[-MAX_EVENTS:]]
    count = total if total is not None else Tally(len(events), len(events))
    if count.high > len(quoted):
        quoted.insert(0, shown(len(quoted), count, "failure reports"))
    return tuple(quoted)


def orders(events: Sequence[PageAllocFailure], total: Tally) -> str:
    """The orders of the reports kept ("0, 3"), saying so when not every report was kept."""
    text = ", ".join(str(order) for order in sorted({e.order for e in events}))
    if total.high > len(events):
        text += f" (in the {len(events)} reports kept)"
    return text


def stale_note(s: Signals) -> str:
    last = s.nights[-1].run_at if s.nights else "the last run"
    return f"No new ones since {last}: these reports are still in the kernel log"
