"""xenaudit.prom: node_exporter textfile-collector metrics for alerting and graphs.

node_exporter rejects a whole file over one malformed or duplicated series, so
label values are escaped per the text exposition format and each series is
written once (the first domain wins if a hostile fleet repeats a name). No
sample timestamps: the textfile collector refuses them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from xenaudit.analysis.interface import SEVERITY_ORDER, severity_rank
from xenaudit.atomicwrite import atomic_write_bytes
from xenaudit.formats.interface import FormatError, ReportFormat
from xenaudit.report import AuditReport

PROM_FILE = "xenaudit.prom"
KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    type: str = "gauge"


DOMAIN_MEMORY = Metric(
    "xenaudit_domain_memory_bytes",
    "Domain memory by kind: configured (xl.cfg memory), recommended, "
    "available (guest MemAvailable), total (guest MemTotal).",
)
DOMAIN_FINDINGS = Metric(
    "xenaudit_domain_findings", "Number of findings for the domain by severity."
)
DOMAIN_COLLECTION_OK = Metric(
    "xenaudit_domain_collection_ok",
    "1 when every section was read from the guest, 0 otherwise; absent for skipped domains.",
)
DOMAIN_SEVERITY = Metric(
    "xenaudit_domain_severity", "Worst severity of the domain: 0 ok, 1 info, 2 warning, 3 critical."
)
HOST_MEMORY = Metric(
    "xenaudit_host_memory_bytes",
    "Host memory by kind: total, free (now), planned (Dom0, Xen and guests after the plan).",
)
HOST_SHORTFALL = Metric(
    "xenaudit_host_plan_shortfall_bytes", "Memory the host plan is short of; 0 when it fits."
)
HOST_READ_OK = Metric("xenaudit_host_read_ok", "1 when the hypervisor could be read.")
AUDIT_SUCCESS = Metric(
    "xenaudit_audit_success", "1 when every host and guest was read and no error was recorded."
)
AUDIT_TIMESTAMP = Metric("xenaudit_audit_timestamp_seconds", "Unix time the report was generated.")
AUDIT_DOMAINS = Metric("xenaudit_audit_domains", "Domains in the report.")


def escape_label_value(value: str) -> str:
    """Label value escaped per the text exposition format: backslash, quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(*pairs: tuple[str, str]) -> str:
    """The inside of `{…}`, rendered once per series.

    Values are made valid UTF-8 first, so two names that only differ in
    undecodable bytes become the same series instead of a duplicate.
    """
    return ",".join(
        f'{key}="{escape_label_value(value.encode("utf-8", "replace").decode("utf-8"))}"'
        for key, value in pairs
    )


def _format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class _Exposition:
    """Collects samples grouped by metric, one HELP/TYPE block each, no duplicate series."""

    def __init__(self) -> None:
        self._samples: dict[str, list[str]] = {}
        self._metrics: dict[str, Metric] = {}
        self._seen: set[str] = set()

    def add(self, metric: Metric, label_text: str, value: float | None) -> None:
        if value is None:
            return
        series = f"{metric.name}{{{label_text}}}" if label_text else metric.name
        if series in self._seen:
            return
        self._seen.add(series)
        self.declare(metric).append(f"{series} {_format_value(value)}")

    def declare(self, metric: Metric) -> list[str]:
        self._metrics.setdefault(metric.name, metric)
        return self._samples.setdefault(metric.name, [])

    def lines(self) -> Iterable[str]:
        for name, samples in self._samples.items():
            metric = self._metrics[name]
            yield f"# HELP {name} {metric.help}"
            yield f"# TYPE {name} {metric.type}"
            yield from samples


def _timestamp_seconds(generated_at: str) -> float:
    try:
        moment = datetime.fromisoformat(generated_at)
    except ValueError as exc:
        raise FormatError(
            PrometheusFormat.name, f"generated_at is not ISO-8601: {generated_at!r}"
        ) from exc
    if moment.tzinfo is None:
        raise FormatError(PrometheusFormat.name, f"generated_at has no time zone: {generated_at!r}")
    return moment.timestamp()


def render_metrics(report: AuditReport) -> str:
    out = _Exposition()
    timestamp = _timestamp_seconds(report.generated_at)
    success = not report.incomplete and not report.errors
    out.add(AUDIT_SUCCESS, "", 1 if success else 0)
    ts = int(timestamp) if timestamp.is_integer() else timestamp
    out.add(AUDIT_TIMESTAMP, "", ts)
    out.add(AUDIT_DOMAINS, "", len(report.domains))

    for metric in (HOST_READ_OK, HOST_MEMORY, HOST_SHORTFALL):
        out.declare(metric)
    for host in report.hosts:
        base = labels(("host", host.name))
        out.add(HOST_READ_OK, base, 0 if host.error else 1)
        view, plan = host.view, host.plan
        if view is not None:
            for kind, kib in (("total", view.total_memory_kib), ("free", view.free_memory_kib)):
                value = kib * KIB if kib is not None else None
                out.add(HOST_MEMORY, f'{base},kind="{kind}"', value)
        if plan is not None:
            out.add(HOST_MEMORY, f'{base},kind="planned"', plan.planned_total_mib * MIB)
            out.add(HOST_SHORTFALL, base, plan.shortfall_mib * MIB)

    for metric in (DOMAIN_MEMORY, DOMAIN_FINDINGS, DOMAIN_COLLECTION_OK, DOMAIN_SEVERITY):
        out.declare(metric)
    for dom in report.domains:
        base = labels(("host", dom.host), ("domain", dom.name))
        cfg = dom.config
        rec = dom.assessment.recommendation
        meminfo = dom.facts.meminfo if dom.facts else None
        sizes = {
            "configured": cfg.memory_mib * MIB if cfg and cfg.memory_mib is not None else None,
            "recommended": rec.memory_mib * MIB if rec else None,
            "available": (
                meminfo.mem_available_kib * KIB
                if meminfo and meminfo.mem_available_kib is not None
                else None
            ),
            "total": (
                meminfo.mem_total_kib * KIB
                if meminfo and meminfo.mem_total_kib is not None
                else None
            ),
        }
        for kind, value in sizes.items():
            out.add(DOMAIN_MEMORY, f'{base},kind="{kind}"', value)
        counts = dict.fromkeys(SEVERITY_ORDER, 0)
        for finding in dom.assessment.findings:
            if finding.severity in counts:
                counts[finding.severity] += 1
        for severity, count in counts.items():
            out.add(DOMAIN_FINDINGS, f'{base},severity="{severity}"', count)
        if dom.collection_status != "skipped":
            out.add(DOMAIN_COLLECTION_OK, base, 1 if dom.collection_status == "ok" else 0)
        out.add(DOMAIN_SEVERITY, base, severity_rank(dom.assessment.severity))
    return "\n".join(out.lines()) + "\n"


class PrometheusFormat(ReportFormat):
    name = "prom"

    def write(self, report: AuditReport, outdir: Path) -> list[Path]:
        path = Path(outdir) / PROM_FILE
        data = render_metrics(report).encode("utf-8")
        try:
            atomic_write_bytes(path, data, root=outdir)
        except OSError as exc:
            raise FormatError(self.name, f"cannot write {path}: {exc}") from exc
        return [path]
