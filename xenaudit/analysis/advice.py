"""Guest-side advice: settings inside the DomU that no cfg change can make.

Everything here is shown to the admin, never applied: xenaudit does not
write on guests. Commands are suggestions to review, with the numbers
already filled in for this guest.

vm.panic_on_oom is only ever advised for members of an HA cluster
(DomainOverride.ha_cluster): elsewhere a panic turns one killed process
into a whole guest down.
"""

from __future__ import annotations

from xenaudit.analysis.diagnosis import Diagnosis
from xenaudit.analysis.interface import Advice, DomainInput, Finding, MinFreeSuggestion
from xenaudit.analysis.signals import Signals
from xenaudit.wording import fold_repeats

SYSCTL_FILE = "/etc/sysctl.d/90-xenaudit.conf"
#: vm.compaction_proactiveness appeared in Linux 5.9; compaction itself in 2.6.35.
PROACTIVENESS_SINCE = (5, 9)
COMPACTION_SINCE = (2, 6)
PROACTIVENESS_DEFAULT = 20
PROACTIVENESS_PROPOSED = 40
EXTFRAG_DEFAULT = 500
EXTFRAG_PROPOSED = 300


def _sysctl(name: str, value: int) -> tuple[str, ...]:
    return (
        f"sysctl -w {name}={value}",
        f"echo '{name} = {value}' >> {SYSCTL_FILE}",
    )


def min_free_advice(suggestion: MinFreeSuggestion) -> Advice:
    return Advice(
        f"Raise vm.min_free_kbytes to {suggestion.suggested_kib}",
        "; ".join(suggestion.reasons) + ".",
        _sysctl("vm.min_free_kbytes", suggestion.suggested_kib),
    )


def _sysvm_value(item: DomainInput, name: str) -> int | None:
    sysvm = item.facts.sysvm if item.facts else None
    if sysvm is None:
        return None
    value = sysvm.get_int(name)
    return value if value is not None else sysvm.get_int(f"vm.{name}")


def _has_proactiveness(item: DomainInput, s: Signals) -> bool:
    if _sysvm_value(item, "compaction_proactiveness") is not None:
        return True
    return s.kernel is not None and s.kernel >= PROACTIVENESS_SINCE


def fragmentation_advice(item: DomainInput, s: Signals, orders: list[int]) -> tuple[Advice, ...]:
    advice: list[Advice] = []
    commands: list[str] = []
    parts: list[str] = []
    if _has_proactiveness(item, s):
        now = _sysvm_value(item, "compaction_proactiveness")
        current = now if now is not None else PROACTIVENESS_DEFAULT
        if current < PROACTIVENESS_PROPOSED:
            parts.append(
                f"vm.compaction_proactiveness {current} → {PROACTIVENESS_PROPOSED}: kcompactd "
                "keeps more large blocks free in the background (Linux 5.9 and later)"
            )
            commands.extend(_sysctl("vm.compaction_proactiveness", PROACTIVENESS_PROPOSED))
    elif s.kernel is not None:
        parts.append(
            f"Linux {s.kernel[0]}.{s.kernel[1]} has no proactive compaction "
            "(vm.compaction_proactiveness needs 5.9)"
        )
    extfrag = _sysvm_value(item, "extfrag_threshold")
    current_extfrag = extfrag if extfrag is not None else EXTFRAG_DEFAULT
    if current_extfrag > EXTFRAG_PROPOSED:
        parts.append(
            f"vm.extfrag_threshold {current_extfrag} → {EXTFRAG_PROPOSED}: the kernel compacts "
            "rather than reclaims for high-order requests sooner"
        )
        commands.extend(_sysctl("vm.extfrag_threshold", EXTFRAG_PROPOSED))
    if parts:
        advice.append(
            Advice("Compact memory more eagerly", "; ".join(parts) + ".", tuple(commands))
        )
    advice.append(
        Advice(
            "Check once whether compaction recovers large blocks",
            "A one-off compaction shows whether free memory can be made contiguous; if "
            "/proc/buddyinfo shows large blocks afterwards, the settings above will help. "
            "It costs some CPU for a few seconds.",
            ("cat /proc/buddyinfo", "echo 1 > /proc/sys/vm/compact_memory", "cat /proc/buddyinfo"),
        )
    )
    if max(orders) >= 2:
        advice.append(
            Advice(
                "Fewer high-order users",
                f"Order-{max(orders)} requests usually come from network drivers with jumbo "
                "frames (MTU 9000 needs 16 KiB receive buffers on some drivers) or from "
                "drivers allocating large DMA rings. A 1500 MTU, or a driver mode that "
                "uses page fragments, keeps them at order 0.",
                ("ip -o link show | grep -o 'mtu [0-9]*' | sort | uniq -c",),
            )
        )
    return tuple(advice)


def _protect(s: Signals) -> Advice:
    biggest = fold_repeats(p.comm for p in s.top_processes[:5]) or "the largest processes"
    return Advice(
        "Protect the services that matter when memory runs out",
        "Give critical services a memory floor (cgroup v2 memory.min/memory.low, systemd "
        "MemoryMin=/MemoryLow=) and make the OOM killer prefer others (OOMScoreAdjust=). "
        f"The largest processes now are {biggest}.",
        (
            "systemctl edit <service>   # [Service] MemoryMin=<floor> OOMScoreAdjust=-500",
            "systemctl set-property <service> MemoryLow=<size>",
        ),
    )


def _ha_panic() -> Advice:
    return Advice(
        "HA cluster member: panic instead of limping on after an OOM",
        "In a cluster a node that reboots hands its services over cleanly, while one that "
        "lost a random process may keep them half-broken. vm.panic_on_oom=1 with "
        "kernel.panic=10 reboots the guest on out-of-memory so the cluster fails over.",
        _sysctl("vm.panic_on_oom", 1) + _sysctl("kernel.panic", 10),
    )


def _slab() -> Advice:
    return Advice(
        "Find the growing kernel cache",
        "Compare the largest slab caches over a few days; a cache that only grows points at "
        "the driver or module leaking it.",
        ("slabtop -o -s c | head -15",),
    )


def advise(
    item: DomainInput,
    s: Signals,
    d: Diagnosis,
    findings: tuple[Finding, ...],
    min_free: MinFreeSuggestion | None,
) -> tuple[Advice, ...]:
    codes = {f.code for f in findings}
    advice: list[Advice] = []
    if min_free is not None:
        advice.append(min_free_advice(min_free))
    if "fragmentation" in codes and s.high_order:
        advice.extend(fragmentation_advice(item, s, [f.order for f in s.high_order]))
    guest_kills = bool(s.guest_oom_kills or s.guest_oom_invocations) or s.unlogged_oom_kills > 0
    if "shortage" in codes or guest_kills:
        advice.append(_protect(s))
    if guest_kills and item.override.ha_cluster:
        advice.append(_ha_panic())
    if "slab_unreclaimable" in codes:
        advice.append(_slab())
    return tuple(advice)
