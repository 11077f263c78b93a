"""Nightly deltas of ever-growing numbers: vmstat counters and kernel-log events.

Both only make sense against the previous run, and both have the same
traps: a reboot resets counters (a decrease is a reboot, not a negative
rate), and the kernel ring buffer shows the same old reports night after
night.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xenaudit.analysis.interface import HistoryNight


@dataclass(frozen=True)
class CounterDelta:
    """A /proc/vmstat counter tonight against the previous run.

    `delta` is the increase since the previous run; after a reboot (the
    counter went down) it is tonight's value, i.e. the increase since boot.
    Without a previous run it is None: a since-boot total says nothing about
    a rate.
    """

    name: str
    value: int | None
    previous: int | None = None
    previous_at: str | None = None
    delta: int | None = None
    reset: bool = False

    def describe(self) -> str:
        if self.value is None:
            return f"{self.name} not reported"
        if self.delta is None:
            return f"{self.name} {self.value} since boot (no earlier run to compare)"
        if self.reset:
            return (
                f"{self.name} {self.value} since boot (counter went down from "
                f"{self.previous} on {self.previous_at}: the guest rebooted)"
            )
        return (
            f"{self.name} +{self.delta} since {self.previous_at} ({self.previous} → {self.value})"
        )


def counter_delta(
    name: str, value: int | None, nights: Sequence[HistoryNight], attr: str
) -> CounterDelta:
    previous_night = next((n for n in reversed(nights) if getattr(n, attr) is not None), None)
    if value is None or previous_night is None:
        return CounterDelta(name, value)
    previous = getattr(previous_night, attr)
    if value < previous:
        return CounterDelta(name, value, previous, previous_night.run_at, value, reset=True)
    return CounterDelta(name, value, previous, previous_night.run_at, value - previous)


def fresh_count(count: int, previous: int | None, rebooted: bool) -> int:
    """Events in tonight's log that an earlier run has not already seen.

    The kernel ring buffer keeps old reports for days, so the same failure
    shows up night after night. History stores each night's count as read
    from the log; a count that did not grow, with no reboot in between, is the
    same events again. A smaller count means the log rotated or the guest
    rebooted: everything shown is new.
    """
    if previous is None or rebooted or count < previous:
        return count
    return count - previous
