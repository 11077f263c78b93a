"""report.html: the single self-contained page admins open every morning.

One file, readable offline and as an e-mail attachment: inline CSS, inline
SVG, no script and no external resource, with a Content-Security-Policy that
forbids both. Everything shown comes from guests and is hostile, so Jinja's
autoescape is on for every template and a finaliser makes control and
bidirectional-override characters visible instead of letting them reshape the
page.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from markupsafe import Markup, escape

from xenaudit.analysis.interface import SEVERITY_ORDER, Evidence, Finding, HostPlan
from xenaudit.atomicwrite import atomic_write_bytes
from xenaudit.demo import SANDBOX_DIR
from xenaudit.formats import charts, units
from xenaudit.formats.actions import Action, tonight_actions
from xenaudit.formats.interface import FormatError, ReportFormat
from xenaudit.formats.patches import patch_paths
from xenaudit.formats.times import boot_time, event_time, parse_instant
from xenaudit.parsers.guest import boot_time_of
from xenaudit.parsers.interface import (
    BalloonMessage,
    KernelEvent,
    OomInvoked,
    OomKill,
    PageAllocFailure,
)
from xenaudit.report import AuditReport, DomainReport, HostReport
from xenaudit.wording import fold_repeats, plural

REPORT_FILE = "report.html"
TEMPLATE = "report.html.j2"

#: Longest evidence or log text shown per line; report.json keeps the whole text.
MAX_TEXT_CHARS = 1000
#: Evidence items shown per finding, events per domain, diff lines per patch.
MAX_EVIDENCE = 40
MAX_EVENTS = 20
MAX_DIFF_LINES = 400

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

#: Collection statuses that mean nothing could be read from the guest.
UNREACHABLE_STATUSES = frozenset({"unreachable", "auth_failed", "host_key_rejected", "timeout"})

# C0 controls except tab and newline, DEL, C1 controls, bidi overrides/isolates,
# zero-width and line/paragraph separators, and lone surrogates.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)

#: Domain names that can go into a shell command unquoted-looking without surprise.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:@-]{0,63}")


def visible(text: str) -> str:
    """`text` with invisible or reordering characters shown as escapes (\\x1b, \\u202e)."""
    if not _INVISIBLE.search(text):
        return text

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _INVISIBLE.sub(escape, text)


def _finalize(value: Any) -> Any:
    """Applied to every `{{ … }}` before escaping: None prints as nothing, text made visible."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return visible(value)
    return value


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters in report.json)"


def fmt_mib(mib: float | None) -> str:
    return units.size_mib(mib)


def fmt_kib(kib: int | None) -> str:
    if kib is None:
        return "–"
    return units.size_mib(kib / 1024)


def prose(text: str | None) -> Markup:
    """Text written by the analysis, for the page: sizes in MiB/GiB and `code` as <code>.

    The text is escaped first; only the <code> tags around backtick pairs are ours.
    An odd number of backticks is left as it is rather than guessed at.
    """
    if text is None:
        return Markup("")
    parts = visible(units.prose_sizes(str(text))).split("`")
    if len(parts) % 2 == 0:
        return Markup(escape("`".join(parts)))
    out = [
        escape(part) if i % 2 == 0 else Markup("<code>") + escape(part) + Markup("</code>")
        for i, part in enumerate(parts)
    ]
    return Markup("").join(out)


#: What xl's one-letter states mean to someone who has not read xl(1).
STATE_NOTES = {
    "blocked": "idle: waiting for work (xl shows an idle guest as “blocked”; this is normal)",
    "running": "running on a CPU right now",
    "paused": "paused by the admin (xl pause); not collected",
    "shutdown": "shutting down",
    "crashed": "crashed",
    "dying": "being destroyed",
    "shut off": "not running; it still counts in the host plan when it is started",
}


# --- where the templates are ---------------------------------------------------


def template_dirs() -> list[Path]:
    """Template folders in search order: inside the installed package, then the checkout."""
    package = Path(__file__).resolve().parent.parent
    candidates = [package / "templates", package.parent / "templates"]
    return [c for c in candidates if (c / TEMPLATE).is_file()]


def make_environment(dirs: Sequence[Path] | None = None) -> Environment:
    found = list(dirs) if dirs is not None else template_dirs()
    if not found:
        raise FormatError(
            HtmlFormat.name, "templates not found (neither xenaudit/templates nor ./templates)"
        )
    env = Environment(
        loader=FileSystemLoader([str(d) for d in found]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["mib"] = fmt_mib
    env.filters["kib"] = fmt_kib
    env.filters["prose"] = prose
    env.globals["plural"] = plural
    return env


# --- what the template draws ---------------------------------------------------


@dataclass(frozen=True)
class DiffLine:
    kind: str
    text: str


@dataclass(frozen=True)
class EvidenceView:
    source: str
    line: int | None
    text: str


@dataclass(frozen=True)
class FindingView:
    code: str
    severity: str
    title: str
    detail: str
    evidence: tuple[EvidenceView, ...]
    evidence_hidden: int
    first_seen: str | None
    nights_seen: int


@dataclass(frozen=True)
class EventView:
    line: int
    #: The stamp as logged (seconds since boot for dmesg), kept as evidence.
    timestamp: str | None
    kind: str
    text: str
    #: "2026-11-23 14:02 UTC" and "2 days ago", when the stamp can be placed in time.
    wall: str | None = None
    ago: str | None = None


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class ApplyStep:
    domain: str
    host: str
    patch: str | None
    review: str | None
    dry_run: str | None
    patch_command: str | None
    mem_set: str | None
    note: str | None
    #: For libvirt-defined domains (no xl cfg): the commands that store the new size.
    persist: str | None = None


@dataclass(frozen=True)
class DomainView:
    anchor: str
    name: str
    host: str
    state: str
    state_note: str | None
    guest_type: str
    severity: str
    collection_status: str
    collection_error: str | None
    section_problems: tuple[str, ...]
    memory_mib: int | None
    maxmem_mib: int | None
    rec: Any
    rec_label: str
    need_mib: int | None
    chart: charts.BarChart
    chart_narrow: charts.BarChart
    sparkline: charts.Sparkline | None
    findings: tuple[FindingView, ...]
    advice: Any
    drift: tuple[str, ...]
    events: tuple[EventView, ...]
    events_hidden: int
    event_counts: tuple[tuple[str, int], ...]
    facts: tuple[Fact, ...]
    diff: tuple[DiffLine, ...]
    diff_hidden: int
    patch: str | None
    parse_errors: tuple[str, ...]
    config_error: str | None
    config_path: str | None
    processes: str | None = None


@dataclass(frozen=True)
class HostBlock:
    name: str
    backend: str
    error: str | None
    xen_version: str | None
    total: str
    free: str
    plan: HostPlan | None
    chart: charts.BarChart | None
    guests: int
    #: The same chart laid out for a phone's width, shown instead of `chart` there.
    chart_narrow: charts.BarChart | None = None


def diff_lines(text: str) -> list[DiffLine]:
    """Classify unified-diff lines for colouring."""
    lines: list[DiffLine] = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            kind = "hdr"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append(DiffLine(kind, clip(line)))
    return lines


def _event_text(event: KernelEvent) -> tuple[str, str]:
    if isinstance(event, PageAllocFailure):
        flags = "|".join(event.gfp_flags) or "no flags decoded"
        atomic = ", atomic" if event.is_atomic else ""
        return (
            "page allocation failure",
            f"{event.process}: order:{event.order} mode:{event.gfp_mask} ({flags}{atomic})",
        )
    if isinstance(event, OomInvoked):
        return ("OOM killer invoked", f"by {event.process}, order {event.order}")
    if isinstance(event, OomKill):
        rss = fmt_kib(event.anon_rss_kib) if event.anon_rss_kib is not None else "?"
        scope = " (memory cgroup)" if event.memcg else ""
        return (
            "OOM kill",
            f"killed {event.victim_process} (pid {event.victim_pid}), anon-rss {rss}{scope}",
        )
    if isinstance(event, BalloonMessage):
        return ("balloon", event.message)
    return (str(getattr(event, "kind", "event")), "")


def _finding_view(finding: Finding) -> FindingView:
    shown: Sequence[Evidence] = finding.evidence[:MAX_EVIDENCE]
    return FindingView(
        code=finding.code,
        severity=_severity_class(finding.severity),
        title=finding.title,
        detail=finding.detail,
        evidence=tuple(EvidenceView(e.source, e.line, clip(e.text)) for e in shown),
        evidence_hidden=max(0, len(finding.evidence) - MAX_EVIDENCE),
        first_seen=finding.first_seen,
        nights_seen=finding.nights_seen,
    )


def _severity_class(severity: str) -> str:
    """Severity used as a CSS class name, so it may only be one of ours."""
    return severity if severity in SEVERITY_ORDER else "unknown"


def _facts(dom: DomainReport) -> tuple[Fact, ...]:
    facts: list[Fact] = []
    live = dom.domain
    mi = dom.facts.meminfo if dom.facts else None
    if mi is not None:
        estimated = " (estimated)" if mi.mem_available_estimated else ""
        facts += [
            Fact("MemTotal", fmt_kib(mi.mem_total_kib)),
            Fact("MemAvailable", fmt_kib(mi.mem_available_kib) + estimated),
            Fact("MemFree", fmt_kib(mi.get("MemFree"))),
            Fact("Cached", fmt_kib(mi.get("Cached"))),
        ]
        swap_total, swap_free = mi.get("SwapTotal"), mi.get("SwapFree")
        if swap_total:
            used = swap_total - (swap_free or 0)
            facts.append(Fact("Swap used", f"{fmt_kib(used)} of {fmt_kib(swap_total)}"))
        elif swap_total == 0:
            facts.append(Fact("Swap", "none"))
    psi = dom.facts.psi if dom.facts else None
    if psi is not None:
        if psi.some is not None:
            facts.append(Fact("PSI some avg60", f"{psi.some.avg60:.2f} %"))
        if psi.full is not None:
            facts.append(Fact("PSI full avg60", f"{psi.full.avg60:.2f} %"))
    min_free = dom.assessment.min_free
    if min_free is not None:
        now = str(min_free.current_kib) if min_free.current_kib is not None else "?"
        sizes = f"{units.size_kib(min_free.current_kib)} → {units.size_kib(min_free.suggested_kib)}"
        if min_free.current_kib is None:
            sizes = units.size_kib(min_free.suggested_kib)
        facts.append(Fact("vm.min_free_kbytes", f"{now} → {min_free.suggested_kib} ({sizes})"))
    facts.append(Fact("Live target", fmt_kib(live.target_kib)))
    facts.append(Fact("Live max", fmt_kib(live.max_kib)))
    if dom.facts and dom.facts.balloon_current_kib is not None:
        facts.append(Fact("Balloon current", fmt_kib(dom.facts.balloon_current_kib)))
    if live.vcpus is not None:
        facts.append(Fact("vCPUs", str(live.vcpus)))
    if dom.snapshot and dom.snapshot.kernlog_source:
        facts.append(Fact("Kernel log from", dom.snapshot.kernlog_source))
    boot = boot_time_of(dom.snapshot.sections.get("uname")) if dom.snapshot else None
    if boot is not None:
        up = boot_time(boot, parse_instant(dom.snapshot.collected_at if dom.snapshot else None))
        if up.wall:
            facts.append(Fact("Booted", f"{up.wall} ({up.ago})" if up.ago else up.wall))
    return tuple(facts)


#: Processes named in a card's "largest processes" line.
TOP_PROCESS_NAMES = 8


def _processes(dom: DomainReport) -> str | None:
    """The largest processes by resident memory, repeats folded ("postgres ×4, cron")."""
    if dom.facts is None or not dom.facts.processes:
        return None
    biggest = sorted(dom.facts.processes, key=lambda p: (-p.rss_kib, p.pid))[:TOP_PROCESS_NAMES]
    return fold_repeats(clip(p.comm, 64) for p in biggest)


def _memory_figures(dom: DomainReport) -> charts.MemoryFigures:
    mi = dom.facts.meminfo if dom.facts else None
    rec = dom.assessment.recommendation
    cfg = dom.config

    def mib(kib: int | None) -> float | None:
        return kib / 1024 if kib is not None else None

    return charts.MemoryFigures(
        mem_total_mib=mib(mi.mem_total_kib) if mi else None,
        mem_available_mib=mib(mi.mem_available_kib) if mi else None,
        mem_free_mib=mib(mi.get("MemFree")) if mi else None,
        memory_mib=cfg.memory_mib if cfg else None,
        maxmem_mib=cfg.maxmem_mib if cfg else None,
        recommended_mib=rec.memory_mib if rec else None,
        recommended_maxmem_mib=rec.maxmem_mib if rec else None,
    )


def _rec_label(dom: DomainReport) -> str:
    rec = dom.assessment.recommendation
    cfg = dom.config
    if rec is None:
        return "no recommendation"
    current = cfg.memory_mib if cfg and cfg.memory_mib is not None else None
    if rec.change == "none":
        return f"keep {fmt_mib(rec.memory_mib)}"
    arrow = f"{fmt_mib(current)} → " if current is not None else ""
    text = f"{arrow}{fmt_mib(rec.memory_mib)}"
    if rec.maxmem_mib != rec.memory_mib:
        text += f" (maxmem {fmt_mib(rec.maxmem_mib)})"
    return text


def domain_view(dom: DomainReport, index: int, patch: str | None) -> DomainView:
    assessment = dom.assessment
    snap = dom.snapshot
    events: Sequence[KernelEvent] = (
        dom.facts.kernlog.events if dom.facts and dom.facts.kernlog else ()
    )
    counts = Counter(getattr(e, "kind", "event") for e in events)
    kernlog = dom.facts.kernlog if dom.facts else None
    if kernlog is not None and kernlog.counts is not None:
        # Exact totals: only the first and last events of each kind are kept.
        counts = Counter({k: n for k, n in kernlog.counts.by_kind().items() if n})
    cfg = dom.config
    rec = assessment.recommendation
    problems = tuple(
        f"{name}: {status}"
        for name, status in (snap.section_status.items() if snap else ())
        if status != "ok"
    )
    boot = boot_time_of(snap.sections.get("uname")) if snap else None
    read_at = parse_instant(snap.collected_at) if snap else None
    event_views = []
    for event in sorted(events, key=lambda e: e.line)[:MAX_EVENTS]:
        kind, text = _event_text(event)
        when = event_time(event.timestamp, boot, read_at)
        event_views.append(
            EventView(event.line, event.timestamp, kind, clip(text), when.wall, when.ago)
        )
    diff = diff_lines(dom.patch_text) if dom.patch_text else []
    figures = _memory_figures(dom)
    return DomainView(
        anchor=f"d{index}",
        name=dom.name,
        host=dom.host,
        state=dom.domain.state,
        state_note=STATE_NOTES.get(dom.domain.state),
        guest_type=(cfg.guest_type if cfg and cfg.guest_type else dom.domain.guest_type) or "?",
        severity=_severity_class(assessment.severity),
        collection_status=dom.collection_status,
        collection_error=snap.error if snap else None,
        section_problems=problems,
        memory_mib=cfg.memory_mib if cfg else None,
        maxmem_mib=cfg.maxmem_mib if cfg else None,
        rec=rec,
        rec_label=_rec_label(dom),
        need_mib=assessment.need_mib,
        chart=charts.domain_memory_chart(figures),
        chart_narrow=charts.domain_memory_chart(figures, charts.NARROW_WIDTH),
        sparkline=charts.need_sparkline(
            assessment.need_history_mib,
            cfg.memory_mib if cfg else None,
            rec.memory_mib if rec else None,
        ),
        findings=tuple(_finding_view(f) for f in assessment.findings),
        advice=assessment.advice,
        drift=dom.drift,
        events=tuple(event_views),
        events_hidden=max(0, sum(counts.values()) - min(len(events), MAX_EVENTS)),
        event_counts=tuple(sorted(counts.items())),
        facts=_facts(dom),
        diff=tuple(diff[:MAX_DIFF_LINES]),
        diff_hidden=max(0, len(diff) - MAX_DIFF_LINES),
        patch=patch,
        parse_errors=dom.facts.errors if dom.facts else (),
        config_error=cfg.error if cfg else "no xl.cfg found for this domain",
        config_path=cfg.path if cfg else None,
        processes=_processes(dom),
    )


def _host_block(host: HostReport) -> HostBlock:
    view = host.view
    return HostBlock(
        name=host.name,
        backend=host.backend,
        error=host.error,
        xen_version=view.xen_version if view else None,
        total=fmt_kib(view.total_memory_kib) if view else "–",
        free=fmt_kib(view.free_memory_kib) if view else "–",
        plan=host.plan,
        chart=charts.host_plan_chart(host.plan) if host.plan else None,
        chart_narrow=(
            charts.host_plan_chart(host.plan, charts.NARROW_WIDTH) if host.plan else None
        ),
        guests=len(view.guests) if view else 0,
    )


def apply_step(
    dom: DomainReport,
    patch: str | None,
    outdir: Path,
    host: HostReport | None = None,
    root: Path | None = None,
) -> ApplyStep:
    """Copy-paste commands for one domain; every guest-derived word is shell-quoted.

    On a libvirt host a domain without an xl cfg is defined in libvirt, so the
    new size is stored with `virsh … --config` instead of a patch.
    """
    rec = dom.assessment.recommendation
    virsh = None
    if host is not None and host.backend == "libvirt" and host.uri:
        virsh = f"virsh -c {shlex.quote(host.uri)}"
    review = dry_run = patch_command = None
    if patch is not None:
        quoted = shlex.quote(str(outdir / patch))
        top = shlex.quote(str(root)) if root is not None else "/"
        review = f"less {quoted}"
        dry_run = f"cd {top} && patch -p1 --dry-run < {quoted}"
        patch_command = f"cd {top} && patch -p1 < {quoted}"
    mem_set = note = persist = None
    if virsh is not None and patch is None and rec is not None and rec.change != "none":
        name = shlex.quote(dom.name)
        persist = (
            f"{virsh} setmaxmem {name} {rec.maxmem_mib}M --config\n"
            f"{virsh} setmem {name} {rec.memory_mib}M --config"
        )
    if rec is not None and rec.live_change_safe and rec.change != "none" and virsh is not None:
        mem_set = f"{virsh} setmem {shlex.quote(dom.name)} {rec.memory_mib}M --live"
    elif rec is not None and rec.live_change_safe and rec.change != "none":
        if _PLAIN_NAME.fullmatch(dom.name):
            mem_set = f"xl mem-set {shlex.quote(dom.name)} {rec.memory_mib}m"
        elif dom.domain.domid is not None:
            mem_set = f"xl mem-set {dom.domain.domid} {rec.memory_mib}m"
            note = "the name has unusual characters, so the command uses the domid seen last night"
    elif rec is not None and rec.change != "none":
        note = "takes effect when the domain is next started (not safe live)"
    return ApplyStep(
        dom.name, dom.host, patch, review, dry_run, patch_command, mem_set, note, persist
    )


@dataclass(frozen=True)
class ActionView:
    severity: str
    domain: str
    host: str
    anchor: str
    kind: str
    change: str
    why: str
    fits: bool
    live: bool


def action_view(action: Action) -> ActionView:
    return ActionView(
        severity=_severity_class(action.severity),
        domain=action.domain,
        host=action.host,
        anchor=f"d{action.domain_index}",
        kind=action.kind,
        change=action.change_text,
        why=clip(action.why, 300),
        fits=action.fits,
        live=action.live_change_safe,
    )


def nothing_read(report: AuditReport) -> bool:
    """No hypervisor answered: the report has nothing to judge, which is not "all is well"."""
    return not report.hosts or all(h.error is not None or h.view is None for h in report.hosts)


def _run_summary(report: AuditReport) -> dict[str, Any]:
    statuses = Counter(d.collection_status for d in report.domains)
    severities = Counter(d.assessment.severity for d in report.domains)
    short_hosts = [h for h in report.hosts if h.plan is not None and not h.plan.fits]
    return {
        "hosts": [h.name for h in report.hosts],
        "domains": len(report.domains),
        "unreachable": sum(statuses[s] for s in UNREACHABLE_STATUSES),
        "partial": statuses["partial"],
        "skipped": statuses["skipped"],
        "severities": [(s, severities[s]) for s in reversed(SEVERITY_ORDER)],
        "short_hosts": [(h.name, h.plan.shortfall_mib) for h in short_hosts if h.plan],
        # The template names the host, so the error's own "host: " prefix goes.
        "host_errors": [
            (h.name, h.error.removeprefix(f"{h.name}: ")) for h in report.hosts if h.error
        ],
        "nothing_read": nothing_read(report),
    }


def render_html(report: AuditReport, outdir: Path, env: Environment | None = None) -> str:
    """The whole page as text. `outdir` is where the report lives, for the apply commands."""
    env = env or make_environment()
    outdir = Path(outdir).resolve()
    paths = patch_paths(report)
    index_of = {id(d): i for i, d in enumerate(report.domains)}
    ordered = report.domains_by_severity()
    views = [domain_view(d, index_of[id(d)], paths.get(index_of[id(d)])) for d in ordered]
    hosts = {h.name: h for h in report.hosts}
    # The demo's cfgs are copied under OUTDIR/demo-root, which stands in for /.
    sandbox = outdir / SANDBOX_DIR if report.demo else None
    steps = [
        apply_step(d, paths.get(index_of[id(d)]), outdir, hosts.get(d.host), sandbox)
        for d in ordered
        if d.patch_text is not None
        or (d.assessment.recommendation and d.assessment.recommendation.change != "none")
    ]
    context = {
        "report": report,
        "run": _run_summary(report),
        "hosts": [_host_block(h) for h in report.hosts],
        "domains": views,
        "actions": [action_view(a) for a in tonight_actions(report)],
        "steps": steps,
        "outdir": str(outdir),
        "outdir_quoted": shlex.quote(str(outdir)),
        "sandbox_quoted": shlex.quote(str(sandbox)) if sandbox is not None else None,
        "csp": CONTENT_SECURITY_POLICY,
        "severities": SEVERITY_ORDER,
    }
    try:
        return env.get_template(TEMPLATE).render(context)
    except TemplateError as exc:
        raise FormatError(HtmlFormat.name, f"template {TEMPLATE}: {exc}") from exc


class HtmlFormat(ReportFormat):
    name = "html"

    def write(self, report: AuditReport, outdir: Path) -> list[Path]:
        path = Path(outdir) / REPORT_FILE
        page = render_html(report, Path(outdir))
        data = page.encode("utf-8", errors="replace")
        try:
            atomic_write_bytes(path, data, root=outdir)
        except OSError as exc:
            raise FormatError(self.name, f"cannot write {path}: {exc}") from exc
        return [path]
