"""report.json: the machine-readable report other tools build on.

The keys are a contract (see xenaudit/schemas/report.schema.json): existing
keys keep their meaning, new ones may be added. Every object the contract
names is always present, with nulls inside when a value is unknown, so readers
can index without guarding each level.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from xenaudit.analysis.interface import (
    Advice,
    Assessment,
    Evidence,
    Finding,
    HostPlan,
    MinFreeSuggestion,
    Recommendation,
)
from xenaudit.atomicwrite import atomic_write_bytes
from xenaudit.formats.actions import action_to_json, tonight_actions
from xenaudit.formats.interface import FormatError, ReportFormat
from xenaudit.formats.patches import patch_paths
from xenaudit.parsers.events import counts_to_json, event_to_json
from xenaudit.parsers.interface import GuestFacts, Psi, PsiLine
from xenaudit.report import SCHEMA_VERSION, AuditReport, DomainReport, HostReport

REPORT_FILE = "report.json"
#: Processes listed per domain, largest resident set first.
TOP_PROCESSES = 10


def _number(value: float | None) -> float | None:
    """NaN and infinities are not JSON; a guest can print them in PSI text."""
    if value is None or not math.isfinite(value):
        return None
    return value


def _psi_line(line: PsiLine | None) -> dict[str, Any] | None:
    if line is None:
        return None
    return {
        "avg10": _number(line.avg10),
        "avg60": _number(line.avg60),
        "avg300": _number(line.avg300),
        "total_us": line.total_us,
    }


def _psi(psi: Psi | None) -> dict[str, Any] | None:
    if psi is None:
        return None
    return {"some": _psi_line(psi.some), "full": _psi_line(psi.full)}


def _evidence(item: Evidence) -> dict[str, Any]:
    return {"source": item.source, "text": item.text, "line": item.line}


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "severity": finding.severity,
        "title": finding.title,
        "detail": finding.detail,
        "evidence": [_evidence(e) for e in finding.evidence],
        "first_seen": finding.first_seen,
        "nights_seen": finding.nights_seen,
    }


def _advice(advice: Advice) -> dict[str, Any]:
    return {"title": advice.title, "detail": advice.detail, "commands": list(advice.commands)}


def _min_free(suggestion: MinFreeSuggestion | None) -> dict[str, Any] | None:
    if suggestion is None:
        return None
    return {
        "current_kib": suggestion.current_kib,
        "kernel_default_kib": suggestion.kernel_default_kib,
        "suggested_kib": suggestion.suggested_kib,
        "sized_for_kib": suggestion.sized_for_kib,
        "reasons": list(suggestion.reasons),
    }


def _recommendation(rec: Recommendation | None) -> dict[str, Any] | None:
    if rec is None:
        return None
    return {
        "memory_mib": rec.memory_mib,
        "maxmem_mib": rec.maxmem_mib,
        "reasons": list(rec.reasons),
        "confidence": rec.confidence,
        "need_mib": rec.need_mib,
        "change": rec.change,
        "fits": rec.fits,
        "not_fitting_reason": rec.not_fitting_reason,
        "live_change_safe": rec.live_change_safe,
    }


def _plan(plan: HostPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "host": plan.host,
        "total_mib": plan.total_mib,
        "dom0_mib": plan.dom0_mib,
        "xen_reserve_mib": plan.xen_reserve_mib,
        "entries": [
            {
                "domain": e.domain,
                "current_mib": e.current_mib,
                "planned_mib": e.planned_mib,
                "accepted": e.accepted,
            }
            for e in plan.entries
        ],
        "current_total_mib": plan.current_total_mib,
        "planned_total_mib": plan.planned_total_mib,
        "shortfall_mib": plan.shortfall_mib,
        "fits": plan.fits,
        "notes": list(plan.notes),
        "xen_total_mib": plan.xen_total_mib,
        "frame_table_mib": plan.frame_table_mib,
        "paging_pool_mib": plan.paging_pool_mib,
        "domain_overhead_mib": plan.domain_overhead_mib,
        "video_mib": plan.video_mib,
        "dom0_mem_mib": plan.dom0_mem_mib,
        "autoballoon": plan.autoballoon,
        "dom0_balloon_room_mib": plan.dom0_balloon_room_mib,
        "free_memory_mib": plan.free_memory_mib,
        "modelled_free_mib": plan.modelled_free_mib,
    }


def _host(host: HostReport) -> dict[str, Any]:
    view = host.view
    return {
        "name": host.name,
        "backend": host.backend,
        "uri": host.uri,
        "ssh_host": host.ssh_host,
        "total_memory_kib": view.total_memory_kib if view else None,
        "free_memory_kib": view.free_memory_kib if view else None,
        "error": host.error,
        "xen_version": view.xen_version if view else None,
        "dom0_mem_kib": view.dom0_mem_kib if view else None,
        "outstanding_claims_kib": view.outstanding_claims_kib if view else None,
        "free_cpus": view.free_cpus if view else None,
        "autoballoon": view.autoballoon if view else None,
        "domain_count": len(view.guests) if view else None,
        "plan": _plan(host.plan),
    }


def _collection(dom: DomainReport) -> dict[str, Any]:
    snap = dom.snapshot
    if snap is None:
        return {
            "status": "skipped",
            "error": None,
            "collected_at": None,
            "kernlog_source": None,
            "sections": {},
            "host_key_fingerprint": None,
        }
    return {
        "status": snap.status,
        "error": snap.error,
        "collected_at": snap.collected_at,
        "kernlog_source": snap.kernlog_source,
        "sections": dict(snap.section_status),
        "host_key_fingerprint": snap.host_key_fingerprint,
    }


def _facts_parts(facts: GuestFacts | None, kernlog_source: str | None) -> dict[str, Any]:
    """The parsed-guest part of a domain entry; empty containers when nothing was parsed."""
    if facts is None:
        return {
            "meminfo_kib": {},
            "mem_available_estimated": None,
            "psi": None,
            "events": [],
            "kernlog_truncated": None,
            "event_counts": None,
            "balloon": {"target_kib": None, "current_kib": None},
            "top_processes": [],
            "parse_errors": [],
        }
    meminfo = facts.meminfo
    processes = sorted(facts.processes, key=lambda p: (-p.rss_kib, p.pid))[:TOP_PROCESSES]
    return {
        "meminfo_kib": dict(meminfo.fields_kib) if meminfo else {},
        "mem_available_estimated": meminfo.mem_available_estimated if meminfo else None,
        "psi": _psi(facts.psi),
        # Same objects as `xenaudit logscan --json`, "file" naming where the log came from.
        "events": (
            [event_to_json(e, kernlog_source or "kernlog") for e in facts.kernlog.events]
            if facts.kernlog
            else []
        ),
        "kernlog_truncated": facts.kernlog.truncated if facts.kernlog else None,
        "event_counts": counts_to_json(facts.kernlog) if facts.kernlog else None,
        "balloon": {
            "target_kib": facts.balloon_target_kib,
            "current_kib": facts.balloon_current_kib,
        },
        "top_processes": [
            {"pid": p.pid, "comm": p.comm, "rss_kib": p.rss_kib, "vsz_kib": p.vsz_kib}
            for p in processes
        ],
        "parse_errors": list(facts.errors),
    }


def _assessment_parts(assessment: Assessment) -> dict[str, Any]:
    return {
        "severity": assessment.severity,
        "diagnosis": list(assessment.diagnosis),
        "findings": [_finding(f) for f in assessment.findings],
        "advice": [_advice(a) for a in assessment.advice],
        "need_mib": assessment.need_mib,
        "need_history_mib": list(assessment.need_history_mib),
        "recommendation": _recommendation(assessment.recommendation),
        "min_free": _min_free(assessment.min_free),
        "sysctls": [
            {
                "name": p.name,
                "current": p.current,
                "proposed": p.proposed,
                "reasons": list(p.reasons),
            }
            for p in assessment.sysctls
        ],
    }


def domain_to_dict(dom: DomainReport, patch_path: str | None = None) -> dict[str, Any]:
    """One domain entry; `patch_path` is where its patch was written (see `patch_paths`)."""
    live = dom.domain
    cfg = dom.config
    entry: dict[str, Any] = {
        "name": dom.name,
        "host": dom.host,
        "state": live.state,
        "guest_type": (cfg.guest_type if cfg and cfg.guest_type else live.guest_type),
        "domid": live.domid,
        "uuid": live.uuid,
        "vcpus": live.vcpus,
        "config": {
            "path": cfg.path if cfg else None,
            "memory_mib": cfg.memory_mib if cfg else None,
            "maxmem_mib": cfg.maxmem_mib if cfg else None,
            "guest_type": cfg.guest_type if cfg else None,
            "sha256": cfg.sha256 if cfg else None,
            "error": cfg.error if cfg else None,
            "passthrough": cfg.passthrough if cfg else None,
        },
        "live": {
            "target_kib": live.target_kib,
            "max_kib": live.max_kib,
            "current_kib": live.current_kib,
            "shadow_kib": live.shadow_kib,
            "video_kib": live.video_kib,
            "passthrough": live.passthrough,
        },
        "drift": list(dom.drift),
        "collection": _collection(dom),
    }
    entry.update(_facts_parts(dom.facts, dom.snapshot.kernlog_source if dom.snapshot else None))
    entry.update(_assessment_parts(dom.assessment))
    entry["patch"] = patch_path if dom.patch_text is not None else None
    return entry


def report_to_dict(report: AuditReport) -> dict[str, Any]:
    """The report.json document for `report` (plain dicts, lists, str, int, float, None)."""
    paths = patch_paths(report)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": report.generated_at,
        "tool_version": report.tool_version,
        "demo": report.demo,
        "incomplete": report.incomplete,
        "inventory_path": report.inventory_path,
        "errors": list(report.errors),
        "hosts": [_host(h) for h in report.hosts],
        "domains": [domain_to_dict(d, paths.get(i)) for i, d in enumerate(report.domains)],
        "actions": [action_to_json(a) for a in tonight_actions(report)],
    }


def dumps_report(report: AuditReport) -> bytes:
    """Serialised report.json.

    ASCII-only output: guest text may carry lone surrogates or line separators
    that are not valid UTF-8 or break naive readers; as escapes they survive
    as data.
    """
    try:
        text = json.dumps(report_to_dict(report), ensure_ascii=True, allow_nan=False, indent=2)
    except (TypeError, ValueError) as exc:
        raise FormatError(JsonFormat.name, f"cannot serialise the report: {exc}") from exc
    return (text + "\n").encode("ascii")


def report_schema() -> Mapping[str, Any]:
    """The JSON Schema (draft 2020-12) of report.json, shipped inside the package."""
    text = resources.files("xenaudit").joinpath("schemas/report.schema.json").read_text("utf-8")
    return json.loads(text)


class JsonFormat(ReportFormat):
    name = "json"

    def write(self, report: AuditReport, outdir: Path) -> list[Path]:
        path = Path(outdir) / REPORT_FILE
        data = dumps_report(report)
        try:
            atomic_write_bytes(path, data, root=outdir)
        except OSError as exc:
            raise FormatError(self.name, f"cannot write {path}: {exc}") from exc
        return [path]
