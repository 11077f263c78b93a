"""Tonight's actions: one row per domain that needs something, most severe first.

An admin opening the report wants the list of things to do before the
evidence behind them, so the rows are built once here, from the finished
report alone, and shown at the top of report.html and as `actions` in
report.json (where other tools, such as a fleet-wide merge, pick them up).

A domain needs something when its cfg should change (memory or maxmem), when
a guest-side sysctl is proposed, when it could not be read, or when a warning
or worse stands without a size change (the row then says what to look at).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from xenaudit.analysis.interface import Finding, Severity, severity_rank
from xenaudit.formats.patches import patch_paths
from xenaudit.report import AuditReport, DomainReport

ActionKind = Literal["resize", "sysctl", "unread", "review"]

#: Longest "why" kept on the row; the card has the whole story.
WHY_CHARS = 160

_SYSCTL_COMMAND = re.compile(r"sysctl -w ([a-z0-9_.]+)=(-?\d+)\s*$")
#: Collection statuses that mean nothing was read, in words for the row.
_UNREAD = {
    "unreachable": "unreachable",
    "auth_failed": "SSH login refused",
    "host_key_rejected": "host key not trusted",
    "timeout": "timed out",
}


@dataclass(frozen=True)
class Change:
    """One setting to change: in the domain's cfg (MiB) or inside the guest (a sysctl)."""

    setting: str
    current: int | None
    proposed: int
    #: "MiB" for cfg sizes; "" for sysctls, whose names carry their unit.
    unit: str
    where: Literal["cfg", "guest"]

    def text(self, *, short: bool = False) -> str:
        """ "memory 512 → 576 MiB"; `short` gives "maxmem 768" (after a memory change)."""
        unit = f" {self.unit}" if self.unit else ""
        if short:
            return f"{self.setting} {self.proposed}"
        if self.current is None:
            return f"{self.setting} {self.proposed}{unit}"
        return f"{self.setting} {self.current} → {self.proposed}{unit}"


@dataclass(frozen=True)
class Action:
    severity: Severity
    domain: str
    host: str
    #: Position of the domain in `AuditReport.domains` (and report.json's `domains`).
    domain_index: int
    kind: ActionKind
    changes: tuple[Change, ...]
    #: The change as one phrase, e.g. "memory 512 → 576 MiB, maxmem 768".
    change_text: str
    #: One line on why, from the most severe finding.
    why: str
    #: False when the host plan has no room for the size change.
    fits: bool = True
    #: `xl mem-set` may apply the new memory to the running domain.
    live_change_safe: bool = False
    #: Relative path of the cfg patch, when there is one.
    patch: str | None = None


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= WHY_CHARS else flat[: WHY_CHARS - 1] + "…"


def _cfg_changes(dom: DomainReport) -> tuple[Change, ...]:
    rec = dom.assessment.recommendation
    if rec is None or rec.change == "none":
        return ()
    cfg = dom.config
    memory = cfg.memory_mib if cfg else None
    maxmem = cfg.maxmem_mib if cfg and cfg.maxmem_mib is not None else memory
    changes: list[Change] = []
    if memory is None or rec.memory_mib != memory:
        changes.append(Change("memory", memory, rec.memory_mib, "MiB", "cfg"))
    if maxmem is None or rec.maxmem_mib != maxmem:
        changes.append(Change("maxmem", maxmem, rec.maxmem_mib, "MiB", "cfg"))
    return tuple(changes)


def _sysvm_current(dom: DomainReport, name: str) -> int | None:
    sysvm = dom.facts.sysvm if dom.facts else None
    if sysvm is None:
        return None
    short = name.removeprefix("vm.")
    value = sysvm.get_int(short)
    return value if value is not None else sysvm.get_int(name)


def _sysctl_changes(dom: DomainReport) -> tuple[Change, ...]:
    """Guest sysctls the report proposes (min_free_kbytes first), each once."""
    proposed: dict[str, int] = {}
    min_free = dom.assessment.min_free
    if min_free is not None and min_free.suggested_kib != min_free.current_kib:
        proposed["vm.min_free_kbytes"] = min_free.suggested_kib
    for advice in dom.assessment.advice:
        for command in advice.commands:
            match = _SYSCTL_COMMAND.match(command.strip())
            if match is not None:
                proposed.setdefault(match.group(1), int(match.group(2)))
    changes = []
    for name, value in proposed.items():
        current = _sysvm_current(dom, name)
        if name == "vm.min_free_kbytes" and min_free is not None:
            current = min_free.current_kib
        if current != value:
            changes.append(Change(name, current, value, "", "guest"))
    return tuple(changes)


def _change_text(changes: tuple[Change, ...]) -> str:
    cfg = [c for c in changes if c.where == "cfg"]
    guest = [c for c in changes if c.where == "guest"]
    parts: list[str] = []
    if cfg:
        memory_changes = any(c.setting == "memory" for c in cfg)
        parts.append(", ".join(c.text(short=memory_changes and c.setting == "maxmem") for c in cfg))
    if guest:
        parts.append("in the guest: " + ", ".join(c.text() for c in guest))
    return "; ".join(parts)


def _top_finding(dom: DomainReport) -> Finding | None:
    findings = [f for f in dom.assessment.findings if f.code != "healthy"]
    if not findings:
        return None
    return max(findings, key=lambda f: severity_rank(f.severity))


def _why(dom: DomainReport, fits: bool) -> str:
    top = _top_finding(dom)
    why = top.title if top is not None else "; ".join(dom.assessment.diagnosis)
    if not fits:
        rec = dom.assessment.recommendation
        reason = rec.not_fitting_reason if rec else None
        why = f"{why}; does not fit on the host" + (f" ({reason})" if reason else "")
    return _one_line(why or "see the domain's card")


def domain_action(dom: DomainReport, index: int, patch: str | None = None) -> Action | None:
    """The row for one domain, or None when it needs nothing tonight."""
    assessment = dom.assessment
    rec = assessment.recommendation
    status = dom.collection_status
    cfg_changes = _cfg_changes(dom)
    changes = cfg_changes + _sysctl_changes(dom)
    fits = rec.fits if rec is not None else True
    row = Action(
        severity=assessment.severity,
        domain=dom.name,
        host=dom.host,
        domain_index=index,
        kind="review",
        changes=changes,
        change_text="",
        why=_why(dom, fits),
        fits=fits,
        live_change_safe=bool(rec and rec.live_change_safe and cfg_changes),
        patch=patch,
    )
    if changes:
        kind: ActionKind = "resize" if cfg_changes else "sysctl"
        return replace(row, kind=kind, change_text=_change_text(changes))
    if status in _UNREAD:
        error = dom.snapshot.error if dom.snapshot else None
        return replace(
            row,
            kind="unread",
            change_text=f"no change: guest not read ({_UNREAD[status]})",
            why=_one_line(error.removeprefix(f"{dom.name}: ")) if error else row.why,
        )
    if severity_rank(assessment.severity) >= severity_rank("warning"):
        return replace(row, change_text="no size change: review the card")
    return None


def tonight_actions(report: AuditReport) -> tuple[Action, ...]:
    """Every domain's row, most severe first, then by host and name."""
    paths = patch_paths(report)
    rows = [
        action
        for index, dom in enumerate(report.domains)
        if (action := domain_action(dom, index, paths.get(index))) is not None
    ]
    order = {"resize": 0, "sysctl": 1, "unread": 2, "review": 3}
    rows.sort(key=lambda a: (-severity_rank(a.severity), order[a.kind], a.host, a.domain))
    return tuple(rows)


def action_to_json(action: Action) -> dict[str, Any]:
    """One row of report.json's `actions`."""
    return {
        "severity": action.severity,
        "domain": action.domain,
        "host": action.host,
        "domain_index": action.domain_index,
        "kind": action.kind,
        "changes": [
            {
                "setting": c.setting,
                "current": c.current,
                "proposed": c.proposed,
                "unit": c.unit,
                "where": c.where,
            }
            for c in action.changes
        ],
        "change": action.change_text,
        "why": action.why,
        "fits": action.fits,
        "live_change_safe": action.live_change_safe,
        "patch": action.patch,
    }
