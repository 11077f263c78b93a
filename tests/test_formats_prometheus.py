"""xenaudit.prom: lines node_exporter's textfile collector accepts, escaped, no duplicates."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests import report_fixtures as rf
from xenaudit.formats.interface import FormatError
from xenaudit.formats.prometheus import PrometheusFormat, escape_label_value, render_metrics

MIB = 1024 * 1024

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"'
SAMPLE = re.compile(rf"^({METRIC_NAME})(?:\{{((?:{LABEL},?)*)\}})? (\S+)$")
LABEL_RE = re.compile(LABEL)

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def parse_exposition(text: str) -> tuple[Series, dict[str, str]]:
    """A strict reader of the text format: returns samples and each metric's TYPE."""
    assert text.endswith("\n")
    series: Series = {}
    types: dict[str, str] = {}
    helped: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helped, f"line {number}: second HELP for {name}"
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"gauge", "counter", "untyped"}
            assert name in helped, f"line {number}: TYPE before HELP"
            types[name] = kind
            continue
        assert not line.startswith("#"), f"line {number}: stray comment"
        match = SAMPLE.match(line)
        assert match, f"line {number} is not a sample: {line!r}"
        name, labels_text, value = match.group(1), match.group(2) or "", match.group(5)
        assert name in types, f"line {number}: sample before its TYPE"
        labels = tuple((k, _unescape(v)) for k, v in LABEL_RE.findall(labels_text))
        key = (name, labels)
        assert key not in series, f"line {number}: duplicate series {key}"
        series[key] = float(value)
    return series, types


def _dom(series: Series, metric: str, host: str, domain: str, **extra: str) -> float | None:
    labels = (("host", host), ("domain", domain), *extra.items())
    return series.get((metric, labels))


def test_every_line_parses_and_metrics_are_gauges(tmp_path: Path) -> None:
    (path,) = PrometheusFormat().write(rf.rich_report(), tmp_path)
    assert path.name == "xenaudit.prom"
    series, types = parse_exposition(path.read_text(encoding="utf-8"))
    assert set(types.values()) == {"gauge"}
    for required in (
        "xenaudit_domain_memory_bytes",
        "xenaudit_domain_findings",
        "xenaudit_domain_collection_ok",
        "xenaudit_host_memory_bytes",
        "xenaudit_audit_success",
        "xenaudit_audit_timestamp_seconds",
    ):
        assert required in types
    assert any(name == "xenaudit_domain_memory_bytes" for name, _ in series)


def test_reference_case_values() -> None:
    series, _ = parse_exposition(render_metrics(rf.rich_report()))
    mem = "xenaudit_domain_memory_bytes"
    assert _dom(series, mem, "dom0-a", "web01", kind="configured") == 512 * MIB
    assert _dom(series, mem, "dom0-a", "web01", kind="recommended") == 768 * MIB
    assert _dom(series, mem, "dom0-a", "web01", kind="available") == 38 * MIB
    assert _dom(series, mem, "dom0-a", "web01", kind="total") == 491 * MIB
    findings = "xenaudit_domain_findings"
    assert _dom(series, findings, "dom0-a", "web01", severity="critical") == 1
    assert _dom(series, findings, "dom0-a", "web01", severity="warning") == 1
    assert _dom(series, findings, "dom0-a", "web01", severity="ok") == 0
    assert _dom(series, "xenaudit_domain_collection_ok", "dom0-a", "web01") == 1
    assert _dom(series, "xenaudit_domain_collection_ok", "dom0-b", "gone01") == 0
    assert _dom(series, "xenaudit_domain_collection_ok", "dom0-b", "auth01") == 0
    # Skipped (shut off) domains are not collection failures.
    assert _dom(series, "xenaudit_domain_collection_ok", "dom0-b", "off01") is None
    # Unknown values are left out rather than written as 0 or NaN.
    assert _dom(series, mem, "dom0-b", "gone01", kind="available") is None


def test_host_and_audit_values() -> None:
    report = rf.rich_report()
    series, _ = parse_exposition(render_metrics(report))
    host = "xenaudit_host_memory_bytes"
    assert series[(host, (("host", "dom0-a"), ("kind", "total")))] == 16384 * MIB
    assert series[(host, (("host", "dom0-a"), ("kind", "free")))] == 1536 * MIB
    plan = report.hosts[0].plan
    assert plan is not None
    assert series[(host, (("host", "dom0-a"), ("kind", "planned")))] == plan.planned_total_mib * MIB
    assert series[("xenaudit_host_plan_shortfall_bytes", (("host", "dom0-a"),))] == 2048 * MIB
    assert series[("xenaudit_host_read_ok", (("host", "dom0-c"),))] == 0
    assert series[("xenaudit_audit_success", ())] == 0  # dom0-c and several guests unread
    expected = datetime(2024, 5, 14, 2, 31, 7, tzinfo=UTC).timestamp()
    assert series[("xenaudit_audit_timestamp_seconds", ())] == expected
    assert series[("xenaudit_audit_domains", ())] == len(report.domains)


def test_complete_run_reports_success() -> None:
    series, _ = parse_exposition(render_metrics(rf.fleet(10)))
    assert series[("xenaudit_audit_success", ())] == 1


def test_label_escaping() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert escape_label_value("plain") == "plain"


def test_hostile_labels_roundtrip() -> None:
    series, _ = parse_exposition(render_metrics(rf.hostile_report()))
    domains = {dict(labels)["domain"] for (_, labels) in series if "domain" in dict(labels)}
    expected = {p.encode("utf-8", "replace").decode() for p in rf.HOSTILE_PAYLOADS}
    assert domains == expected
    assert 'quote"back\\slash\nnew line' in domains


def test_duplicate_names_give_one_series_each() -> None:
    ref = rf.reference_case()
    twin = dataclasses.replace(ref, patch_path=None, patch_text=None)
    report = dataclasses.replace(rf.rich_report(), domains=(ref, twin))
    series, _ = parse_exposition(render_metrics(report))  # asserts no duplicate series
    assert _dom(series, "xenaudit_domain_severity", "dom0-a", "web01") == 3


def test_no_sample_timestamps() -> None:
    for line in render_metrics(rf.rich_report()).splitlines():
        if not line.startswith("#"):
            rest = line.rsplit("}", 1)[1] if "}" in line else line.split(" ", 1)[1]
            assert len(rest.split()) == 1, line


@pytest.mark.parametrize("generated_at", ["yesterday", "2024-05-14T02:31:07"])
def test_bad_generated_at_is_a_format_error(generated_at: str) -> None:
    report = dataclasses.replace(rf.rich_report(), generated_at=generated_at)
    with pytest.raises(FormatError, match="generated_at"):
        render_metrics(report)
