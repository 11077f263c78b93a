"""Which live memory changes are safe for a running domain, from the report and inventory.

The domain's live values come from the report; how its host is reached
(`HostEntry`) comes from the inventory (livehosts.py).

What xl and libxl do (tools/xl/xl_mem.c, tools/libs/light/libxl_mem.c):

- `xl mem-set NAME SIZE` (libxl_set_memory_target, enforce=1) moves the
  balloon target. libxl refuses a target above `memory/static-max` in
  xenstore, which is the maxmem the domain booted with, and it pins the
  hypervisor's hard ceiling to the new target.
- `xl mem-max NAME SIZE` (libxl_domain_setmaxmem) moves the hypervisor's hard
  ceiling and `memory/static-max` with it. It refuses a ceiling below the
  current target. xl then accepts a target up to the new maximum, but a
  running PV guest cannot populate memory beyond what it booted with: on Xen
  4.17 with a 6.1 guest, `mem-max 320m` then `mem-set 320m` on a domain booted
  with maxmem 256 leaves the guest's balloon at 256 MiB with a 320 MiB target
  (the real-Xen suite checks this).

Hence: a new target is capped at the boot-time maximum (the rest waits for a
restart of the domain); when maxmem grows, mem-max runs first so the
ceiling is never below a target being set; maxmem is never shrunk live.
libvirt's libxl driver maps onto the same two calls. Beyond what xl allows,
the guest must cope: an HVM guest without a working balloon driver can crash
when its target moves, and a target at or below what the guest already uses
pushes it into reclaim or the OOM killer, so only increases, and decreases
that stay above the measured need, are made.
"""

from __future__ import annotations

from xenaudit.apply.interface import HostEntry, LivePlan, LiveStep, ProposedChange

#: `xl list` shows an idle running domain as blocked; both are running.
LIVE_STATES = frozenset({"running", "blocked"})
LIVE_BACKENDS = frozenset({"xl", "libvirt"})


def _nothing(change: ProposedChange, *notes: str) -> LivePlan:
    return LivePlan(domain=change.domain, host=change.host, steps=(), notes=notes)


def _refusal(change: ProposedChange, host: HostEntry | None) -> str | None:
    """Why this domain may not be changed live at all, or None."""
    if host is None:
        return f"host {change.host!r} is not in the inventory"
    if host.backend not in LIVE_BACKENDS:
        return f"backend {host.backend!r} cannot change a running domain"
    if host.backend == "xl" and host.remote:
        return "this host's xl runs over SSH; apply only runs xl on the Dom0 it runs on"
    if host.backend == "libvirt" and not host.uri:
        return "the report gives no libvirt URI for this host"
    if change.state not in LIVE_STATES:
        return f"the domain was {change.state}, not running"
    if not change.live_change_safe:
        if change.guest_type == "hvm":
            return (
                "HVM guest without a confirmed balloon driver: moving its memory "
                "live could crash it"
            )
        return "the audit did not find a live change safe for this domain"
    return None


def plan_live(change: ProposedChange, host: HostEntry | None) -> LivePlan:
    """The live steps for one domain whose cfg change was applied, in the order to run them."""
    refusal = _refusal(change, host)
    live = change.live
    if refusal is None and (live is None or live.target_kib is None):
        refusal = "the audit did not see the domain's live balloon target"
    if refusal is not None or live is None or live.target_kib is None:
        return _nothing(change, f"no live change: {refusal}; the cfg takes effect at the next boot")
    notes: list[str] = []
    current_mib = live.target_kib // 1024
    boot_max_mib = live.max_kib // 1024 if live.max_kib is not None else None
    target_mib = change.memory_mib
    if boot_max_mib is not None and target_mib > boot_max_mib:
        notes.append(
            f"the domain booted with a maximum of {boot_max_mib} MiB, which a running "
            f"domain cannot pass; the live target stops there and the other "
            f"{target_mib - boot_max_mib} MiB follow at the next boot"
        )
        target_mib = boot_max_mib
    if target_mib == current_mib:
        return _nothing(change, *notes, f"live target is already {current_mib} MiB")
    if target_mib < current_mib:
        need = change.need_mib
        if need is None:
            return _nothing(
                change,
                *notes,
                "no live decrease: the audit did not measure the guest's need",
            )
        if target_mib <= need:
            return _nothing(
                change,
                *notes,
                f"no live decrease: {target_mib} MiB would not stay above the "
                f"guest's measured need of {need} MiB",
            )
    steps: list[LiveStep] = []
    ceiling_mib = boot_max_mib if boot_max_mib is not None else _cfg_ceiling(change)
    if ceiling_mib is not None and change.maxmem_mib > ceiling_mib:
        steps.append(LiveStep(kind="max", memory_mib=change.maxmem_mib))
    steps.append(LiveStep(kind="target", memory_mib=target_mib))
    return LivePlan(domain=change.domain, host=change.host, steps=tuple(steps), notes=tuple(notes))


def _cfg_ceiling(change: ProposedChange) -> int | None:
    """The old cfg's maxmem (xl's default for it is memory), when the live one is unknown."""
    if change.cfg_maxmem_mib is not None:
        return change.cfg_maxmem_mib
    return change.cfg_memory_mib
