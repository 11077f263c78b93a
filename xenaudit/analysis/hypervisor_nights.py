"""One night of what Dom0 saw of a domain, kept to judge trends from the hypervisor side.

Kept apart from the guest-side history: these nights exist for every domain
on a Dom0 whose signals are read (with or without a login), and they carry
what only the hypervisor knows, such as the domid that tells a restart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HypervisorNight:
    run_at: str
    domid: int | None
    state: str
    #: The balloon target (xenstore memory/target, else the toolstack's), KiB.
    target_kib: int | None
    #: What the domain held (xentop MEM(k), else `xl list` Mem), KiB.
    held_kib: int | None
    #: Guest tools' MemTotal and free (MemAvailable where the guest has it), KiB.
    tools_total_kib: int | None
    tools_free_kib: int | None
    #: "guest agent (data/meminfo_*)" or "xenballoond (memory/meminfo)".
    tools_source: str | None
    feature_balloon: bool | None
    pod_events: int = 0
    crash_events: int = 0
    finding_codes: tuple[str, ...] = ()

    @property
    def tools_need_kib(self) -> int | None:
        if self.tools_total_kib is None or self.tools_free_kib is None:
            return None
        return max(self.tools_total_kib - self.tools_free_kib, 0)
