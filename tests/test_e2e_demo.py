"""The demo: the whole pipeline on the bundled fleet, as the README's first command runs it."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.replaying import replay_audit, report_of
from xenaudit.cli import main
from xenaudit.demo import FLEET_DIR

FLEET_DOMAINS = {
    "web-frontend",
    "db-primary",
    "build-runner",
    "cache-node",
    "legacy-hvm",
    "mail-relay",
    "monitor",
    "gpu-worker",
    "pvh-appliance",
    "storm-proxy",
    "win-tenant",
    "erp-legacy",
    "intranet-hvm",
    "staging-template",
}


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("demo") / "report"
    code = main(["audit", "--demo", "-o", str(out), "-q"])
    return out, code


@pytest.fixture(scope="module")
def demo_json(demo_out: tuple[Path, int]) -> dict:
    return json.loads((demo_out[0] / "report.json").read_text())


def domain(report: dict, name: str) -> dict:
    return next(d for d in report["domains"] if d["name"] == name)


def test_demo_writes_every_output(demo_out: tuple[Path, int]) -> None:
    out, code = demo_out
    # mail-relay is unreachable on purpose: the audit is incomplete.
    assert code == 3
    for name in ("report.html", "report.json", "summary.csv", "xenaudit.prom"):
        assert (out / name).is_file(), name
    assert (out / "snapshots" / "web-frontend" / "meta.json").is_file()
    assert (out / "snapshots" / "_hypervisor").is_dir()


def test_demo_covers_every_domain(demo_json: dict) -> None:
    assert {d["name"] for d in demo_json["domains"]} == FLEET_DOMAINS
    assert demo_json["schema_version"] == 1
    assert [h["name"] for h in demo_json["hosts"]] == ["xen-demo", "xen-legacy"]
    assert demo_json["hosts"][0]["total_memory_kib"] == 24575 * 1024


def test_classic_domu_is_flagged_with_its_failures(demo_json: dict) -> None:
    web = domain(demo_json, "web-frontend")
    failures = [e for e in web["events"] if e["kind"] == "page_alloc_failure"]
    assert len(failures) == 5
    assert all(e["process"] == "swapper" and e["order"] == 0 for e in failures)
    assert all(e["gfp_mask"] == "0x20" for e in failures)
    assert not [e for e in web["events"] if e["kind"] == "oom_kill"]
    assert web["meminfo_kib"]["MemAvailable"] == 128436
    assert web["config"]["memory_mib"] == 512
    assert web["severity"] in ("warning", "critical")
    codes = {f["code"] for f in web["findings"]}
    assert "atomic_reserve" in codes and "healthy" not in codes
    # A quarter of its memory is available: the reserve is fixed live, memory is kept.
    rec = web["recommendation"]
    assert rec is not None and rec["change"] == "none" and rec["memory_mib"] == 512
    assert any("answered live with sysctls" in r for r in rec["reasons"])
    assert web["min_free"]["suggested_kib"] > web["min_free"]["kernel_default_kib"]
    assert web["min_free"]["suggested_kib"] < 65536
    # CentOS 6's 2.6.32 has no vm.watermark_scale_factor (its /proc/sys/vm does not list it).
    assert web["sysctls"] == []
    assert web["patch"] is None


def test_a_patch_applies_with_patch_p1(demo_out: tuple[Path, int], tmp_path: Path) -> None:
    out, _ = demo_out
    if shutil.which("patch") is None:
        pytest.fail("the patch tool is missing; scripts/test.sh installs it")
    etc = tmp_path / "etc" / "xen"
    etc.mkdir(parents=True)
    original = FLEET_DIR / "_cfg" / "xen-demo" / "db-primary.cfg"
    shutil.copy(original, etc / "db-primary.cfg")
    diff = (out / "patches" / "db-primary.cfg.diff").read_text()
    assert diff.startswith("--- a/etc/xen/db-primary.cfg")
    subprocess.run(
        ["patch", "-p1", "--dry-run"],
        input=diff,
        text=True,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["patch", "-p1"], input=diff, text=True, cwd=tmp_path, check=True, capture_output=True
    )
    patched = (etc / "db-primary.cfg").read_text()
    before = original.read_text().splitlines()
    after = patched.splitlines()
    changed = [line for line in after if line not in before]
    assert changed and all(line.startswith(("memory", "maxmem")) for line in changed)
    # every other line survives byte for byte, in order
    assert [line for line in before if not line.startswith(("memory", "maxmem"))] == [
        line for line in after if not line.startswith(("memory", "maxmem"))
    ]


def test_unreachable_guest_is_reported_not_dropped(demo_json: dict) -> None:
    mail = domain(demo_json, "mail-relay")
    assert mail["collection"]["status"] == "unreachable"
    assert "No route to host" in mail["collection"]["error"]
    assert mail["recommendation"] is None or mail["recommendation"]["memory_mib"] >= 768
    assert demo_json["incomplete"] is True


def test_oom_guest_and_hvm_guest(demo_json: dict) -> None:
    db = domain(demo_json, "db-primary")
    kills = [e for e in db["events"] if e["kind"] == "oom_kill"]
    assert [k["victim_pid"] for k in kills] == [2231, 3310]
    assert db["recommendation"]["memory_mib"] > 2048
    hvm = domain(demo_json, "legacy-hvm")
    assert hvm["guest_type"] == "hvm"
    findings = {f["code"]: f for f in hvm["findings"]}
    assert "hvm_pod_risk" in findings
    # In populate-on-demand mode it has touched 92% of the 1024 MiB Xen backs: critical,
    # and never a decrease although MemAvailable (against 2 GiB) looks large.
    touched = findings["pod_exhaustion"]
    assert touched["severity"] == "critical" and "92%" in touched["title"]
    assert "xl mem-set legacy-hvm 2048m" in touched["detail"]
    rec = hvm["recommendation"]
    assert rec["maxmem_mib"] == rec["memory_mib"] == 1024 and rec["change"] == "maxmem"
    assert hvm["patch"] is not None


def test_passthrough_pvh_and_storm_guests(demo_json: dict) -> None:
    gpu = domain(demo_json, "gpu-worker")
    assert gpu["config"]["passthrough"] == "pci/dtdev = 1 device(s)"
    assert gpu["live"]["passthrough"] == "passthrough share_pt, 1 PCI device(s)"
    rec = gpu["recommendation"]
    # Short of memory with a working balloon driver, yet no maxmem headroom: passthrough.
    assert rec["change"] == "increase" and rec["maxmem_mib"] == rec["memory_mib"] > 4096
    assert any("libxl refuses populate-on-demand with an IOMMU" in r for r in rec["reasons"])
    pvh = domain(demo_json, "pvh-appliance")
    codes = {f["code"] for f in pvh["findings"]}
    assert "hvm_pod_risk" in codes and "over_provisioned" not in codes
    risk = next(f for f in pvh["findings"] if f["code"] == "hvm_pod_risk")
    assert risk["title"].startswith("PVH guest")
    assert pvh["recommendation"]["change"] == "maxmem"
    assert pvh["recommendation"]["maxmem_mib"] == pvh["recommendation"]["memory_mib"] == 1024
    storm = domain(demo_json, "storm-proxy")
    codes = {f["code"] for f in storm["findings"]}
    assert "atomic_reserve" in codes
    assert not codes & {"healthy", "over_provisioned"}
    failures = [e for e in storm["events"] if e["kind"] == "page_alloc_failure"]
    assert len(failures) >= 4
    atomic = next(f for f in storm["findings"] if f["code"] == "atomic_reserve")
    for name in ("haproxy", "swapper/0", "swapper/3", "ksoftirqd/2"):
        assert name in atomic["detail"]
    assert storm["recommendation"]["change"] == "none"
    assert [p["name"] for p in storm["sysctls"]] == ["vm.watermark_scale_factor"]
    assert storm["patch"] is None


def test_fragmented_and_overprovisioned_guests(demo_json: dict) -> None:
    cache = domain(demo_json, "cache-node")
    assert "fragmentation" in {f["code"] for f in cache["findings"]}
    orders = sorted({e["order"] for e in cache["events"] if e["kind"] == "page_alloc_failure"})
    assert orders == [2, 3, 4]
    runner = domain(demo_json, "build-runner")
    assert "over_provisioned" in {f["code"] for f in runner["findings"]}
    assert runner["recommendation"]["memory_mib"] < 6144


def test_replay_from_snapshots_gives_the_same_verdicts(
    demo_out: tuple[Path, int], demo_json: dict, tmp_path: Path
) -> None:
    out, _ = demo_out
    again = tmp_path / "again"
    assert replay_audit(out / "snapshots", again, tmp_path / "state") == 3
    replayed = report_of(again)
    assert {d["name"] for d in replayed["domains"]} == FLEET_DOMAINS
    for name in ("web-frontend", "db-primary", "cache-node"):
        first, second = domain(demo_json, name), domain(replayed, name)
        assert first["events"] == second["events"]
        assert first["meminfo_kib"] == second["meminfo_kib"]
        assert first["config"] == second["config"]


def test_audit_never_touches_the_cfg_files(demo_out: tuple[Path, int]) -> None:
    before = (FLEET_DIR / "_cfg" / "xen-demo" / "web-frontend.cfg").read_bytes()
    assert b"memory = 512" in before


def test_module_entry_point_help_lists_exit_codes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xenaudit", "audit", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "exit codes" in result.stdout and "incomplete" in result.stdout


def test_bad_inventory_exits_2_naming_file_and_key(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "inv.toml"
    bad.write_text('[[hypervisor]]\nname = "a"\nbackend = "xapi"\n')
    assert main(["audit", "-i", str(bad), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "hypervisor[0].backend" in err


def test_evidence_quotes_the_log_line_as_printed(demo_json: dict) -> None:
    web = domain(demo_json, "web-frontend")
    finding = next(f for f in web["findings"] if f["code"] == "atomic_reserve")
    quoted = [e for e in finding["evidence"] if e["source"].startswith("kernlog")]
    assert quoted
    # 2.6.32 printed a period after "failure"; the quote keeps it, with the line number.
    first = quoted[0]
    assert "swapper: page allocation failure. order:0, mode:0x20" in first["text"]
    kernlog = (FLEET_DIR / "web-frontend" / "kernlog").read_text().splitlines()
    assert first["text"].split("  [decoded")[0].split("] ", 1)[1] in kernlog[first["line"] - 1]


def test_skipped_domain_is_listed_and_still_counts_on_the_host(tmp_path: Path) -> None:
    from xenaudit.demo import INVENTORY

    inventory = tmp_path / "inventory.toml"
    inventory.write_text(INVENTORY.read_text() + "\n[domains.monitor]\nskip = true\n")
    out = tmp_path / "out"
    main(
        [
            "audit",
            "-i",
            str(inventory),
            "--from-snapshots",
            str(FLEET_DIR),
            "-o",
            str(out),
            "-q",
            "--state-dir",
            str(tmp_path / "state"),
        ]
    )
    report = json.loads((out / "report.json").read_text())
    monitor = domain(report, "monitor")
    assert monitor["collection"]["status"] == "skipped"
    assert "skip" in monitor["collection"]["error"]
    assert monitor["severity"] in ("ok", "info")
    assert monitor["recommendation"] is None or monitor["recommendation"]["change"] == "none"
    assert not monitor["events"]
    plan = report["hosts"][0]["plan"]
    entry = next(e for e in plan["entries"] if e["domain"] == "monitor")
    assert entry["current_mib"] == entry["planned_mib"] == 1024


def _fleet_collected_on(tmp_path: Path, day: int) -> Path:
    """The demo fleet as if it had been collected on 2026-12-DAY."""
    fleet = tmp_path / f"fleet{day}"
    shutil.copytree(FLEET_DIR, fleet)
    for meta_file in fleet.glob("*/meta.json"):
        meta = json.loads(meta_file.read_text())
        meta["collected_at"] = f"2026-12-{day:02d}T02:31:00Z"
        meta_file.write_text(json.dumps(meta))
    return fleet


def test_history_builds_up_from_snapshots_of_each_night(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from xenaudit.audit import AuditOptions, run_audit, snapshot_hypervisors
    from xenaudit.demo import INVENTORY
    from xenaudit.inventory.toml import load_inventory

    inventory = dataclasses.replace(
        load_inventory(INVENTORY), hypervisors=snapshot_hypervisors(FLEET_DIR)
    )
    state = tmp_path / "state"

    def replay(day: int, run: int):
        options = AuditOptions(
            outdir=tmp_path / f"run{run}",
            formats=("json",),
            state_dir=state,
            from_snapshots=_fleet_collected_on(tmp_path / f"r{run}", day),
            now=datetime(2026, 12, 20, 8, run, tzinfo=UTC),
        )
        report = run_audit(inventory, options)
        return next(d for d in report.domains if d.name == "web-frontend").assessment

    # Three nights, then the second night replayed again: it is not counted twice.
    nights = [replay(day, run) for run, day in enumerate((1, 2, 3, 2))]
    assert [len(a.need_history_mib) for a in nights] == [1, 2, 3, 2]
    atomic = next(f for f in nights[2].findings if f.code == "atomic_reserve")
    assert atomic.first_seen is not None and atomic.first_seen.startswith("2026-12-01")
    assert atomic.nights_seen >= 2


@pytest.mark.parametrize(
    ("fail_on", "expected"), [("info", 1), ("warning", 1), ("critical", 1), ("never", 1)]
)
def test_exit_code_follows_fail_on_when_complete(
    tmp_path: Path, fail_on: str, expected: int
) -> None:
    from xenaudit.demo import INVENTORY

    # Without the unreachable guest the audit is complete, so findings decide; patches are
    # written (db-primary, gpu-worker, ...), so even "never" is not 0: 0 is "nothing to change".
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(INVENTORY.read_text() + "\n[domains.mail-relay]\nskip = true\n")
    code = main(
        [
            "audit",
            "-i",
            str(inventory),
            "--from-snapshots",
            str(FLEET_DIR),
            "-q",
            "-o",
            str(tmp_path / "out"),
            "--state-dir",
            str(tmp_path / "state"),
            "--fail-on",
            fail_on,
            "--format",
            "json",
        ]
    )
    assert code == expected


@pytest.mark.parametrize(("fail_on", "expected"), [("info", 1), ("warning", 0), ("never", 0)])
def test_nothing_to_change_is_0_and_a_written_patch_never_is(
    tmp_path: Path, fail_on: str, expected: int
) -> None:
    from xenaudit.demo import INVENTORY

    # Only the calm guests, without history: no patch, at most info findings. (The skipped
    # HVM/PVH guests would still get maxmem = memory from their cfg alone, unless their
    # balloon driver is confirmed.)
    calm = {"build-runner", "monitor"}
    skipped = "".join(
        f"\n[domains.{name}]\nskip = true\nballoon_driver = true\n"
        for name in sorted(FLEET_DOMAINS - calm)
    )
    inventory = tmp_path / "inventory.toml"
    head = INVENTORY.read_text().split("[domains.", 1)[0]
    inventory.write_text(head + skipped)
    argv = ["audit", "-i", str(inventory), "--from-snapshots", str(FLEET_DIR), "-q"]
    argv += ["--state-dir", str(tmp_path / "state"), "--format", "json", "--fail-on", fail_on]
    code = main([*argv, "-o", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert not [d for d in report["domains"] if d["patch"]]
    assert code == expected


def test_incomplete_beats_findings_even_when_findings_are_ignored(tmp_path: Path) -> None:
    code = main(["audit", "--demo", "-q", "-o", str(tmp_path / "o"), "--fail-on", "never"])
    assert code == 3


def test_demo_report_json_matches_its_schema(demo_json: dict) -> None:
    import jsonschema

    from xenaudit.formats.json import report_schema

    errors = list(jsonschema.Draft202012Validator(report_schema()).iter_errors(demo_json))
    assert errors == []


def test_guest_without_login_is_judged_from_dom0(demo_json: dict) -> None:
    tenant = domain(demo_json, "win-tenant")
    assert tenant["collection"]["status"] == "skipped"
    codes = {f["code"] for f in tenant["findings"]}
    assert {"hypervisor_side", "shortage"} <= codes
    rec = tenant["recommendation"]
    assert rec["change"] == "increase" and rec["confidence"] == "low"
    assert tenant["patch"] == "patches/win-tenant.cfg.diff"


def test_xm_era_host_is_read_and_told_about_xend(
    demo_json: dict, demo_out: tuple[Path, int]
) -> None:
    legacy = next(h for h in demo_json["hosts"] if h["name"] == "xen-legacy")
    assert legacy["backend"] == "xm" and legacy["error"] is None
    assert any("removed in Xen 4.5" in note for note in legacy["plan"]["notes"])
    assert "removed in Xen 4.5" in (demo_out[0] / "report.html").read_text()
    erp = domain(demo_json, "erp-legacy")
    assert erp["recommendation"]["change"] == "increase" and erp["patch"]
    intranet = domain(demo_json, "intranet-hvm")
    assert intranet["patch"] is None and "imports Python code" in intranet["config"]["error"]
    assert "pod_crash" in {f["code"] for f in intranet["findings"]}


def test_demo_first_screen_and_words(demo_out: tuple[Path, int], demo_json: dict) -> None:
    """What a newcomer reads first: the actions, in plain words, and times they can place."""
    import html as htmlmod

    page = htmlmod.unescape((demo_out[0] / "report.html").read_text())
    actions = {a["domain"]: a for a in demo_json["actions"]}
    # The classic guest has a quarter of its memory available: its reserve is fixed live.
    assert actions["web-frontend"]["change"] == "in the guest: vm.min_free_kbytes 2834 → 6144"
    assert actions["storm-proxy"]["change"].endswith("vm.watermark_scale_factor 10 → 100")
    assert actions["gpu-worker"]["change"] == "memory 4096 → 4928 MiB, maxmem 4928"
    assert actions["pvh-appliance"]["change"] == "maxmem 2048 → 1024 MiB"
    assert actions["legacy-hvm"]["change"] == "maxmem 2048 → 1024 MiB"
    assert actions["cache-node"]["change"] == "in the guest: vm.extfrag_threshold 500 → 300"
    assert actions["mail-relay"]["kind"] == "unread"
    assert demo_json["actions"][0]["severity"] == "critical"
    for action in demo_json["actions"]:
        assert action["change"] in page
    # Folded process names, blocked explained, kernel-log times on the wall clock.
    assert "postgres ×4, systemd-journal" in page
    assert "idle: waiting for work" in page
    assert re.search(r"2026-11-\d\d \d\d:\d\d UTC <span class=\"ago\">\d+ days ago</span>", page)
    # Sizes in MiB/GiB outside quoted evidence; inline code as <code>.
    prose = re.sub(r'<pre class="log">.*?</pre>', "", page, flags=re.S)
    assert not re.search(r"\d+ ?kB\b", prose)
    assert "`" not in re.sub(r"<pre.*?</pre>", "", prose, flags=re.S)
