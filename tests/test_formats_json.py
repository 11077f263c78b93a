"""report.json: valid against the shipped schema, stable keys, hostile text kept as data."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import report_fixtures as rf
from xenaudit.analysis.interface import Assessment, Evidence, Finding
from xenaudit.formats.json import JsonFormat, dumps_report, report_schema, report_to_dict
from xenaudit.hypervisor.interface import Domain
from xenaudit.parsers.interface import GuestFacts, Psi, PsiLine
from xenaudit.report import AuditReport, DomainReport, HostReport

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILE = REPO / "xenaudit" / "schemas" / "report.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _written(report: AuditReport, tmp_path: Path) -> dict[str, Any]:
    (path,) = JsonFormat().write(report, tmp_path)
    assert path == tmp_path / "report.json"
    return json.loads(path.read_bytes())


def _by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in doc["domains"]}


def bare_domain(name: str) -> DomainReport:
    """A domain about which nothing at all is known."""
    return DomainReport(
        host="h",
        domain=Domain(name, None, None, "unknown", None, None, None, None),
        config=None,
        snapshot=None,
        facts=None,
        assessment=Assessment(domain=name, host="h", severity="ok", findings=()),
    )


def test_schema_in_package_is_the_file_in_the_repo() -> None:
    assert report_schema() == json.loads(SCHEMA_FILE.read_text())
    assert report_schema()["$schema"].endswith("/draft/2020-12/schema")


def test_rich_report_is_valid(validator: jsonschema.Validator, tmp_path: Path) -> None:
    doc = _written(rf.rich_report(), tmp_path)
    errors = sorted(validator.iter_errors(doc), key=str)
    assert errors == []
    statuses = {d["collection"]["status"] for d in doc["domains"]}
    assert statuses == {
        "ok",
        "partial",
        "unreachable",
        "auth_failed",
        "host_key_rejected",
        "timeout",
        "skipped",
    }


def test_top_level_contract(tmp_path: Path) -> None:
    report = rf.rich_report(demo=True)
    doc = _written(report, tmp_path)
    assert doc["schema_version"] == 1
    assert datetime.fromisoformat(doc["generated_at"]).tzinfo is not None
    assert doc["tool_version"] == rf.TOOL_VERSION
    assert doc["demo"] is True
    assert doc["incomplete"] is True
    assert doc["errors"] == list(report.errors)
    assert [h["name"] for h in doc["hosts"]] == ["dom0-a", "dom0-b", "dom0-c"]
    assert len(doc["domains"]) == len(report.domains)


def test_reference_case_numbers(tmp_path: Path) -> None:
    web = _by_name(_written(rf.rich_report(), tmp_path))["web01"]
    assert web["config"]["memory_mib"] == 512
    assert web["meminfo_kib"]["MemTotal"] == 491 * 1024
    assert web["meminfo_kib"]["MemAvailable"] == 38 * 1024
    assert web["live"] == {
        "target_kib": 512 * 1024,
        "max_kib": 512 * 1024,
        "current_kib": 524288,
        "shadow_kib": None,
        "video_kib": None,
        "passthrough": None,
    }
    assert web["psi"]["some"]["avg60"] == pytest.approx(9.8)
    assert web["severity"] == "critical"
    assert web["diagnosis"][0] == "Real memory shortage"
    rec = web["recommendation"]
    assert (rec["memory_mib"], rec["maxmem_mib"], rec["change"]) == (768, 1024, "increase")
    assert rec["live_change_safe"] is False
    assert web["need_history_mib"][-1] == web["need_mib"] == 474
    assert web["min_free"]["current_kib"] == 1351
    assert web["min_free"]["suggested_kib"] == 8192
    evidence = web["findings"][0]["evidence"]
    assert {
        "source": "kernlog",
        "line": 412,
        "text": "swapper: page allocation failure. order:0, mode:0x20",
    } in evidence


def test_events_carry_logscan_fields(tmp_path: Path) -> None:
    doc = _by_name(_written(rf.rich_report(), tmp_path))
    failure = next(e for e in doc["web01"]["events"] if e["kind"] == "page_alloc_failure")
    assert failure["process"] == "swapper"
    assert (failure["order"], failure["gfp_mask"]) == (0, "0x20")
    assert failure["gfp_flags"] == ["GFP_ATOMIC"]
    assert failure["atomic"] is True
    assert failure["file"] == "dmesg"
    kinds = {e["kind"] for e in doc["db01"]["events"]}
    assert kinds == {"oom_invoked", "oom_kill"}
    kill = next(e for e in doc["db01"]["events"] if e["kind"] == "oom_kill")
    assert (kill["victim_pid"], kill["victim_process"]) == (4411, "postgres")
    assert kill["anon_rss_kib"] == 3_600_000
    balloon = next(e for e in doc["web01"]["events"] if e["kind"] == "balloon")
    assert "balloon" in balloon["message"]


def test_unknowns_are_null_inside_always_present_objects(
    validator: jsonschema.Validator, tmp_path: Path
) -> None:
    report = AuditReport(
        generated_at=rf.GENERATED_AT,
        tool_version="0.1.0",
        hosts=(HostReport("h", "xl", None, None, error=None),),
        domains=(bare_domain("nothing"),),
    )
    doc = _written(report, tmp_path)
    assert list(validator.iter_errors(doc)) == []
    (dom,) = doc["domains"]
    assert dom["config"] == {
        "path": None,
        "memory_mib": None,
        "maxmem_mib": None,
        "guest_type": None,
        "sha256": None,
        "error": None,
        "passthrough": None,
    }
    assert dom["collection"]["status"] == "skipped"
    assert dom["collection"]["sections"] == {}
    assert dom["meminfo_kib"] == {}
    assert dom["psi"] is None and dom["recommendation"] is None and dom["patch"] is None
    assert dom["min_free"] is None and dom["sysctls"] == []
    assert dom["events"] == [] and dom["findings"] == []
    assert doc["hosts"][0]["plan"] is None
    assert doc["hosts"][0]["total_memory_kib"] is None


def test_empty_report_is_valid(validator: jsonschema.Validator, tmp_path: Path) -> None:
    doc = _written(rf.empty_report(), tmp_path)
    assert list(validator.iter_errors(doc)) == []
    assert doc["hosts"] == [] and doc["domains"] == [] and doc["incomplete"] is False


def test_hostile_strings_survive_as_data(validator: jsonschema.Validator, tmp_path: Path) -> None:
    report = rf.hostile_report()
    raw = tmp_path / "report.json"
    JsonFormat().write(report, tmp_path)
    data = raw.read_bytes()
    assert data.isascii()
    doc = json.loads(data)
    assert list(validator.iter_errors(doc)) == []
    assert [d["name"] for d in doc["domains"]] == list(rf.HOSTILE_PAYLOADS)
    assert doc["errors"] == list(rf.HOSTILE_PAYLOADS)
    for dom, payload in zip(doc["domains"], rf.HOSTILE_PAYLOADS, strict=True):
        assert dom["findings"][0]["evidence"][0]["text"] == payload
        assert dom["events"][0]["process"] == payload
        assert dom["collection"]["error"] == payload
        assert dom["advice"][0]["commands"] == [f"echo {payload}"]


def test_patch_key_points_at_the_written_patch(tmp_path: Path) -> None:
    from xenaudit.formats.patches import PatchesFormat

    report = rf.rich_report()
    PatchesFormat().write(report, tmp_path)
    doc = _written(report, tmp_path)
    with_patch = [d for d in doc["domains"] if d["patch"]]
    assert {d["name"] for d in with_patch} == {"web01", "db01", "cache01"}
    for dom in with_patch:
        assert (tmp_path / dom["patch"]).read_text().startswith("--- a/etc/xen/")
    # Without an orchestrator-set path the patch still gets one, the same one on disk.
    web = next(d for d in report.domains if d.name == "web01")
    unset = dataclasses.replace(web, patch_path=None)
    doc2 = report_to_dict(dataclasses.replace(report, domains=(unset,)))
    assert doc2["domains"][0]["patch"] == "patches/web01.cfg.diff"


def test_non_finite_psi_becomes_null(validator: jsonschema.Validator) -> None:
    ref = rf.reference_case()
    assert ref.facts is not None
    odd = PsiLine(math.nan, math.inf, -math.inf, 5)
    facts = dataclasses.replace(ref.facts, psi=Psi(some=odd, full=None))
    report = AuditReport(rf.GENERATED_AT, "0.1.0", (), (dataclasses.replace(ref, facts=facts),))
    doc = json.loads(dumps_report(report))
    assert doc["domains"][0]["psi"] == {
        "some": {"avg10": None, "avg60": None, "avg300": None, "total_us": 5},
        "full": None,
    }
    assert list(validator.iter_errors(doc)) == []


def test_schema_rejects_broken_documents(validator: jsonschema.Validator) -> None:
    good = report_to_dict(rf.rich_report())
    assert validator.is_valid(good)
    missing = {k: v for k, v in good.items() if k != "domains"}
    assert not validator.is_valid(missing)
    bad_status = json.loads(json.dumps(good))
    bad_status["domains"][0]["collection"]["status"] = "maybe"
    assert not validator.is_valid(bad_status)
    bad_event = json.loads(json.dumps(good))
    web = next(d for d in bad_event["domains"] if d["name"] == "web01")
    del web["events"][0]["order"]
    assert not validator.is_valid(bad_event)


hostile_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=hostile_text, line=hostile_text, host=hostile_text)
def test_any_text_roundtrips(name: str, line: str, host: str) -> None:
    ref = rf.reference_case(name, host)
    finding = Finding("shortage", "critical", line, line, (Evidence("kernlog", line, 1),))
    assessment = dataclasses.replace(ref.assessment, findings=(finding,))
    report = AuditReport(
        rf.GENERATED_AT,
        "0.1.0",
        (),
        (dataclasses.replace(ref, assessment=assessment),),
        errors=(line,),
    )
    data = dumps_report(report)
    assert data.isascii()
    doc = json.loads(data)
    dom = doc["domains"][0]
    assert (dom["name"], dom["host"]) == (name, host)
    assert dom["findings"][0]["evidence"][0]["text"] == line
    assert doc["errors"] == [line]


def test_facts_without_meminfo_still_valid(validator: jsonschema.Validator) -> None:
    dom = dataclasses.replace(bare_domain("x"), facts=GuestFacts(errors=("meminfo: empty",)))
    doc = report_to_dict(AuditReport(rf.GENERATED_AT, "0.1.0", (), (dom,)))
    assert validator.is_valid(doc)
    assert doc["domains"][0]["parse_errors"] == ["meminfo: empty"]
