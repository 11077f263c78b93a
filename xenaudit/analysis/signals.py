"""The numbers the diagnosis and the sizing reason about, pulled out of one DomainInput.

Everything that needs care (estimated MemAvailable, counters that reset on
reboot, kernel-log events still in the ring buffer from an earlier night,
what "current memory" means when the cfg is missing) is settled here once,
so the rules downstream stay short and every number they quote has one
definition.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from xenaudit.analysis.counters import CounterDelta, counter_delta, fresh_count
from xenaudit.analysis.interface import DomainInput, HistoryNight
from xenaudit.hypervisor.interface import GuestType
from xenaudit.parsers.interface import (
    GuestFacts,
    KernelLog,
    OomInvoked,
    OomKill,
    PageAllocFailure,
    Process,
)

#: Collection outcomes whose sections are worth reading.
USABLE_STATUSES = frozenset({"ok", "partial"})

_KERNEL_RELEASE = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,3})(?:[.\-+_~]|\b)")
_LINUX_VERSION = re.compile(r"Linux version (\d{1,2})\.(\d{1,3})")


@dataclass(frozen=True)
class Signals:
    domain: str
    host: str
    guest_type: GuestType | None
    #: True when the guest could be read well enough to size it.
    sizable: bool
    #: Why not, when not sizable.
    insufficient_reason: str | None

    # --- sizes in cfg terms -------------------------------------------------
    cfg_memory_mib: int | None
    cfg_maxmem_mib: int | None
    #: The size a recommendation is compared with: cfg memory, else the live target.
    current_memory_mib: int | None
    current_memory_source: str
    #: maxmem in effect: cfg maxmem, else cfg memory (xl's default), else the live max.
    current_maxmem_mib: int | None
    #: What the guest actually had: the live target when ballooned below the cfg.
    experienced_memory_mib: int | None
    live_target_kib: int | None
    live_max_kib: int | None
    live_current_kib: int | None
    running: bool

    # --- what the guest saw -------------------------------------------------
    mem_total_kib: int | None
    mem_available_kib: int | None
    available_estimated: bool
    swap_total_kib: int | None
    swap_used_kib: int | None
    sunreclaim_kib: int | None
    #: Memory the guest had but does not show as MemTotal (kernel, firmware, holes), KiB.
    reservation_kib: int
    reservation_note: str
    psi_some_avg10: float | None
    psi_some_avg60: float | None
    psi_full_avg10: float | None
    psi_full_avg60: float | None
    pswpin: CounterDelta
    pgmajfault: CounterDelta
    oom_kill_counter: CounterDelta
    rebooted_since_last_run: bool

    # --- kernel log -----------------------------------------------------------
    kernlog_source: str
    failures: tuple[PageAllocFailure, ...]
    #: Failures the kernel logged as "callbacks suppressed" next to the shown ones.
    suppressed_failures: int
    #: Failures not yet seen by an earlier run (all of them without history).
    fresh_failures: int
    guest_oom_kills: tuple[OomKill, ...]
    memcg_oom_kills: tuple[OomKill, ...]
    #: "invoked oom-killer" reports for the guest as a whole (not a memory cgroup).
    guest_oom_invocations: tuple[OomInvoked, ...]
    #: Guest-wide OOM events (see guest_oom_events) not yet seen by an earlier run.
    fresh_guest_oom_kills: int
    #: Kills the vmstat counter saw that the log does not show (rotated away).
    unlogged_oom_kills: int
    log_truncated: bool

    # --- guest settings and balloon ---------------------------------------------
    min_free_kbytes: int | None
    kernel: tuple[int, int] | None
    kernel_text: str | None
    balloon_target_kib: int | None
    balloon_current_kib: int | None
    balloon_confirmed: bool
    balloon_basis: str
    top_processes: tuple[Process, ...]

    # --- history ----------------------------------------------------------------
    nights: tuple[HistoryNight, ...]
    #: MemTotal − MemAvailable for each history night with data, then tonight, KiB.
    need_series_kib: tuple[int, ...]
    #: When each entry of need_series_kib was measured ("tonight" for tonight).
    need_series_at: tuple[str, ...]

    @property
    def nights_of_history(self) -> int:
        return len(self.nights)

    @property
    def need_kib(self) -> int | None:
        """Tonight's need: what the guest could not give back without swapping."""
        if self.mem_total_kib is None or self.mem_available_kib is None:
            return None
        return max(0, self.mem_total_kib - self.mem_available_kib)

    @property
    def available_pct(self) -> float | None:
        if not self.mem_total_kib or self.mem_available_kib is None:
            return None
        return 100.0 * self.mem_available_kib / self.mem_total_kib

    @property
    def swap_used_pct(self) -> float | None:
        if not self.swap_total_kib or self.swap_used_kib is None:
            return None
        return 100.0 * self.swap_used_kib / self.swap_total_kib

    @property
    def peak_need(self) -> tuple[int, str] | None:
        """Largest need over history and tonight, with when it was seen."""
        if not self.need_series_kib:
            return None
        best = max(range(len(self.need_series_kib)), key=lambda i: (self.need_series_kib[i], i))
        return self.need_series_kib[best], self.need_series_at[best]

    @property
    def median_need_kib(self) -> int | None:
        if not self.need_series_kib:
            return None
        return int(median(self.need_series_kib))

    @property
    def fresh_failure_events(self) -> tuple[PageAllocFailure, ...]:
        """The newest failures in the log, as many as are new since the last run.

        When the kernel suppressed reports, the new count can exceed what is
        shown; then every shown report is new.
        """
        count = min(self.fresh_failures, len(self.failures))
        return self.failures[len(self.failures) - count :]

    def fresh_of(self, events: Sequence[PageAllocFailure]) -> tuple[PageAllocFailure, ...]:
        """Those of `events` that no earlier run has seen."""
        fresh = {id(e) for e in self.fresh_failure_events}
        return tuple(e for e in events if id(e) in fresh)

    @property
    def atomic_order0(self) -> tuple[PageAllocFailure, ...]:
        return tuple(f for f in self.failures if f.order == 0 and f.is_atomic)

    @property
    def reclaim_order0(self) -> tuple[PageAllocFailure, ...]:
        return tuple(f for f in self.failures if f.order == 0 and not f.is_atomic)

    @property
    def high_order(self) -> tuple[PageAllocFailure, ...]:
        return tuple(f for f in self.failures if f.order >= 1)


def parse_kernel_release(text: str | None) -> tuple[int, int] | None:
    """(major, minor) from `uname -r`/`uname -a` output or a "Linux version" line."""
    if not text:
        return None
    match = _LINUX_VERSION.search(text)
    if match is None:
        for token in text.split():
            match = _KERNEL_RELEASE.match(token)
            if match:
                break
    if match is None:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    if not 2 <= major <= 99:
        return None
    return major, minor


def _kernel_version(
    item: DomainInput, facts: GuestFacts | None
) -> tuple[tuple[int, int] | None, str | None]:
    snapshot = item.snapshot
    if snapshot is not None:
        uname = snapshot.sections.get("uname")
        if uname and uname.strip():
            first = uname.strip().splitlines()[0][:200]
            version = parse_kernel_release(first)
            if version:
                return version, first
    if facts is not None and facts.kernlog is not None:
        for event in facts.kernlog.events:
            release = getattr(event, "kernel_version", None)
            version = parse_kernel_release(release)
            if version:
                return version, release
    return None, None


def _events(
    kernlog: KernelLog | None,
) -> tuple[
    tuple[PageAllocFailure, ...],
    tuple[OomKill, ...],
    tuple[OomKill, ...],
    tuple[OomInvoked, ...],
    int,
]:
    if kernlog is None:
        return (), (), (), (), 0
    failures = tuple(e for e in kernlog.events if isinstance(e, PageAllocFailure))
    kills = tuple(e for e in kernlog.events if isinstance(e, OomKill))
    invoked = tuple(
        e for e in kernlog.events if isinstance(e, OomInvoked) and not getattr(e, "memcg", False)
    )
    suppressed = sum(max(0, getattr(f, "callbacks_suppressed", 0) or 0) for f in failures)
    return (
        failures,
        tuple(k for k in kills if not k.memcg),
        tuple(k for k in kills if k.memcg),
        invoked,
        suppressed,
    )


def guest_oom_events(kernlog: KernelLog | None) -> int:
    """Guest-wide OOM events in a log: kill lines, or invocations when the kill lines are cut.

    Excerpts and rotated logs often keep the "invoked oom-killer" header but
    lose the "Killed process" line (or the reverse); either proves the guest
    ran out. This count is what history stores as a night's oom_kills.
    """
    if kernlog is not None and kernlog.counts is not None:
        counts = kernlog.counts
        return max(
            counts.oom_kills - counts.oom_kills_memcg,
            counts.oom_invoked - counts.oom_invoked_memcg,
        )
    _, kills, _, invoked, _ = _events(kernlog)
    return max(len(kills), len(invoked))


def _balloon(item: DomainInput, facts: GuestFacts | None) -> tuple[bool, str]:
    """Whether the guest's balloon driver is known to work, and why we think so.

    The inventory wins both ways; otherwise a xen_memory target in the guest's
    sysfs proves a driver is loaded. Nothing else counts: an HVM guest without
    one crashes when populate-on-demand runs out, so guessing is not allowed.
    """
    if item.override.balloon_driver is True:
        return True, "the inventory says the balloon driver works (balloon_driver = true)"
    if item.override.balloon_driver is False:
        return False, "the inventory says there is no working balloon driver"
    if facts is not None and facts.balloon_target_kib is not None:
        return True, (
            f"the guest shows a xen_memory balloon target ({facts.balloon_target_kib} kB)"
        )
    return False, "no balloon driver confirmed (no xen_memory target seen in the guest)"


def _insufficient(item: DomainInput, facts: GuestFacts | None) -> str | None:
    snapshot = item.snapshot
    if snapshot is None:
        if item.domain.state == "shutoff":
            return "the domain is shut off, nothing to read"
        return "no collection was attempted"
    if snapshot.status not in USABLE_STATUSES:
        why = f": {snapshot.error}" if snapshot.error else ""
        return f"collection {snapshot.status}{why}"
    if facts is None or facts.meminfo is None:
        status = snapshot.section_status.get("meminfo", "missing")
        return f"no usable meminfo (section {status})"
    if facts.meminfo.mem_total_kib is None or facts.meminfo.mem_total_kib <= 0:
        return "meminfo has no MemTotal"
    if facts.meminfo.mem_available_kib is None:
        return "meminfo has neither MemAvailable nor MemFree"
    return None


def _reservation(
    mem_total_kib: int | None,
    live_kib: int | None,
    live_source: str,
) -> tuple[int, str]:
    """KiB between what the guest was given and the MemTotal it reports.

    The kernel's own code and page tables, firmware holes and crashkernel
    live there; the guest never shows them as MemTotal, yet they come out of
    xl's `memory`, so a need measured from MemTotal must add them back.
    """
    if mem_total_kib is None or live_kib is None:
        return 0, "no kernel reservation added (guest size unknown)"
    gap = live_kib - mem_total_kib
    if gap <= 0:
        return 0, (
            f"no kernel reservation added (MemTotal {mem_total_kib // 1024} MiB is not below "
            f"the {live_source} {live_kib // 1024} MiB)"
        )
    cap = live_kib // 4
    if gap > cap:
        return cap, (
            f"kernel reservation capped at {cap // 1024} MiB: MemTotal {mem_total_kib // 1024} MiB "
            f"is {gap // 1024} MiB below the {live_source} {live_kib // 1024} MiB, "
            "more than a kernel keeps (ballooned or mismatched numbers)"
        )
    return gap, (
        f"+ {round(gap / 1024)} MiB kernel/firmware reservation ({live_source} "
        f"{live_kib // 1024} MiB − MemTotal {round(mem_total_kib / 1024)} MiB)"
    )


def extract(item: DomainInput) -> Signals:
    """Read every number the analysis needs from one domain's input."""
    facts = item.facts
    domain = item.domain
    config = item.config
    insufficient = _insufficient(item, facts)
    guest_type = (config.guest_type if config else None) or domain.guest_type

    cfg_memory = config.memory_mib if config else None
    cfg_maxmem = config.maxmem_mib if config else None
    if cfg_memory is not None:
        current, current_source = cfg_memory, "cfg memory"
    elif domain.target_kib is not None:
        current, current_source = domain.target_kib // 1024, "live target"
    elif domain.current_kib is not None:
        current, current_source = domain.current_kib // 1024, "live memory"
    else:
        current, current_source = None, "unknown"
    experienced = current
    if current is not None and domain.target_kib is not None:
        experienced = min(current, domain.target_kib // 1024)
    if cfg_maxmem is not None:
        current_maxmem: int | None = cfg_maxmem
    elif cfg_memory is not None:
        current_maxmem = cfg_memory
    elif domain.max_kib is not None:
        current_maxmem = domain.max_kib // 1024
    else:
        current_maxmem = current

    meminfo = facts.meminfo if facts else None
    mem_total = meminfo.mem_total_kib if meminfo else None
    mem_available = meminfo.mem_available_kib if meminfo else None
    if mem_total is not None and mem_available is not None:
        mem_available = max(0, min(mem_available, mem_total))
    swap_total = meminfo.get("SwapTotal") if meminfo else None
    swap_free = meminfo.get("SwapFree") if meminfo else None
    swap_used = (
        max(0, swap_total - swap_free) if swap_total is not None and swap_free is not None else None
    )

    # What the guest holds now, to measure the reservation against: the
    # balloon driver's own view first, then Xen's, then the cfg.
    if facts is not None and facts.balloon_current_kib:
        live_kib, live_source = facts.balloon_current_kib, "balloon current"
    elif domain.current_kib:
        live_kib, live_source = domain.current_kib, "live memory"
    elif domain.target_kib:
        live_kib, live_source = domain.target_kib, "live target"
    elif cfg_memory is not None:
        live_kib, live_source = cfg_memory * 1024, "cfg memory"
    else:
        live_kib, live_source = None, "unknown"
    reservation, reservation_note = _reservation(mem_total, live_kib, live_source)

    nights = tuple(item.history)
    vmstat = facts.vmstat if facts else None
    pswpin = counter_delta("pswpin", vmstat.get("pswpin") if vmstat else None, nights, "pswpin")
    pgmajfault = counter_delta(
        "pgmajfault", vmstat.get("pgmajfault") if vmstat else None, nights, "pgmajfault"
    )
    oom_counter = counter_delta(
        "oom_kill", vmstat.get("oom_kill") if vmstat else None, nights, "oom_kill_counter"
    )
    rebooted = pswpin.reset or pgmajfault.reset or oom_counter.reset

    kernlog = facts.kernlog if facts else None
    failures, guest_kills, memcg_kills, invoked, suppressed = _events(kernlog)
    counts = kernlog.counts if kernlog is not None else None
    if counts is not None:  # exact even when only the first and last events were kept
        suppressed = counts.page_alloc_suppressed
    oom_events = guest_oom_events(kernlog)
    last = nights[-1] if nights else None
    n_failures = counts.page_alloc_failures if counts is not None else len(failures)
    fresh_failures = fresh_count(
        n_failures + suppressed, last.page_alloc_failures if last else None, rebooted
    )
    fresh_kills = fresh_count(oom_events, last.oom_kills if last else None, rebooted)
    # The vmstat counter (4.13+) is the better judge of "new since last run"
    # when we have it, and it also sees kills whose log lines rotated away.
    unlogged = 0
    if oom_counter.delta is not None:
        fresh_kills = min(oom_events, oom_counter.delta)
        n_memcg = counts.oom_kills_memcg if counts is not None else len(memcg_kills)
        logged_new = fresh_kills + min(n_memcg, max(0, oom_counter.delta - fresh_kills))
        unlogged = max(0, oom_counter.delta - logged_new)

    psi = facts.psi if facts else None
    kernel, kernel_text = _kernel_version(item, facts)
    sysvm = facts.sysvm if facts else None
    min_free = None
    if sysvm is not None:
        min_free = sysvm.get_int("min_free_kbytes")
        if min_free is None:
            min_free = sysvm.get_int("vm.min_free_kbytes")
    balloon_confirmed, balloon_basis = _balloon(item, facts)
    processes = tuple(
        sorted(facts.processes if facts else (), key=lambda p: (-p.rss_kib, p.pid))[:5]
    )

    series: list[int] = []
    series_at: list[str] = []
    for night in nights:
        if night.need_kib is not None and night.need_kib >= 0:
            series.append(night.need_kib)
            series_at.append(night.run_at)
    if insufficient is None and mem_total is not None and mem_available is not None:
        series.append(max(0, mem_total - mem_available))
        series_at.append("tonight")

    snapshot = item.snapshot
    return Signals(
        domain=domain.name,
        host=item.host.name,
        guest_type=guest_type,
        sizable=insufficient is None and current is not None,
        insufficient_reason=insufficient
        if insufficient is not None
        else (None if current is not None else "the domain's memory size is unknown"),
        cfg_memory_mib=cfg_memory,
        cfg_maxmem_mib=cfg_maxmem,
        current_memory_mib=current,
        current_memory_source=current_source,
        current_maxmem_mib=current_maxmem,
        experienced_memory_mib=experienced,
        live_target_kib=domain.target_kib,
        live_max_kib=domain.max_kib,
        live_current_kib=domain.current_kib,
        running=domain.state in ("running", "blocked", "paused"),
        mem_total_kib=mem_total,
        mem_available_kib=mem_available,
        available_estimated=bool(meminfo and meminfo.mem_available_estimated),
        swap_total_kib=swap_total,
        swap_used_kib=swap_used,
        sunreclaim_kib=meminfo.get("SUnreclaim") if meminfo else None,
        reservation_kib=reservation,
        reservation_note=reservation_note,
        psi_some_avg10=psi.some.avg10 if psi and psi.some else None,
        psi_some_avg60=psi.some.avg60 if psi and psi.some else None,
        psi_full_avg10=psi.full.avg10 if psi and psi.full else None,
        psi_full_avg60=psi.full.avg60 if psi and psi.full else None,
        pswpin=pswpin,
        pgmajfault=pgmajfault,
        oom_kill_counter=oom_counter,
        rebooted_since_last_run=rebooted,
        kernlog_source=(snapshot.kernlog_source if snapshot else None) or "kernel log",
        failures=failures,
        suppressed_failures=suppressed,
        fresh_failures=fresh_failures,
        guest_oom_kills=guest_kills,
        memcg_oom_kills=memcg_kills,
        guest_oom_invocations=invoked,
        fresh_guest_oom_kills=fresh_kills,
        unlogged_oom_kills=unlogged,
        log_truncated=bool(kernlog and kernlog.truncated),
        min_free_kbytes=min_free,
        kernel=kernel,
        kernel_text=kernel_text,
        balloon_target_kib=facts.balloon_target_kib if facts else None,
        balloon_current_kib=facts.balloon_current_kib if facts else None,
        balloon_confirmed=balloon_confirmed,
        balloon_basis=balloon_basis,
        top_processes=processes,
        nights=nights,
        need_series_kib=tuple(series),
        need_series_at=tuple(series_at),
    )
