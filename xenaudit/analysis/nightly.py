"""Pressure between two nightly samples, from the counters that only grow.

A snapshot a night misses the day's peak: a guest can reclaim, swap and
stall all afternoon and look calm at 02:30. The kernel's cumulative
counters remember; their growth between two nights shows what the snapshot
did not:

* PSI memory ``some total`` (µs tasks stalled on memory, 4.20+);
* ``allocstall*`` and ``pgscan_direct*``: allocations that had to reclaim
  themselves (kswapd could not keep up);
* ``compact_stall``: allocations that waited for compaction (high order);
* ``workingset_refault*`` (3.15+): pages read back soon after reclaim threw
  them out, i.e. the cache was too small;
* ``pswpin``: pages read back from swap; ``oom_kill`` (4.13+): kills;
* ``pgmajfault``: faults that read from disk. They also count a file's first
  read, so they are only counted as pressure on kernels without
  workingset_refault, which tells refaults apart.

Any of them rising between two nights blocks a decrease and marks the night
as one with pressure. PSI counts as rising from one second of stalls on;
the rest from one event. A counter that went down is a reboot: the value
since boot counts as the growth, except for pgmajfault (booting faults in
every program from disk).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from xenaudit.analysis.interface import HistoryNight

#: btime moves by a second or two with clock adjustments; more is another boot.
BOOT_TIME_SLACK_S = 120
#: Stalls below this between two nights are noise (µs).
PSI_NOISE_US = 1_000_000

#: (HistoryNight attribute, name as the kernel prints it).
COUNTERS: tuple[tuple[str, str], ...] = (
    ("psi_some_total_us", "PSI memory some total"),
    ("allocstall", "allocstall"),
    ("pgscan_direct", "pgscan_direct"),
    ("compact_stall", "compact_stall"),
    ("workingset_refault", "workingset_refault"),
    ("pswpin", "pswpin"),
    ("oom_kill_counter", "oom_kill"),
    ("pgmajfault", "pgmajfault"),
)


@dataclass(frozen=True)
class Rise:
    counter: str
    since: str
    until: str
    delta: int
    after_reboot: bool = False

    def describe(self) -> str:
        amount = (
            f"{self.delta / 1_000_000:.1f} s of stalls"
            if self.counter.startswith("PSI")
            else f"+{self.delta}"
        )
        where = f"{self.since} → {self.until}"
        return f"{self.counter} {amount} ({where}{', since a reboot' if self.after_reboot else ''})"


def _rises(previous: HistoryNight, current: HistoryNight, until: str) -> list[Rise]:
    found: list[Rise] = []
    refault_known = current.workingset_refault is not None
    clock_reboot = (
        previous.boot_time is not None
        and current.boot_time is not None
        and abs(current.boot_time - previous.boot_time) > BOOT_TIME_SLACK_S
    )
    for attr, name in COUNTERS:
        before, now = getattr(previous, attr), getattr(current, attr)
        if before is None or now is None:
            continue
        reboot = clock_reboot or now < before
        delta = now if reboot else now - before
        if attr == "pgmajfault" and (refault_known or reboot):
            continue
        floor = PSI_NOISE_US if attr == "psi_some_total_us" else 1
        if delta >= floor:
            found.append(Rise(name, previous.run_at, until, delta, reboot))
    return found


def rises_between(
    nights: Sequence[HistoryNight], tonight: HistoryNight | None
) -> tuple[tuple[Rise, ...], tuple[Rise, ...]]:
    """(rises between consecutive history nights, rises from the last night to tonight)."""
    earlier: list[Rise] = []
    for previous, current in itertools.pairwise(nights):
        earlier.extend(_rises(previous, current, current.run_at))
    tonight_rises: list[Rise] = []
    if tonight is not None and nights:
        tonight_rises = _rises(nights[-1], tonight, "tonight")
    return tuple(earlier), tuple(tonight_rises)
