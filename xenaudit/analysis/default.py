"""The default analyzer: signals → diagnosis → sizing → advice, then the host plan.

Each step lives in its own module; this one only wires them and keeps the
promise of `Analyzer.assess`: bad guest data never raises, it becomes a
finding that names the domain and the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from xenaudit.analysis import hypervisor_side, minfree
from xenaudit.analysis.advice import advise
from xenaudit.analysis.diagnosis import NOT_HEALTHY_CODES, PRESSURE_CODES, diagnose
from xenaudit.analysis.hostplan import plan_host
from xenaudit.analysis.interface import (
    Advice,
    Analyzer,
    Assessment,
    DomainInput,
    Evidence,
    Finding,
    HostPlan,
    MinFreeSuggestion,
    Recommendation,
    Severity,
    SysctlProposal,
    severity_rank,
)
from xenaudit.analysis.signals import Signals, extract
from xenaudit.analysis.sizing import article, size
from xenaudit.analysis.units import kib_to_mib
from xenaudit.hypervisor.interface import HostView

#: Collection outcomes that mean the guest should have answered and did not.
_FAILED = frozenset({"unreachable", "auth_failed", "host_key_rejected", "timeout"})
#: Findings that stand without guest data (they come from the cfg and the hypervisor).
_CONFIG_ONLY = frozenset({"hvm_pod_risk", "drift", "passthrough_pod"})
#: Findings whose fix (maxmem = memory) needs no guest data to be right.
_MAXMEM_FIXES = frozenset({"hvm_pod_risk", "passthrough_pod"})


class DefaultAnalyzer(Analyzer):
    """Diagnosis and sizing as documented in the analysis modules."""

    def __init__(self, xen_reserve_mib: int | None = None) -> None:
        #: Overrides DomainInput.xen_reserve_mib for every host when set.
        self.xen_reserve_mib = xen_reserve_mib

    def assess(self, item: DomainInput) -> Assessment:
        try:
            if hypervisor_side.applies(item):
                return hypervisor_side.assess(item)
            return hypervisor_side.annotate(_assess(item), item)
        except Exception as exc:  # the promise: one broken guest never stops the audit
            finding = Finding(
                "insufficient_data",
                "warning",
                "Analysis failed for this domain",
                f"{item.domain.name}: analysis: {type(exc).__name__}: {exc}",
                (Evidence("analysis", f"{type(exc).__name__}: {exc}"[:300]),),
            )
            return Assessment(
                domain=item.domain.name,
                host=item.host.name,
                severity="warning",
                findings=(finding,),
            )

    def plan_host(
        self,
        host: HostView,
        assessments: Sequence[Assessment],
        inputs: Sequence[DomainInput],
        xen_reserve_mib: int | None = None,
    ) -> tuple[HostPlan, tuple[Assessment, ...]]:
        """As `Analyzer.plan_host`; Xen's own memory comes from `xen_reserve_mib`, else
        the analyzer's, else the inputs' DomainInput.xen_reserve_mib (256 by default)."""
        reserve = xen_reserve_mib if xen_reserve_mib is not None else self.xen_reserve_mib
        plan, updated = plan_host(host, assessments, inputs, reserve)
        notes = hypervisor_side.host_notes(host)
        if notes:
            plan = replace(plan, notes=(*plan.notes, *notes))
        return plan, updated


def _input_problems(item: DomainInput) -> Finding | None:
    evidence: list[Evidence] = []
    if item.facts is not None:
        for error in item.facts.errors[:10]:
            source = error.split(":", 1)[0].strip() or "parsers"
            evidence.append(Evidence(source[:40], error[:300]))
    snapshot = item.snapshot
    if snapshot is not None and snapshot.status in ("ok", "partial"):
        for section, status in sorted(snapshot.section_status.items()):
            if status in ("denied", "truncated", "error"):
                evidence.append(Evidence(section[:40], f"section {status}"))
    if item.config is not None and item.config.error:
        evidence.append(Evidence("cfg", item.config.error[:300]))
    if not evidence:
        return None
    return Finding(
        "input_error",
        "info",
        "Some inputs could not be read",
        "The analysis used what it could; the numbers below name what was missing.",
        tuple(evidence),
    )


def _insufficient(item: DomainInput, s: Signals) -> Finding:
    snapshot = item.snapshot
    failed = snapshot is not None and snapshot.status in _FAILED
    quiet = item.domain.state == "shutoff" or (
        snapshot is not None and snapshot.status == "skipped"
    )
    severity: Severity = "info" if quiet and not failed else "warning"
    why = s.insufficient_reason or "not enough data"
    return Finding(
        "insufficient_data",
        severity,
        "Not enough data to size this domain",
        f"{item.domain.name}: {why}. Its memory is left as it is.",
        (Evidence("collector", why[:300]),),
    )


def _pod_only(s: Signals, codes: set[str]) -> Recommendation | None:
    """maxmem = memory for a guest PoD would crash or libxl would refuse, without guest data."""
    memory = s.cfg_memory_mib
    if memory is None:
        return None
    if "passthrough_pod" in codes:
        why = (
            f"maxmem = memory = {memory} MiB: the domain passes hardware through "
            f"({s.passthrough}) and libxl refuses to start it in populate-on-demand mode"
        )
    else:
        why = (
            f"maxmem = memory = {memory} MiB: {article(s.guest_type)} guest without "
            "a confirmed balloon driver must not run in populate-on-demand mode "
            f"({s.balloon_basis})"
        )
    return Recommendation(
        memory_mib=memory,
        maxmem_mib=memory,
        reasons=(f"keep memory {memory} MiB: the guest's numbers cannot be used to size it", why),
        confidence="low",
        need_mib=None,
        change="maxmem",
    )


def _bad_input(s: Signals) -> Finding:
    why = s.implausible or "implausible numbers"
    return Finding(
        "bad_input",
        "warning",
        "The guest's numbers are implausible",
        f"{s.domain}: {why}. Nothing is sized from them; the memory is left as it is.",
        (Evidence("meminfo", why[:300]),),
    )


def _headroom_finding(s: Signals, rec: Recommendation) -> Finding:
    need = f"{rec.need_mib} MiB" if rec.need_mib is not None else "the need"
    return Finding(
        "shortage",
        "info",
        "Little headroom",
        f"The guest shows no stalls or failures, but {need} plus the margin no longer fits "
        f"in {s.current_memory_mib} MiB.",
        (
            Evidence(
                "meminfo", f"MemTotal {s.mem_total_kib} kB, MemAvailable {s.mem_available_kib} kB"
            ),
        ),
    )


def _healthy(s: Signals) -> Finding:
    parts = []
    if s.available_pct is not None:
        parts.append(f"{s.available_pct:.0f}% of memory available")
    if s.swap_used_pct is not None:
        parts.append(f"{s.swap_used_pct:.0f}% of swap used")
    parts.append(
        "no allocation failures or OOM kills in the log"
        if not s.failures and not s.guest_oom_kills
        else "no new failures"
    )
    return Finding("healthy", "ok", "Healthy", "; ".join(parts) + ".")


def _with_history(findings: Sequence[Finding], s: Signals) -> tuple[Finding, ...]:
    annotated = []
    for finding in findings:
        nights = [n.run_at for n in s.nights if finding.code in n.finding_codes]
        if nights:
            finding = replace(finding, first_seen=nights[0], nights_seen=len(nights))
        annotated.append(finding)
    return tuple(annotated)


def _min_free(
    s: Signals, item: DomainInput, rec: Recommendation | None
) -> tuple[MinFreeSuggestion | None, tuple[SysctlProposal, ...]]:
    """The live reserve sysctls for an atomic_reserve finding, sized to the guest."""
    if s.mem_total_kib is None:
        return None, ()
    resized = None
    if rec is not None and rec.change == "increase":
        resized = rec.memory_mib * 1024 - s.reservation_kib
    high = item.facts.meminfo.get("HighTotal") if item.facts and item.facts.meminfo else None
    suggestion = minfree.suggest(s.mem_total_kib, s.min_free_kbytes, s.kernel, high, resized)
    sysvm = item.facts.sysvm if item.facts else None
    size = resized or s.mem_total_kib
    proposals = tuple(
        p
        for p in (
            minfree.scale_factor(sysvm, s.kernel_full, size, s.reserve_counters),
            minfree.extra_free(sysvm, size),
        )
        if p is not None
    )
    return suggestion, proposals


def _assess(item: DomainInput) -> Assessment:
    s = extract(item)
    diagnosis = diagnose(item, s)
    findings = list(diagnosis.findings)
    problems = _input_problems(item)
    recommendation: Recommendation | None = None
    min_free: MinFreeSuggestion | None = None
    sysctls: tuple[SysctlProposal, ...] = ()
    extra_advice: tuple[Advice, ...] = ()

    if not s.sizable:
        findings = [f for f in findings if f.code in _CONFIG_ONLY]
        findings.insert(0, _bad_input(s) if s.implausible else _insufficient(item, s))
        codes = {f.code for f in findings}
        if codes & _MAXMEM_FIXES:
            recommendation = _pod_only(s, codes)
    else:
        sizing = size(item, s, diagnosis)
        recommendation = sizing.recommendation
        findings.extend(sizing.findings)
        extra_advice = sizing.advice
        codes = {f.code for f in findings}
        if (
            recommendation is not None
            and recommendation.change == "increase"
            and not codes & PRESSURE_CODES
            and not codes & {"pod_exhaustion", "passthrough_pod"}
        ):
            findings.append(_headroom_finding(s, recommendation))
        if "atomic_reserve" in codes:
            min_free, sysctls = _min_free(s, item, recommendation)
    if problems is not None:
        findings.append(problems)
    if not any(severity_rank(f.severity) >= severity_rank("warning") for f in findings) and not (
        {f.code for f in findings}
        & (NOT_HEALTHY_CODES | {"insufficient_data", "hvm_pod_risk", "bad_input"})
    ):
        findings.insert(0, _healthy(s))

    ordered = sorted(findings, key=lambda f: -severity_rank(f.severity))
    annotated = _with_history(ordered, s)
    advice = (
        advise(item, s, diagnosis, annotated, min_free, sysctls, extra_advice) if s.sizable else ()
    )
    worst: Severity = max((f.severity for f in annotated), key=severity_rank, default="ok")
    return Assessment(
        domain=item.domain.name,
        host=item.host.name,
        severity=worst,
        findings=annotated,
        advice=advice,
        recommendation=recommendation,
        need_mib=kib_to_mib(s.need_kib) if s.need_kib is not None and s.sizable else None,
        need_history_mib=tuple(kib_to_mib(k) for k in s.need_series_kib),
        min_free=min_free,
        sysctls=sysctls,
    )
