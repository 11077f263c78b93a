"""Guest-side advice: settings inside the DomU that no cfg change can make.

Everything here is shown to the admin, never applied: xenaudit does not
write on guests. Commands are suggestions to review, with the numbers
already filled in for this guest. A knob is only advised when the guest's
kernel has it (its /proc/sys/vm listing, else its release: compaction from
2.6.35, watermark_scale_factor from 4.6, proactive compaction from 5.9).

Advice for high-order failures follows the caller the report's call trace
names: a fork's kernel stack, a conntrack hash resize and jumbo-frame
receive each have their own fix.

vm.panic_on_oom is only ever advised for members of an HA cluster
(DomainOverride.ha_cluster): elsewhere a panic turns one killed process
into a whole guest down.
"""

from __future__ import annotations

from collections.abc import Sequence

from xenaudit.analysis.calltrace import Caller, caller
from xenaudit.analysis.diagnosis import Diagnosis
from xenaudit.analysis.interface import (
    Advice,
    DomainInput,
    Finding,
    MinFreeSuggestion,
    SysctlProposal,
)
from xenaudit.analysis.kernel import (
    COMPACTION_SINCE,
    PROACTIVENESS_SINCE,
    VMAP_STACK_SINCE,
    describe,
    knob,
)
from xenaudit.analysis.signals import Signals
from xenaudit.parsers.interface import OomInvoked, PageAllocFailure
from xenaudit.wording import fold_repeats

Report = PageAllocFailure | OomInvoked

SYSCTL_FILE = "/etc/sysctl.d/90-xenaudit.conf"
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
        f"Raise vm.min_free_kbytes to {suggestion.suggested_kib} (live, no restart)",
        "; ".join(suggestion.reasons) + ".",
        _sysctl("vm.min_free_kbytes", suggestion.suggested_kib),
    )


def sysctl_advice(proposal: SysctlProposal) -> Advice:
    now = f" (now {proposal.current})" if proposal.current is not None else ""
    return Advice(
        f"Set {proposal.name} to {proposal.proposed}{now} (live, no restart)",
        "; ".join(proposal.reasons) + ".",
        _sysctl(proposal.name, proposal.proposed),
    )


def _sysvm_value(item: DomainInput, name: str) -> int | None:
    sysvm = item.facts.sysvm if item.facts else None
    if sysvm is None:
        return None
    value = sysvm.get_int(name)
    return value if value is not None else sysvm.get_int(f"vm.{name}")


def _callers(events: Sequence[Report]) -> list[Caller]:
    seen: dict[str, Caller] = {}
    for event in reversed(events):
        found = caller(event)
        if found is not None and found.cause is not None:
            seen.setdefault(found.cause, found)
    return list(seen.values())


def _caller_advice(s: Signals, found: Caller, order: int) -> Advice | None:
    kernel = s.kernel_full
    if found.cause == "fork":
        if kernel is not None and kernel >= VMAP_STACK_SINCE:
            newer = (
                f"Linux {describe(kernel)} can take task stacks from vmalloc (CONFIG_VMAP_STACK, "
                "the x86-64 default since 4.9); check that the guest's kernel has it enabled"
            )
        else:
            running = f"Linux {describe(kernel)}" if kernel else "This kernel"
            newer = (
                f"{running} needs the stack in one order-2 block; kernels from 4.9 on take it "
                "from vmalloc (CONFIG_VMAP_STACK) and no longer fail here"
            )
        return Advice(
            "Forks fail for want of a contiguous kernel stack",
            "The failing allocations are new tasks' kernel stacks (copy_process). "
            f"{newer}. Until then, fewer short-lived processes (a pre-forking server instead of "
            "fork-per-request) and compaction keep such blocks available.",
            ("grep -c processes /proc/stat; grep ctxt /proc/stat",),
        )
    if found.cause == "conntrack":
        return Advice(
            "Size the conntrack hash table at boot",
            "The failure is a conntrack hash table resize: the whole table is one allocation, "
            "made while the guest runs and memory is fragmented. Setting the size when the "
            "module loads allocates it once, while memory is still in large blocks.",
            (
                "cat /sys/module/nf_conntrack/parameters/hashsize",
                "echo 'options nf_conntrack hashsize=<size>' > /etc/modprobe.d/nf_conntrack.conf",
            ),
        )
    if found.cause == "jumbo_rx":
        return Advice(
            "Jumbo-frame receive needs large blocks",
            f"The driver allocates a whole frame ({4 << order} KiB, order {order}) per receive "
            "buffer. A 1500 MTU, or a driver mode that builds frames from page fragments, "
            "keeps these allocations at order 0.",
            ("ip -o link show | grep -o 'mtu [0-9]*' | sort | uniq -c",),
        )
    if found.cause == "dma":
        return Advice(
            "A driver asks for large DMA buffers",
            f"{found.description}: such buffers must be physically contiguous. Load the driver "
            "early (so it allocates while memory is unfragmented) or configure smaller rings.",
        )
    return None


def fragmentation_advice(
    item: DomainInput, s: Signals, events: Sequence[Report]
) -> tuple[Advice, ...]:
    advice: list[Advice] = []
    sysvm = item.facts.sysvm if item.facts else None
    kernel = s.kernel_full
    orders = [e.order or 0 for e in events] or [1]
    # compact_memory is write-only and never listed; extfrag_threshold came with it (2.6.35).
    compaction = knob(sysvm, kernel, "extfrag_threshold", COMPACTION_SINCE)
    commands: list[str] = []
    parts: list[str] = []
    proactive = knob(sysvm, kernel, "compaction_proactiveness", PROACTIVENESS_SINCE)
    if proactive.present:
        now = _sysvm_value(item, "compaction_proactiveness")
        current = now if now is not None else PROACTIVENESS_DEFAULT
        if current < PROACTIVENESS_PROPOSED:
            parts.append(
                f"vm.compaction_proactiveness {current} → {PROACTIVENESS_PROPOSED}: kcompactd "
                "keeps more large blocks free in the background (Linux 5.9 and later)"
            )
            commands.extend(_sysctl("vm.compaction_proactiveness", PROACTIVENESS_PROPOSED))
    elif kernel is not None:
        parts.append(f"no proactive compaction here: {proactive.basis}")
    extfrag = knob(sysvm, kernel, "extfrag_threshold", COMPACTION_SINCE)
    if extfrag.present:
        value = _sysvm_value(item, "extfrag_threshold")
        current_extfrag = value if value is not None else EXTFRAG_DEFAULT
        if current_extfrag > EXTFRAG_PROPOSED:
            parts.append(
                f"vm.extfrag_threshold {current_extfrag} → {EXTFRAG_PROPOSED}: the kernel "
                "compacts rather than reclaims for high-order requests sooner"
            )
            commands.extend(_sysctl("vm.extfrag_threshold", EXTFRAG_PROPOSED))
    if parts and commands:
        advice.append(
            Advice("Compact memory more eagerly", "; ".join(parts) + ".", tuple(commands))
        )
    elif parts:
        advice.append(Advice("No compaction knobs to tune", "; ".join(parts) + "."))
    if compaction.present:
        advice.append(
            Advice(
                "Check once whether compaction recovers large blocks",
                "A one-off compaction shows whether free memory can be made contiguous; if "
                "/proc/buddyinfo shows large blocks afterwards, the settings above will help. "
                "It costs some CPU for a few seconds.",
                (
                    "cat /proc/buddyinfo",
                    "echo 1 > /proc/sys/vm/compact_memory",
                    "cat /proc/buddyinfo",
                ),
            )
        )
    else:
        advice.append(
            Advice(
                "This kernel cannot compact memory",
                f"{compaction.basis}: memory compaction came with Linux 2.6.35 (vendor kernels "
                "may have backported it: if /proc/sys/vm/extfrag_threshold exists, it has). "
                "Large blocks only come back when their neighbours are freed; fewer high-order "
                "users, or a newer kernel, are the fixes.",
            )
        )
    named = _callers(events)
    for found in named:
        specific = _caller_advice(s, found, max(orders))
        if specific is not None:
            advice.append(specific)
    if not named and max(orders) >= 2:
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


def _slab(item: DomainInput) -> Advice:
    slab = item.facts.slabinfo if item.facts else None
    named = ""
    if slab is not None and slab.caches:
        named = f" Tonight the largest is {slab.caches[0].name[:40]}."
    return Advice(
        "Find the growing kernel cache",
        "Compare the largest slab caches over a few days; a cache that only grows points at "
        f"the driver or module leaking it.{named} Unloading or updating that module is the "
        "fix; more memory only buys time.",
        ("slabtop -o -s c | head -15",),
    )


def advise(
    item: DomainInput,
    s: Signals,
    d: Diagnosis,
    findings: tuple[Finding, ...],
    min_free: MinFreeSuggestion | None,
    sysctls: tuple[SysctlProposal, ...] = (),
    extra: tuple[Advice, ...] = (),
) -> tuple[Advice, ...]:
    codes = {f.code for f in findings}
    advice: list[Advice] = []
    if min_free is not None:
        advice.append(min_free_advice(min_free))
    advice.extend(sysctl_advice(p) for p in sysctls)
    if "fragmentation" in codes and s.high_order:
        advice.extend(fragmentation_advice(item, s, s.high_order))
    elif any(c.kind == "fragmentation" for c in d.oom_causes):
        high = [e for e in s.guest_oom_invocations if (e.order or 0) >= 1]
        advice.extend(fragmentation_advice(item, s, high))
    guest_kills = bool(s.guest_oom_kills or s.guest_oom_invocations) or s.unlogged_oom_kills > 0
    if "shortage" in codes or guest_kills:
        advice.append(_protect(s))
    if guest_kills and item.override.ha_cluster:
        advice.append(_ha_panic())
    if "slab_unreclaimable" in codes:
        advice.append(_slab(item))
    advice.extend(extra)
    return tuple(advice)
