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
from dataclasses import dataclass, replace
from statistics import median

from xenaudit.analysis import memavail
from xenaudit.analysis.counters import CounterDelta, counter_delta, fresh_count
from xenaudit.analysis.failures import FailureKind, kind
from xenaudit.analysis.interface import DomainInput, HistoryNight
from xenaudit.analysis.kernel import KernelVersion, parse_release
from xenaudit.analysis.logevents import (
    FailureBucket,
    FailureTallies,
    Tally,
    bucket_of,
    failure_count,
    failure_tallies,
    guest_kill_count,
    guest_oom_events,
    memcg_kill_count,
    split_events,
    suppressed_count,
)
from xenaudit.analysis.nightly import Rise, rises_between
from xenaudit.analysis.tonight import night_from_facts
from xenaudit.analysis.unresolved import Resolved, Unresolved, carried
from xenaudit.hypervisor.interface import GuestType
from xenaudit.parsers.guest import boot_time_of, page_size_kib_of
from xenaudit.parsers.interface import (
    GuestFacts,
    OomInvoked,
    OomKill,
    PageAllocFailure,
    Process,
)

#: Collection outcomes whose sections are worth reading.
USABLE_STATUSES = frozenset({"ok", "partial"})

#: Crash-kernel reservations as the kernel logs them at boot.
_CRASHKERNEL = (
    re.compile(r"Reserving (\d+)MB of memory at \d+MB for crashkernel"),
    re.compile(r"crashkernel reserved: 0x[0-9a-fA-F]+ - 0x[0-9a-fA-F]+ \((\d+) MB\)"),
)
#: The kernel keeps a few percent of what it was given out of MemTotal (memmap, code,
#: page tables): up to this share plus a fixed slice, plus crashkernel and HVM video RAM.
#: The fixed slice is the kernel image: Debian 12's 6.1 kernel keeps 43 MiB (code,
#: rodata, rwdata, bss), and its PV guests on a real Xen 4.17 showed MemTotal 48-55 MiB
#: below their size at 128-256 MiB (tests/fake_xl/recordings/realxen_4.17).
RESERVATION_SHARE = 0.05
RESERVATION_FIXED_KIB = 64 * 1024
#: MemTotal may exceed what Xen gives the domain by this much before it is implausible.
PLAUSIBLE_SLACK_SHARE = 0.02
PLAUSIBLE_SLACK_KIB = 32 * 1024
#: Numbers at or above this did not come from a real /proc file (64-bit overflow, garbage).
IMPLAUSIBLE_KIB = 1 << 50
#: btime moves by a second or two with clock adjustments; more is another boot.
BOOT_TIME_SLACK_S = 120
#: HVM video RAM libxl defaults to (cirrus on qemu-xen) when the live value is unknown.
DEFAULT_VIDEO_KIB = 8 * 1024


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

    # --- added judgement inputs (defaults keep hand-built Signals short) -------
    #: The guest's page size (getconf PAGESIZE), KiB.
    page_kib: int = 4
    kernel_full: KernelVersion | None = None
    mem_free_kib: int | None = None
    #: How MemAvailable was estimated (pre-3.14 kernels), None when the kernel printed it.
    available_note: str | None = None
    #: Why tonight's meminfo must not size anything down (cut or mangled), or None.
    damage: str | None = None
    #: Why the guest's numbers cannot be true (they are then never sized on), or None.
    implausible: str | None = None
    #: The reservation was capped: MemTotal is further below the size than kernels keep.
    reservation_suspect: bool = False
    crashkernel_kib: int | None = None
    #: Started in populate-on-demand mode (HVM/PVH with memory < maxmem).
    pod: bool = False
    pod_memory_mib: int | None = None
    pod_maxmem_mib: int | None = None
    pod_source: str = ""
    #: How the domain passes hardware through ("pci = [...]", "passthrough = ..."), or None.
    passthrough: str | None = None
    #: Page allocation failures in tonight's log (reports seen, kept or not, and suppressed).
    failures_total: int = 0
    #: Tonight's counters as a history row, to compare with the last night.
    tonight_row: HistoryNight | None = None
    #: kswapd and direct-reclaim counters since boot (name, value), the evidence that the
    #: watermarks are too close together for the guest's bursts.
    reserve_counters: tuple[tuple[str, int], ...] = ()
    #: Cumulative counters that rose between two history nights, and since the last night.
    rises_history: tuple[Rise, ...] = ()
    rises_tonight: tuple[Rise, ...] = ()
    #: An episode (OOM kills, failure storm) of an earlier night that still holds, or that
    #: tonight's data resolved.
    carried: Unresolved | Resolved | None = None
    #: Failures of each kind, counted exactly over the whole log (the kept reports are
    #: only examples).
    tallies: FailureTallies | None = None
    #: Guest-wide OOM events in tonight's log, kept or not (see guest_oom_events).
    guest_oom_events: int = 0
    #: Guest-wide "Killed process" lines in tonight's log, kept or not.
    guest_oom_kill_lines: int = 0

    @property
    def unresolved(self) -> Unresolved | None:
        return self.carried if isinstance(self.carried, Unresolved) else None

    @property
    def touched_kib(self) -> int | None:
        """Pages the guest has written at least once: at least MemTotal − MemFree."""
        if self.mem_total_kib is None or self.mem_free_kib is None:
            return None
        return max(0, self.mem_total_kib - self.mem_free_kib)

    @property
    def usable_nights(self) -> tuple[HistoryNight, ...]:
        """History nights whose meminfo was whole: only these count toward a decrease."""
        return tuple(n for n in self.nights if not n.damaged)

    def kind_of(self, event: PageAllocFailure) -> FailureKind:
        return kind(event)

    def tally(self, bucket: FailureBucket, fresh: bool = False) -> Tally:
        """Exact failures of one kind in the log (or among the new ones), kept or not."""
        if self.tallies is None:
            events = self.fresh_failure_events if fresh else self.failures
            found = sum(1 for e in events if bucket_of(e) == bucket)
            return Tally(found, found)
        return (self.tallies.fresh if fresh else self.tallies.total)[bucket]

    @property
    def opportunistic(self) -> tuple[PageAllocFailure, ...]:
        """Failures of allocations that may fail by design (NORETRY, NOWAIT): never sized on."""
        return tuple(f for f in self.failures if self.kind_of(f) == "opportunistic")

    @property
    def sized_failures(self) -> tuple[PageAllocFailure, ...]:
        return tuple(f for f in self.failures if self.kind_of(f) != "opportunistic")

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
        return tuple(f for f in self.failures if f.order == 0 and self.kind_of(f) == "atomic")

    @property
    def reclaim_order0(self) -> tuple[PageAllocFailure, ...]:
        return tuple(f for f in self.failures if f.order == 0 and self.kind_of(f) == "reclaim")

    @property
    def high_order(self) -> tuple[PageAllocFailure, ...]:
        return tuple(
            f for f in self.failures if f.order >= 1 and self.kind_of(f) != "opportunistic"
        )


def parse_kernel_release(text: str | None) -> tuple[int, int] | None:
    """(major, minor) from `uname -r`/`uname -a` output or a "Linux version" line."""
    version = parse_release(text)
    return None if version is None else (version[0], version[1])


def _kernel_version(
    item: DomainInput, facts: GuestFacts | None
) -> tuple[KernelVersion | None, str | None]:
    """The running kernel: uname first, else the newest report that names its kernel."""
    snapshot = item.snapshot
    if snapshot is not None:
        uname = snapshot.sections.get("uname")
        if uname and uname.strip():
            first = uname.strip().splitlines()[0][:200]
            version = parse_release(first)
            if version:
                return version, first
    if facts is not None and facts.kernlog is not None:
        for event in reversed(facts.kernlog.events):
            release = getattr(event, "kernel_version", None)
            version = parse_release(release)
            if version:
                return version, release
    return None, None


def _crashkernel_kib(item: DomainInput) -> int | None:
    """The crash kernel's reservation, when the boot log shows it (it never reaches MemTotal)."""
    snapshot = item.snapshot
    text = snapshot.sections.get("kernlog") if snapshot is not None else None
    if not text:
        return None
    head = text[: 1 << 20]
    for pattern in _CRASHKERNEL:
        match = pattern.search(head)
        if match is not None:
            return int(match.group(1)) * 1024
    return None


def _since_boot(delta: CounterDelta) -> CounterDelta:
    """A counter across a reboot: its value since boot is the growth, never a difference."""
    if delta.value is None or delta.previous is None or delta.reset:
        return delta
    return replace(delta, delta=delta.value, reset=True)


def _reserve_counters(facts: GuestFacts | None) -> tuple[tuple[str, int], ...]:
    vmstat = facts.vmstat if facts else None
    if vmstat is None:
        return ()
    found: list[tuple[str, int]] = []
    for name in ("kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly"):
        value = vmstat.get(name)
        if value is not None:
            found.append((name, value))
    stalls = [
        v for k, v in vmstat.counters.items() if k == "allocstall" or k.startswith("allocstall_")
    ]
    if stalls:
        found.append(("allocstall", sum(stalls)))
    return tuple(found)


def _passthrough(item: DomainInput) -> str | None:
    config = item.config
    described = getattr(config, "passthrough", None) if config is not None else None
    if described:
        return str(described)
    live = getattr(item.domain, "passthrough", None)
    return str(live) if live else None


def _implausible(
    item: DomainInput, mem_total: int | None, meminfo_values: Sequence[int]
) -> str | None:
    """Why the guest's MemTotal cannot be true: above what Xen gives the domain or the host."""
    if any(v >= IMPLAUSIBLE_KIB for v in meminfo_values):
        return "meminfo holds numbers no real /proc/meminfo prints (64-bit overflow or garbage)"
    if mem_total is None:
        return None
    domain, config = item.domain, item.config
    given = [
        k
        for k in (
            domain.max_kib,
            domain.target_kib,
            config.maxmem_mib * 1024 if config and config.maxmem_mib else None,
            config.memory_mib * 1024 if config and config.memory_mib else None,
        )
        if k
    ]
    if given:
        ceiling = max(given)
        slack = max(PLAUSIBLE_SLACK_KIB, int(ceiling * PLAUSIBLE_SLACK_SHARE))
        if mem_total > ceiling + slack:
            return (
                f"MemTotal {mem_total // 1024} MiB is above the {ceiling // 1024} MiB Xen gives "
                f"the domain (plus {slack // 1024} MiB tolerance): the guest's numbers are not "
                "its own or not true"
            )
    host_total = item.host.total_memory_kib
    if host_total and mem_total > host_total:
        return (
            f"MemTotal {mem_total // 1024} MiB is above the host's {host_total // 1024} MiB: "
            "the guest's numbers cannot be true"
        )
    return None


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
    extra_kib: int = 0,
    extra_note: str = "",
) -> tuple[int, str, bool]:
    """KiB between what the guest was given and the MemTotal it reports, and whether capped.

    The kernel's own code, memmap and page tables, firmware holes, HVM video
    RAM and crashkernel live there; the guest never shows them as MemTotal,
    yet they come out of xl's `memory`, so a need measured from MemTotal must
    add them back. Kernels keep a few percent (memmap alone is 1.6% with
    4 KiB pages); more than that plus crashkernel and video RAM means the
    numbers do not describe this size (ballooned, or mismatched), so the
    reservation is capped and the data marked suspect.
    """
    if mem_total_kib is None or live_kib is None:
        return 0, "no kernel reservation added (guest size unknown)", False
    gap = live_kib - mem_total_kib
    if gap <= 0:
        return (
            0,
            (
                f"no kernel reservation added (MemTotal {mem_total_kib // 1024} MiB is not below "
                f"the {live_source} {live_kib // 1024} MiB)"
            ),
            False,
        )
    cap = int(live_kib * RESERVATION_SHARE) + RESERVATION_FIXED_KIB + extra_kib
    if gap > cap:
        return (
            cap,
            (
                f"kernel reservation capped at {cap // 1024} MiB ({RESERVATION_SHARE:.0%} of "
                f"{live_kib // 1024} MiB + {RESERVATION_FIXED_KIB // 1024} MiB{extra_note}): "
                f"MemTotal {mem_total_kib // 1024} MiB is {gap // 1024} MiB below the "
                f"{live_source} {live_kib // 1024} MiB, more than kernels keep (ballooned or "
                "mismatched numbers); the data is suspect and sizes nothing down"
            ),
            True,
        )
    return (
        gap,
        (
            f"+ {round(gap / 1024)} MiB kernel/firmware reservation ({live_source} "
            f"{live_kib // 1024} MiB − MemTotal {round(mem_total_kib / 1024)} MiB)"
        ),
        False,
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
    kernel_full, kernel_text = _kernel_version(item, facts)
    kernel = None if kernel_full is None else (kernel_full[0], kernel_full[1])
    sysvm = facts.sysvm if facts else None
    min_free = None
    if sysvm is not None:
        min_free = sysvm.get_int("min_free_kbytes")
        if min_free is None:
            min_free = sysvm.get_int("vm.min_free_kbytes")
    available_note = None
    if meminfo is not None and meminfo.get("MemAvailable") is None:
        estimate, available_note = memavail.estimate_available(meminfo, min_free)
        if estimate is not None:
            mem_available = estimate
    if mem_total is not None and mem_available is not None:
        mem_available = max(0, min(mem_available, mem_total))
    damage = memavail.meminfo_damage(meminfo, kernel) if meminfo is not None else None
    implausible = _implausible(
        item, mem_total, tuple(meminfo.fields_kib.values()) if meminfo else ()
    )
    if implausible is not None and insufficient is None:
        insufficient = f"implausible guest numbers: {implausible}"
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
    crashkernel = _crashkernel_kib(item)
    extra, extra_note = 0, ""
    if crashkernel:
        extra += crashkernel
        extra_note += f" + crashkernel {crashkernel // 1024} MiB"
    if guest_type == "hvm":
        video = getattr(domain, "video_kib", None) or DEFAULT_VIDEO_KIB
        extra += video
        extra_note += f" + video RAM {video // 1024} MiB"
    reservation, reservation_note, suspect = _reservation(
        mem_total, live_kib, live_source, extra, extra_note
    )
    pod_source = "cfg"
    pod_memory, pod_maxmem = cfg_memory, cfg_maxmem
    if pod_memory is None or pod_maxmem is None:
        pod_source = "hypervisor"
        pod_memory = domain.target_kib // 1024 if domain.target_kib else None
        pod_maxmem = domain.max_kib // 1024 if domain.max_kib else None
    pod = (
        guest_type in ("hvm", "pvh")
        and pod_memory is not None
        and pod_maxmem is not None
        and pod_maxmem > pod_memory
    )

    nights = tuple(item.history)
    vmstat = facts.vmstat if facts else None
    pswpin = counter_delta("pswpin", vmstat.get("pswpin") if vmstat else None, nights, "pswpin")
    pgmajfault = counter_delta(
        "pgmajfault", vmstat.get("pgmajfault") if vmstat else None, nights, "pgmajfault"
    )
    oom_counter = counter_delta(
        "oom_kill", vmstat.get("oom_kill") if vmstat else None, nights, "oom_kill_counter"
    )
    snapshot = item.snapshot
    uname = snapshot.sections.get("uname") if snapshot is not None else None
    boot_time = boot_time_of(uname)
    last_boot = next((n.boot_time for n in reversed(nights) if n.boot_time is not None), None)
    # The guest's boot time (when the probe read it) decides; counters going down say the
    # same for guests whose history has no boot time.
    rebooted_by_clock = (
        boot_time is not None
        and last_boot is not None
        and abs(boot_time - last_boot) > BOOT_TIME_SLACK_S
    )
    if rebooted_by_clock:
        pswpin, pgmajfault, oom_counter = (
            _since_boot(c) for c in (pswpin, pgmajfault, oom_counter)
        )
    rebooted = rebooted_by_clock or pswpin.reset or pgmajfault.reset or oom_counter.reset

    kernlog = facts.kernlog if facts else None
    failures, guest_kills, memcg_kills, invoked, _ = split_events(kernlog)
    suppressed = suppressed_count(kernlog)
    oom_events = guest_oom_events(kernlog)  # exact even when only some events were kept
    last = nights[-1] if nights else None
    failures_total = failure_count(kernlog)
    fresh_failures = fresh_count(
        failures_total, last.page_alloc_failures if last else None, rebooted
    )
    fresh_kills = fresh_count(oom_events, last.oom_kills if last else None, rebooted)
    # The vmstat counter (4.13+) is the better judge of "new since last run"
    # when we have it, and it also sees kills whose log lines rotated away.
    unlogged = 0
    if oom_counter.delta is not None:
        fresh_kills = min(oom_events, oom_counter.delta)
        logged_new = fresh_kills + min(
            memcg_kill_count(kernlog), max(0, oom_counter.delta - fresh_kills)
        )
        unlogged = max(0, oom_counter.delta - logged_new)

    psi = facts.psi if facts else None
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

    tonight_row: HistoryNight | None = None
    if meminfo is not None:
        tonight_row = night_from_facts(facts, "tonight", (), config, domain.target_kib, boot_time)
    rises_history, rises_tonight = rises_between(nights, tonight_row)
    fresh_events = failures[len(failures) - min(fresh_failures, len(failures)) :]
    fresh_sized = any(kind(e) != "opportunistic" for e in fresh_events) or (
        fresh_failures > len(failures)
    )
    episode = (
        carried(
            nights,
            tonight_row,
            (fresh_kills + unlogged > 0, fresh_sized),
            item.thresholds.resolve_quiet_nights,
        )
        if tonight_row is not None
        else None
    )
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
        page_kib=page_size_kib_of(uname),
        kernel_full=kernel_full,
        mem_free_kib=meminfo.get("MemFree") if meminfo else None,
        available_note=available_note,
        damage=damage,
        implausible=implausible,
        reservation_suspect=suspect,
        crashkernel_kib=crashkernel,
        pod=pod,
        pod_memory_mib=pod_memory,
        pod_maxmem_mib=pod_maxmem,
        pod_source=pod_source,
        passthrough=_passthrough(item),
        failures_total=failures_total,
        tonight_row=tonight_row,
        reserve_counters=_reserve_counters(facts),
        rises_history=rises_history,
        rises_tonight=rises_tonight,
        carried=episode,
        tallies=failure_tallies(kernlog, failures, fresh_failures),
        guest_oom_events=oom_events,
        guest_oom_kill_lines=guest_kill_count(kernlog),
    )
