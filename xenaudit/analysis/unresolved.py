"""An OOM kill or a failure storm stays on the report until it is resolved.

The night a guest was OOM-killed its memory is raised. The night after,
the kill is an old line in the kernel log and MemAvailable looks fine again
(the victim's memory was freed), so judging only "what is new tonight"
would turn the increase into "keep the size" while nothing was changed. A
finding is therefore carried from the night its events were new until one
of these resolves it:

* memory was raised: the cfg memory (or the live target) is above what it
  was that night;
* the guest restarted with a new size: a reboot since (a cumulative counter
  went down) and a different MemTotal;
* `resolve_quiet_nights` nights passed without a new event.

While it is unresolved, the recommendation recorded that night is kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from xenaudit.analysis.interface import HistoryNight

_RESET_COUNTERS = (
    "pswpin",
    "pgmajfault",
    "oom_kill_counter",
    "psi_some_total_us",
    "allocstall",
    "pgscan_direct",
)
#: btime moves by a second or two with clock adjustments; more is another boot.
BOOT_TIME_SLACK_S = 120
#: MemTotal may wobble by this share between boots of the same size (KASLR, firmware).
SAME_SIZE_SHARE = 0.02


@dataclass(frozen=True)
class Unresolved:
    """An episode from an earlier night that still holds tonight."""

    #: "OOM kills", "allocation failures" or both.
    kinds: tuple[str, ...]
    #: run_at of the night the events were new.
    since: str
    #: Nights without a new event since then, tonight included.
    quiet_nights: int
    limit: int
    #: What that night recommended (None when history holds no recommendation).
    rec_memory_mib: int | None
    rec_maxmem_mib: int | None
    cfg_memory_mib: int | None

    @property
    def oom(self) -> bool:
        return "OOM kills" in self.kinds

    @property
    def failures(self) -> bool:
        return "allocation failures" in self.kinds

    def describe(self) -> str:
        what = " and ".join(self.kinds)
        size = f" at {self.cfg_memory_mib} MiB" if self.cfg_memory_mib is not None else ""
        return (
            f"unresolved: the {what} of {self.since} still stand with memory unchanged{size} "
            f"({self.quiet_nights} of {self.limit} quiet nights); the finding stays until memory "
            "is raised, the guest restarts with a new size, or "
            f"{self.limit} quiet nights pass (resolve_quiet_nights)"
        )


@dataclass(frozen=True)
class Resolved:
    """An earlier episode that no longer holds, and why."""

    since: str
    reason: str


def _new_events(previous: HistoryNight | None, night: HistoryNight) -> tuple[str, ...]:
    kinds: list[str] = []
    reboot = previous is not None and _rebooted(previous, night)
    base_kills = 0 if previous is None or reboot else previous.oom_kills
    base_counter = None if previous is None or reboot else previous.oom_kill_counter
    base_failures = 0 if previous is None or reboot else previous.page_alloc_failures
    new_kills = night.oom_kills > base_kills or (
        night.oom_kill_counter is not None
        and base_counter is not None
        and night.oom_kill_counter > base_counter
    )
    if new_kills:
        kinds.append("OOM kills")
    if night.page_alloc_failures > base_failures:
        kinds.append("allocation failures")
    return tuple(kinds)


def _rebooted(previous: HistoryNight, night: HistoryNight) -> bool:
    """A different boot time (when both nights have one), else a counter that went down."""
    if previous.boot_time is not None and night.boot_time is not None:
        return abs(night.boot_time - previous.boot_time) > BOOT_TIME_SLACK_S
    for attr in _RESET_COUNTERS:
        before, now = getattr(previous, attr), getattr(night, attr)
        if before is not None and now is not None and now < before:
            return True
    return False


def carried(
    nights: Sequence[HistoryNight],
    tonight: HistoryNight,
    new_tonight: bool | tuple[bool, bool],
    limit: int,
) -> Unresolved | Resolved | None:
    """The episode an earlier night left open, tonight: still open, resolved, or none.

    `tonight` carries tonight's counters, MemTotal, cfg and live target;
    `new_tonight` says tonight has events of its own, as one flag or as
    (new OOM kills, new allocation failures): a kind with new events tonight
    is judged by tonight's findings, so only the other kind is carried.
    """
    new_kills, new_failures = (
        (new_tonight, new_tonight) if isinstance(new_tonight, bool) else new_tonight
    )
    if not nights:
        return None
    starts: dict[str, int] = {}
    for index, night in enumerate(nights):
        previous = nights[index - 1] if index else None
        for kind in _new_events(previous, night):
            starts[kind] = index
    if new_kills:
        starts.pop("OOM kills", None)
    if new_failures:
        starts.pop("allocation failures", None)
    if not starts:
        return None
    start = max(starts.values())
    kinds = tuple(k for k in ("OOM kills", "allocation failures") if k in starts)
    episode = nights[start]
    quiet = len(nights) - start
    if quiet >= limit:
        return Resolved(episode.run_at, f"{quiet} quiet nights since {episode.run_at}")
    if (
        tonight.cfg_memory_mib is not None
        and episode.cfg_memory_mib is not None
        and tonight.cfg_memory_mib > episode.cfg_memory_mib
    ):
        return Resolved(
            episode.run_at,
            f"memory was raised from {episode.cfg_memory_mib} to {tonight.cfg_memory_mib} MiB "
            f"since {episode.run_at}",
        )
    if (
        tonight.live_target_kib is not None
        and episode.live_target_kib is not None
        and tonight.live_target_kib > episode.live_target_kib + 1024
    ):
        return Resolved(
            episode.run_at,
            f"the live target was raised from {episode.live_target_kib // 1024} to "
            f"{tonight.live_target_kib // 1024} MiB since {episode.run_at}",
        )
    chain = [*nights[start:], tonight]
    rebooted = any(_rebooted(a, b) for a, b in itertools.pairwise(chain))
    if (
        rebooted
        and tonight.mem_total_kib is not None
        and episode.mem_total_kib is not None
        and abs(tonight.mem_total_kib - episode.mem_total_kib)
        > SAME_SIZE_SHARE * episode.mem_total_kib
    ):
        return Resolved(
            episode.run_at,
            f"the guest restarted with a new size (MemTotal {episode.mem_total_kib // 1024} → "
            f"{tonight.mem_total_kib // 1024} MiB) since {episode.run_at}",
        )
    # The recommendation of the night the events were new, or the latest one recorded since.
    first = min(starts.values())
    recorded = [n for n in nights[first:] if n.rec_memory_mib is not None]
    rec = recorded[-1] if recorded else None
    return Unresolved(
        kinds=kinds,
        since=episode.run_at,
        quiet_nights=quiet,
        limit=limit,
        rec_memory_mib=rec.rec_memory_mib if rec else None,
        rec_maxmem_mib=rec.rec_maxmem_mib if rec else None,
        cfg_memory_mib=episode.cfg_memory_mib,
    )
