"""fleet.html: the one page that says what to change tonight across every Dom0.

Same rules as report.html (see `xenaudit.formats.html`): one self-contained
file, no script, no external resource, the same Content-Security-Policy, and
every value from a report escaped and made visible. The only links are
relative ones into the Dom0 folders beside the page, built from folder names
the merge chose itself, never from text inside a report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, TemplateError

from xenaudit.analysis.interface import SEVERITY_ORDER
from xenaudit.atomicwrite import atomic_writer
from xenaudit.fleet.interface import FLEET_HTML, Dom0Summary, FleetAction, FleetFormat, FleetReport
from xenaudit.formats.html import CONTENT_SECURITY_POLICY, clip, make_environment
from xenaudit.formats.interface import FormatError

TEMPLATE = "fleet.html.j2"
_SAFE_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}")
_SAFE_ANCHOR = re.compile(r"d[0-9]{1,9}")


@dataclass(frozen=True)
class ActionView:
    severity: str
    dom0: str
    host: str
    domain: str
    kind: str
    change: str
    why: str
    fits: bool
    live_change_safe: bool
    patch: str | None
    href: str | None


@dataclass(frozen=True)
class Dom0View:
    summary: Dom0Summary
    href: str | None
    age: str
    status: tuple[str, ...]
    severity: str


def page_link(folder: str, anchor: str | None = None) -> str | None:
    """A relative link into a Dom0's copied report, only for names the merge made."""
    if not _SAFE_FOLDER.fullmatch(folder):
        return None
    link = f"{quote(folder)}/report.html"
    if anchor is not None:
        if not _SAFE_ANCHOR.fullmatch(anchor):
            return link
        link += f"#{anchor}"
    return link


def _severity_class(severity: str) -> str:
    return severity if severity in SEVERITY_ORDER else "unknown"


def age_text(hours: float) -> str:
    if hours < 0:
        return f"{-hours:.1f} h in the future (clock skew?)"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def action_view(row: FleetAction, has_page: bool) -> ActionView:
    return ActionView(
        severity=_severity_class(row.severity),
        dom0=row.dom0,
        host=row.host,
        domain=row.domain,
        kind=row.kind,
        change=row.change,
        why=clip(row.why),
        fits=row.fits,
        live_change_safe=row.live_change_safe,
        patch=row.patch,
        href=page_link(row.dom0, row.anchor) if has_page else None,
    )


def dom0_view(dom0: Dom0Summary) -> Dom0View:
    status = []
    if dom0.stale:
        status.append("stale")
    if dom0.incomplete:
        status.append("incomplete")
    if dom0.copy_problems:
        status.append("copy incomplete")
    return Dom0View(
        summary=dom0,
        href=page_link(dom0.folder) if dom0.has_page else None,
        age=age_text(dom0.age_h),
        status=tuple(status) or ("ok",),
        severity=_severity_class(dom0.worst_severity),
    )


def _totals(fleet: FleetReport, dom0s: Sequence[Dom0Summary]) -> dict[str, Any]:
    return {
        "dom0s": len(dom0s),
        "domains": sum(d.domains for d in dom0s),
        "actions": len(fleet.actions),
        "missing": len(fleet.missing),
        "left_out": len(fleet.left_out),
        "attention": len(fleet.attention()),
        "short_dom0s": sum(1 for d in dom0s if d.shortfall_mib),
        "findings": [
            (s, sum(d.findings_of(s) for d in dom0s)) for s in reversed(SEVERITY_ORDER) if s != "ok"
        ],
    }


def render_fleet_html(fleet: FleetReport, env: Environment | None = None) -> str:
    env = env or make_environment()
    pages = {d.folder: d.has_page for d in fleet.dom0s}
    rows = [
        action_view(row, pages.get(row.dom0, False))
        for row in islice(fleet.actions, fleet.page_actions)
    ]
    context = {
        "fleet": fleet,
        "csp": CONTENT_SECURITY_POLICY,
        "totals": _totals(fleet, fleet.dom0s),
        "actions": rows,
        "actions_hidden": max(0, len(fleet.actions) - len(rows)),
        "dom0s": [dom0_view(d) for d in fleet.dom0s],
        "attention": [dom0_view(d) for d in fleet.attention()],
        "severities": [s for s in reversed(SEVERITY_ORDER) if s != "ok"],
    }
    try:
        return env.get_template(TEMPLATE).render(context)
    except TemplateError as exc:
        raise FormatError(FLEET_HTML, f"template {TEMPLATE}: {exc}") from exc


class FleetHtml(FleetFormat):
    name = "html"

    def write(self, fleet: FleetReport, fleet_dir: Path) -> list[Path]:
        path = Path(fleet_dir) / FLEET_HTML
        page = render_fleet_html(fleet)
        with atomic_writer(path) as out:
            out.write(page.encode("utf-8", errors="replace"))
        return [path]
