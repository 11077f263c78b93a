"""`xenaudit merge`: report folders of many Dom0s joined into one fleet folder."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests import report_fixtures as rf
from tests.fleet_fixtures import Dom0Folders, edit_report, keep_domains, recent, write_report
from tests.test_apply_support import run_apply
from tests.test_formats_prometheus import parse_exposition
from xenaudit.cli import main
from xenaudit.fleet.copy import CopyLimits, copy_report_folder
from xenaudit.fleet.json import fleet_schema
from xenaudit.fleet.merge import MergeOptions, merge_reports

SEVERITY_RANK = {"ok": 0, "info": 1, "warning": 2, "critical": 3}


def fleet_json(fleet_dir: Path) -> dict[str, Any]:
    document = json.loads((fleet_dir / "fleet.json").read_text())
    errors = list(jsonschema.Draft202012Validator(fleet_schema()).iter_errors(document))
    assert errors == [], [e.message for e in errors]
    return document


def merge(*args: str | Path) -> int:
    return main(["merge", *(str(a) for a in args)])


@pytest.fixture
def dom0s(tmp_path: Path) -> Dom0Folders:
    return Dom0Folders(tmp_path / "in")


# --- the happy path ---------------------------------------------------------------


def test_three_dom0s_merge_into_one_fleet(
    dom0s: Dom0Folders, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = dom0s.make("c-quiet", "dom0-c", change=keep_domains(2))
    inputs = [dom0s.make("a", "dom0-a"), dom0s.make("b", "dom0-b"), quiet]
    out = tmp_path / "fleet"
    assert merge(*inputs, "-o", out, "--expect", "dom0-a") == 1  # warnings: exit 1
    assert f"Fleet: {out.resolve()}/fleet.html (3 Dom0s, 6 actions)" in capsys.readouterr().out
    doc = fleet_json(out)
    assert doc["incomplete"] is False and doc["missing"] == [] and doc["left_out"] == []
    assert [d["hosts"] for d in doc["dom0s"]] == [["dom0-a"], ["dom0-b"], ["dom0-c"]]
    by_host = {d["hosts"][0]: d for d in doc["dom0s"]}
    assert by_host["dom0-a"]["domains"] == 5 and by_host["dom0-c"]["domains"] == 2
    assert by_host["dom0-a"]["actions"] == 3 and by_host["dom0-c"]["actions"] == 0
    assert by_host["dom0-a"]["domain_severities"] == {
        "critical": 1,
        "warning": 1,
        "info": 1,
        "ok": 2,
    }
    # Most severe first across the Dom0s, each Dom0 in input order within a severity.
    rows = doc["actions"]
    assert doc["action_count"] == len(rows) == 6
    ranks = [SEVERITY_RANK[r["severity"]] for r in rows]
    assert ranks == sorted(ranks, reverse=True)
    assert [(r["host"], r["severity"]) for r in rows[:2]] == [
        ("dom0-a", "critical"),
        ("dom0-b", "critical"),
    ]
    # Each Dom0's folder is copied whole, and each link lands on the domain's section.
    for dom0 in doc["dom0s"]:
        folder = out / dom0["folder"]
        original = Path(dom0["source"])
        for name in ("report.html", "report.json", "summary.csv", "xenaudit.prom"):
            assert (folder / name).read_bytes() == (original / name).read_bytes()
    for row in rows:
        page, anchor = row["link"].split("#")
        html = (out / page).read_text()
        pattern = rf'<section class="domain[^"]*" id="{anchor}">(.*?)</section>'
        section = re.search(pattern, html, re.S)
        assert section and f"<bdi>{row['domain']}</bdi>" in section.group(1)
        assert (out / row["dom0"] / row["patch"]).is_file()
    assert rows[0]["domain"] == "guest00004" and rows[0]["kind"] == "resize"
    assert rows[0]["change"].startswith("memory 512 → 768 MiB, maxmem 1024")


def test_patches_still_apply_from_the_fleet_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo audit's folder, merged, then applied from FLEET_DIR/HOST to a staged /etc/xen."""
    from xenaudit.demo import FLEET_DIR as DEMO

    report = tmp_path / "report"
    assert main(["audit", "--demo", "-o", str(report), "-q"]) == 3  # the demo has a down guest
    out = tmp_path / "fleet"
    assert merge(report, "-o", out, "-q") == 3  # so the fleet is incomplete too
    doc = fleet_json(out)
    (dom0,) = doc["dom0s"]
    assert dom0["incomplete"] is True and dom0["hosts"] == ["xen-demo", "xen-legacy"]
    folder = out / dom0["folder"]
    assert any("mail-relay" in e for e in dom0["errors"])

    index = json.loads((Path(DEMO) / "_cfg" / "index.json").read_text())
    root = tmp_path / "root"
    for entries in index.values():
        for entry in entries.values():
            target = root / entry["path"].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(DEMO) / "_cfg" / entry["file"], target)
    assert run_apply(folder, "--root", root, "--yes") == 0
    patched = {r["domain"] for r in doc["actions"] if r["patch"]}
    applied = {p: p.read_bytes() for p in root.rglob("*.cfg")}
    # Applying the same reviewed folder again changes nothing and is not an error.
    capsys.readouterr()
    assert run_apply(folder, "--root", root, "--yes") == 0
    again = capsys.readouterr().out
    assert again.count("already applied") == len(patched)
    assert {p: p.read_bytes() for p in root.rglob("*.cfg")} == applied
    report_doc = json.loads((folder / "report.json").read_text())
    for domain in report_doc["domains"]:
        if domain["name"] in patched:
            text = (root / domain["config"]["path"].lstrip("/")).read_text()
            assert f"memory = {domain['recommendation']['memory_mib']}" in text


# --- input checks -----------------------------------------------------------------


def test_bad_inputs_are_named_and_the_rest_is_merged(
    dom0s: Dom0Folders, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = dom0s.make("good", "dom0-a", generated_at="2026-01-10T02:30:00+00:00")
    duplicate = tmp_path / "in" / "dup"
    shutil.copytree(good, duplicate)
    older = dom0s.make("older", "dom0-a", generated_at="2026-01-09T02:30:00+00:00")
    newer_schema = dom0s.make("v2", "dom0-v", change=lambda d: d.update(schema_version=2))
    empty = tmp_path / "in" / "empty"
    empty.mkdir()
    linked = tmp_path / "in" / "linked"
    linked.mkdir()
    (linked / "report.json").symlink_to(good / "report.json")
    broken = dom0s.make("broken", "dom0-x")
    (broken / "report.json").write_text('{"schema_version": 1, "schema_version": 1}')
    typo = dom0s.make("typo", "dom0-y", change=lambda d: d["domains"][1].update(severity="bad"))
    other = dom0s.make("other", "dom0-b")
    inputs = [good, duplicate, older, newer_schema, empty, linked, broken, typo, other]
    out = tmp_path / "fleet"
    options = MergeOptions(now=datetime(2026, 1, 10, 12, 0, tzinfo=UTC), stale_after_h=1e6)
    fleet, _ = merge_reports(inputs, out, options)
    doc = fleet_json(out)
    assert sorted(d["hosts"][0] for d in doc["dom0s"]) == ["dom0-a", "dom0-b"]
    reasons = {Path(x["source"]).name: x["reason"] for x in doc["left_out"]}
    assert reasons["dup"].startswith("duplicate: same Dom0 (dom0-a) and run")
    assert str(good) in reasons["dup"]
    assert reasons["older"].startswith("older run (2026-01-09T02:30:00+00:00) of Dom0 dom0-a")
    assert "schema_version 2 is not 1" in reasons["v2"]
    assert reasons["empty"] == "report.json: not a report folder: no report.json"
    assert reasons["linked"] == "report.json: is a symlink; not followed"
    assert "duplicate key 'schema_version'" in reasons["broken"]
    assert "domains[1].severity is not one of" in reasons["typo"]
    assert list(reasons) == [p.name for p in inputs if p.name in reasons]  # input order
    assert fleet.incomplete and doc["incomplete"] is True
    # None of the left-out folders was copied.
    assert sorted(p.name for p in out.iterdir()) == [
        "dom0-a",
        "dom0-b",
        "fleet.html",
        "fleet.json",
        "fleet.prom",
    ]

    code = merge(*inputs, "-o", tmp_path / "fleet2")
    assert code == 3
    err = capsys.readouterr().err
    for path in (duplicate, older, newer_schema, empty, linked, broken, typo):
        assert f"xenaudit merge: {path}: left out: " in err


def test_missing_stale_and_incomplete_dom0s(dom0s: Dom0Folders, tmp_path: Path) -> None:
    fresh = dom0s.make("fresh", "dom0-a", generated_at=recent(2))
    stale = dom0s.make("stale", "dom0-b", generated_at=recent(40))
    incomplete = dom0s.make("inc", "dom0-c", change=lambda d: d.update(incomplete=True))
    expect = tmp_path / "expected.tsv"
    expect.write_text(
        "# Dom0s of this fleet\ndom0-a\ndom0-b\ndom0-c\n"
        "dom0-d\tunreachable: ssh: connect to host dom0-d port 22: No route to host\n\n"
    )
    out = tmp_path / "fleet"
    assert merge(fresh, stale, incomplete, "-o", out, "--expect-file", expect) == 3
    doc = fleet_json(out)
    note = "unreachable: ssh: connect to host dom0-d port 22: No route to host"
    assert doc["missing"] == [{"name": "dom0-d", "note": note}]
    by_host = {d["hosts"][0]: d for d in doc["dom0s"]}
    assert [by_host[h]["stale"] for h in ("dom0-a", "dom0-b", "dom0-c")] == [False, True, False]
    assert 39.9 < by_host["dom0-b"]["age_hours"] < 40.5
    assert by_host["dom0-c"]["incomplete"] is True
    page = (out / "fleet.html").read_text()
    attention = page[page.index('id="attention"') :]
    assert "dom0-d</bdi></strong>: unreachable: ssh: connect to host dom0-d" in attention
    assert "<bdi>dom0-b</bdi></strong>:\nreport made" in attention
    assert "older than 36.0 h" in attention
    assert "the audit could not read everything (exit 3)" in attention

    # A longer age limit makes the 40-hour-old report current; the incomplete one still counts.
    out2 = tmp_path / "fleet2"
    assert merge(fresh, stale, "-o", out2, "--stale-after", "48") == 1
    assert not any(d["stale"] for d in fleet_json(out2)["dom0s"])


def test_exit_codes_follow_the_worst_domain(dom0s: Dom0Folders, tmp_path: Path) -> None:
    healthy = dom0s.make("ok", "dom0-a", change=keep_domains(2))
    assert merge(healthy, "-o", tmp_path / "f1") == 0
    assert json.loads((tmp_path / "f1" / "fleet.json").read_text())["actions"] == []
    sick = dom0s.make("sick", "dom0-b")
    assert merge(healthy, sick, "-o", tmp_path / "f2") == 1
    assert merge(healthy, sick, "-o", tmp_path / "f3", "--fail-on", "never") == 0
    assert "Nothing to change tonight." in (tmp_path / "f1" / "fleet.html").read_text()


# --- output folder ----------------------------------------------------------------


def test_a_used_output_folder_needs_force(
    dom0s: Dom0Folders, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = dom0s.make("a1", "dom0-a", generated_at=recent(30))
    out = tmp_path / "fleet"
    assert merge(first, "-o", out) == 1
    assert merge(first, "-o", out) == 2
    assert "is not empty; give a new folder (or --force" in capsys.readouterr().err
    second = dom0s.make("a2", "dom0-a", generated_at=recent(1))
    (second / "marker.txt").write_text("second")
    assert merge(second, "-o", out, "--force") == 1
    assert (out / "dom0-a" / "marker.txt").read_text() == "second"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


# --- untrusted folders ------------------------------------------------------------


def test_copy_never_follows_symlinks_or_copies_special_files(
    dom0s: Dom0Folders, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "shadow").write_text("root:$6$secret")
    folder = dom0s.make("evil", "dom0-evil")
    (folder / "patches" / "steal.cfg.diff").symlink_to(secret / "shadow")
    (folder / "outside").symlink_to(secret, target_is_directory=True)
    os.mkfifo(folder / "pipe")
    (folder / "report.html").unlink()
    (folder / "report.html").symlink_to(secret / "shadow")
    out = tmp_path / "fleet"
    assert merge(folder, "-o", out) == 3  # not wholly copied: incomplete
    copy = out / "dom0-evil"
    assert not (copy / "outside").exists() and not (copy / "pipe").exists()
    assert not (copy / "patches" / "steal.cfg.diff").exists()
    assert not (copy / "report.html").exists()
    for path in copy.rglob("*"):
        assert not path.is_symlink()
        assert "secret" not in path.read_text() if path.is_file() else True
    (dom0,) = fleet_json(out)["dom0s"]
    assert sorted(dom0["copy_problems"]) == [
        "outside: symlink, not followed",
        "patches/steal.cfg.diff: symlink, not followed",
        "pipe: not a regular file, not copied",
        "report.html: symlink, not followed",
    ]
    # Without its report.html the fleet page links nowhere for this Dom0.
    assert dom0["report"] is None
    assert all(r["link"] is None for r in fleet_json(out)["actions"])


def test_copy_caps_size_and_count(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "snapshots" / "g").mkdir(parents=True)
    (source / "report.json").write_bytes(b"{}")
    (source / "big.log").write_bytes(b"x" * 5000)
    for i in range(5):
        (source / "snapshots" / "g" / f"f{i}").write_bytes(b"y" * 100)
    result = copy_report_folder(
        source, tmp_path / "c1", CopyLimits(max_file_bytes=1000, max_files=3)
    )
    assert "big.log: 5000 bytes, over the 1000-byte cap; not copied" in result.problems
    assert result.problems[-1].startswith("copy stopped after 3 files")
    # report.json goes first, the bulky snapshots last.
    assert (tmp_path / "c1" / "report.json").read_bytes() == b"{}"
    assert result.files == 3
    deep = copy_report_folder(source, tmp_path / "c2", CopyLimits(max_depth=1))
    assert deep.problems == ["snapshots/g: deeper than 1 folders"]
    skipped = copy_report_folder(source, tmp_path / "c3", CopyLimits(skip=frozenset({"snapshots"})))
    assert not (tmp_path / "c3" / "snapshots").exists() and skipped.problems == []


def test_hostile_host_names_make_safe_folder_names(dom0s: Dom0Folders, tmp_path: Path) -> None:
    names = ["../../etc", "fleet.json", "a/b", ".hidden", "x" * 300, "dom0\nsecond line"]
    inputs = [dom0s.make(f"h{i}", name) for i, name in enumerate(names)]
    out = tmp_path / "fleet"
    assert merge(*inputs, "-o", out, "-q") == 1
    doc = fleet_json(out)
    folders = [d["folder"] for d in doc["dom0s"]]
    assert len(set(folders)) == len(names)
    for folder in folders:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", folder) and len(folder) <= 70
        assert (out / folder / "report.json").is_file()
    assert "fleet.json" not in folders
    outputs = ["fleet.html", "fleet.json", "fleet.prom"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*folders, *outputs])
    assert json.loads((out / "fleet.json").read_text())["schema_version"] == 1


def test_a_report_with_several_hypervisors_is_one_dom0_entry(tmp_path: Path) -> None:
    folder = write_report(tmp_path / "multi", rf.rich_report())
    edit_report(folder, lambda d: d.update(generated_at=recent()))
    out = tmp_path / "fleet"
    assert merge(folder, "-o", out, "--expect", "dom0-b", "--expect", "dom0-z") == 3
    doc = fleet_json(out)
    (dom0,) = doc["dom0s"]
    assert dom0["hosts"] == ["dom0-a", "dom0-b", "dom0-c"]
    assert dom0["folder"] == "dom0-a_dom0-b_dom0-c"
    assert [m["name"] for m in doc["missing"]] == ["dom0-z"]
    assert dom0["incomplete"] is True and dom0["shortfall_mib"] > 0
    assert {r["host"] for r in doc["actions"]} <= {"dom0-a", "dom0-b", "dom0-c"}
    not_fitting = [r for r in doc["actions"] if not r["fits"]]
    assert not_fitting and all("does not fit on the host" in r["why"] for r in not_fitting)


def test_reports_without_actions_get_their_rows_from_the_domains(
    dom0s: Dom0Folders, tmp_path: Path
) -> None:
    """Dom0s running an older xenaudit write no `actions`; their cfg changes still show."""
    current = dom0s.make("new", "dom0-new")
    older = dom0s.make("old", "dom0-old", change=lambda d: d.pop("actions"))
    out = tmp_path / "fleet"
    assert merge(current, older, "-o", out, "-q") == 1
    rows = fleet_json(out)["actions"]
    listed = {r["domain"]: r for r in rows if r["host"] == "dom0-new"}
    derived = {r["domain"]: r for r in rows if r["host"] == "dom0-old"}
    resized = {name: r for name, r in listed.items() if r["kind"] == "resize"}
    assert resized and set(derived) == set(resized)
    for name, row in derived.items():
        twin = resized[name]
        assert row["kind"] == "resize"
        # The cfg part is worded alike; only the newer report adds guest sysctls to it.
        assert twin["change"].split("; in the guest:")[0] == row["change"]
        for key in ("severity", "why", "fits", "live_change_safe", "patch"):
            assert row[key] == twin[key], key
        assert row["link"].split("#")[1] == twin["link"].split("#")[1]


def test_change_text_as_the_report_words_it() -> None:
    from xenaudit.fleet.actions import cfg_changes, change_text

    rec = {"memory_mib": 768, "maxmem_mib": 1024}
    changes = cfg_changes(rec, {"memory_mib": 512, "maxmem_mib": None})
    assert change_text(changes) == "memory 512 → 768 MiB, maxmem 1024"
    rec = {"memory_mib": 1024, "maxmem_mib": 1024}
    changes = cfg_changes(rec, {"memory_mib": 1024, "maxmem_mib": 2048})
    assert change_text(changes) == "maxmem 2048 → 1024 MiB"


def test_fleet_prom_carries_the_alerting_signals(
    dom0s: Dom0Folders, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xenaudit.fleet.prometheus import main as prom_main

    fresh = dom0s.make("a", "dom0-a")
    stale = dom0s.make("b", 'dom0-"b"\nx', generated_at=recent(50))
    out = tmp_path / "fleet"
    assert merge(fresh, stale, "-o", out, "--expect", "dom0-gone") == 3
    text = (out / "fleet.prom").read_text()
    series, types = parse_exposition(text)
    assert set(types.values()) == {"gauge"}
    doc = fleet_json(out)
    folder = {d["hosts"][0]: d["folder"] for d in doc["dom0s"]}
    a, b = folder["dom0-a"], folder['dom0-"b"\nx']
    assert series[("xenaudit_audit_success", (("dom0", a),))] == 1
    assert series[("xenaudit_fleet_dom0_stale", (("dom0", b),))] == 1
    assert series[("xenaudit_fleet_dom0_missing", (("dom0", "dom0-gone"),))] == 1
    entry = next(d for d in doc["dom0s"] if d["folder"] == a)
    generated = datetime.fromisoformat(entry["generated_at"]).timestamp()
    assert series[("xenaudit_audit_timestamp_seconds", (("dom0", a),))] == int(generated)
    assert series[("xenaudit_fleet_domains", (("dom0", a), ("severity", "critical")))] == 1
    # Same names as each Dom0's xenaudit.prom, so the same rules fire.
    assert series[("xenaudit_host_plan_shortfall_bytes", (("host", 'dom0-"b"\nx'),))] == 0
    assert series[("xenaudit_domain_severity", (("host", "dom0-a"), ("domain", "guest00004")))] == 3
    # fleet.json alone gives the same file.
    capsys.readouterr()
    assert prom_main([str(out / "fleet.json")]) == 0
    assert capsys.readouterr().out == text
