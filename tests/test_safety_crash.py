"""A failed night is never hidden: hostile numbers, history errors, crashes, -q.

Hostile guests send numbers no kernel prints; those become a parse error of
that domain, never an exception that ends the run. Where a bug does raise,
the run still writes what it can, prints the traceback (also with -q) and
exits 4, which the systemd unit counts as a failure.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xenaudit import audit
from xenaudit.analysis.history import HistoryStore
from xenaudit.audit import AuditOptions, exit_code, run_audit, snapshot_hypervisors
from xenaudit.cli import main
from xenaudit.demo import FLEET_DIR, INVENTORY
from xenaudit.formats.html import HtmlFormat
from xenaudit.inventory.toml import load_inventory
from xenaudit.parsers.interface import Vmstat

REPO = Path(__file__).resolve().parent.parent
HUGE = 2**63


def fleet_copy(tmp_path: Path) -> Path:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET_DIR, fleet)
    return fleet


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xenaudit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_hostile_numbers_are_a_parse_error_of_their_domain(tmp_path: Path) -> None:
    fleet = fleet_copy(tmp_path)
    meminfo = fleet / "web-frontend" / "meminfo"
    meminfo.write_text(
        meminfo.read_text().replace("MemAvailable:", f"MemAvailable: {HUGE} kB\nX:", 1)
    )
    vmstat = fleet / "db-primary" / "vmstat"
    vmstat.write_text(vmstat.read_text() + f"pswpin {HUGE}\n")
    psi = fleet / "cache-node" / "psi_memory"
    psi.write_text("some avg10=1e308 avg60=1.0 avg300=1.0 total=1\n")
    out, state = tmp_path / "out", tmp_path / "state"
    done = cli(
        "audit",
        "--from-snapshots",
        fleet,
        "-o",
        out,
        "-q",
        "--state-dir",
        state,
        "--record-history",
    )
    assert done.returncode == 3, done.stderr  # mail-relay is unreachable, nothing crashed
    assert "Traceback" not in done.stderr
    report = json.loads((out / "report.json").read_text())
    errors = report["errors"]
    assert any(e.startswith("web-frontend: meminfo: line") and "64-bit" in e for e in errors)
    assert any(e.startswith("db-primary: vmstat: line") and "pswpin" in e for e in errors)
    assert any(e.startswith("cache-node: psi_memory: line") for e in errors)
    # The night still produced its metrics and the other domains their history.
    assert "xenaudit_audit_success 0" in (out / "xenaudit.prom").read_text()
    with HistoryStore.open(state) as store:
        assert store.nights("xen-demo", "monitor")
        assert not store.nights("xen-demo", "web-frontend")  # no meminfo, no night
    # Errors also reach the log with -q.
    assert "web-frontend: meminfo" in done.stderr


def demo_report(tmp_path: Path, **options: object) -> tuple[audit.AuditReport, Path]:
    inventory = dataclasses.replace(
        load_inventory(INVENTORY), hypervisors=snapshot_hypervisors(FLEET_DIR)
    )
    out = tmp_path / "out"
    base = AuditOptions(
        outdir=out,
        from_snapshots=FLEET_DIR,
        state_dir=tmp_path / "state",
        record_history=False,
    )
    return run_audit(inventory, dataclasses.replace(base, **options)), out


def test_one_row_the_history_refuses_costs_only_its_domain(tmp_path: Path) -> None:
    report, _ = demo_report(tmp_path)
    views = {h.name: h.view for h in report.hosts}
    inputs = []
    for d in report.domains:
        facts = d.facts
        if facts is not None and facts.vmstat is not None and d.name == "db-primary":
            counters = {**facts.vmstat.counters, "pswpin": HUGE}
            facts = dataclasses.replace(facts, vmstat=Vmstat(counters=counters))
        inputs.append(
            audit.DomainInput(
                host=views[d.host],  # type: ignore[arg-type]
                domain=d.domain,
                config=d.config,
                snapshot=d.snapshot,
                facts=facts,
                override=load_inventory(INVENTORY).override(d.name),
                thresholds=load_inventory(INVENTORY).thresholds,
            )
        )
    errors: list[str] = []
    with HistoryStore.open(tmp_path / "h") as store:
        # What SQLite does with such a number, unguarded.
        with pytest.raises(OverflowError):
            bad = audit.night_for_assessment(
                inputs[0].facts, "2026-11-25T02:31:07Z", report.domains[0].assessment
            )
            store.record("2026-11-25T02:31:07Z", "h", "d", dataclasses.replace(bad, pswpin=HUGE))
        audit._record(
            store,
            "2026-11-25T02:31:07Z",
            False,
            inputs,
            [d.assessment for d in report.domains],
            errors,
        )
        recorded = {d.name for d in report.domains if store.nights("xen-demo", d.name)}
    assert errors and all(e.startswith("xen-demo/db-primary: history:") for e in errors)
    assert "db-primary" not in recorded
    assert {"web-frontend", "monitor", "cache-node"} <= recorded


def test_a_crash_in_a_stage_still_writes_the_outputs_and_exits_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug in the host plan")

    # Stands in for a bug: the real analyzer, with one method failing.
    monkeypatch.setattr(audit.DefaultAnalyzer, "plan_host", broken)
    out = tmp_path / "out"
    state = str(tmp_path / "state")
    code = main(
        ["audit", "--from-snapshots", str(FLEET_DIR), "-o", str(out), "-q", "--state-dir", state]
    )
    assert code == 4
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: a bug in the host plan" in err
    report = json.loads((out / "report.json").read_text())
    # Every domain of the demo fleet is still in the report.
    fleet = [p for p in FLEET_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")]
    assert len(report["domains"]) == len(fleet) == 14
    assert any("internal error in analysis" in e for e in report["errors"])
    assert (out / "report.html").is_file()
    assert "xenaudit_audit_success 0" in (out / "xenaudit.prom").read_text()


def test_a_crash_in_one_format_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> list[Path]:
        raise KeyError("template variable")

    monkeypatch.setattr(HtmlFormat, "write", broken)
    report, out = demo_report(tmp_path)
    assert exit_code(report, "warning") == 4
    assert report.crashes and "KeyError" in report.crashes[0]
    assert not (out / "report.html").exists()
    assert (out / "report.json").is_file() and (out / "xenaudit.prom").is_file()


def test_a_crash_outside_any_stage_exits_4_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(audit, "run_audit", broken)
    assert main(["audit", "--demo", "-q", "-o", str(tmp_path / "o")]) == 4
    err = capsys.readouterr().err
    assert "internal error" in err and "ZeroDivisionError: boom" in err


def test_quiet_still_prints_what_failed_and_names_a_host_once(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        '[[hypervisor]]\nname = "dom0a"\nbackend = "xl"\n'
        f'xl_command = "{tmp_path / "no-such-xl"}"\ncfg_dir = "{tmp_path}"\n'
    )
    done = cli("audit", "-i", inventory, "-o", tmp_path / "out", "-q")
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert any(line.startswith("xenaudit: dom0a: xl") for line in lines), done.stderr
    assert "dom0a: dom0a:" not in done.stderr

    demo = cli("audit", "--demo", "-q", "-o", tmp_path / "demo")
    assert demo.returncode == 3
    assert "xen-demo/mail-relay: unreachable" in demo.stderr
