"""The fast tests on what a real Xen 4.17 printed (tests/fake_xl/recordings/realxen_4.17).

The recordings were captured by the real-Xen suite (tests/realxen) from Xen 4.17,
a Debian 12 PV Dom0 and busybox PV DomUs: `xl` outputs for the fake xl, xenstore
and xentop as printed, each DomU's /proc files and kernel log, and the snapshots
folder of the audit xenaudit ran there. Expected values come from a second raw
source of the same moment (xenstore beside `xl list -l`, xentop beside
`xl list`), never from xenaudit itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.fake_xl.support import RECORDINGS, copy_recording, use_fake_xl
from tests.replaying import replay_audit, report_of
from xenaudit.cli import main
from xenaudit.hypervisor.xl import XlSource
from xenaudit.inventory.interface import HypervisorSpec
from xenaudit.parsers.interface import OomKill, PageAllocFailure
from xenaudit.parsers.kernlog import parse_kernlog
from xenaudit.parsers.ps import parse_ps

REAL = RECORDINGS / "realxen_4.17"
GUESTS = ("healthy", "squeezed", "drifted")


def _xenstore() -> dict[str, str]:
    values = {}
    for line in (REAL / "xenstore-ls-f.out").read_text().splitlines():
        match = re.match(r'^(/\S*) = "(.*)"$', line)
        if match:
            values[match[1]] = match[2]
    return values


def _xentop_first_frame() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in (REAL / "xentop-b.out").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "NAME":
            if rows:
                break
            continue
        if fields:
            rows[fields[0]] = fields
    return rows


@pytest.fixture
def real_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    recording = copy_recording("realxen_4.17", tmp_path)
    use_fake_xl(monkeypatch, recording)
    return recording


def test_xl_backend_agrees_with_xenstore_and_xentop(real_host: Path) -> None:
    view = XlSource(HypervisorSpec(name="xen-dom0", cfg_dir=str(real_host / "etc-xen"))).read()
    lines = (REAL / "info.out").read_text().splitlines()
    info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    assert info["xen_version"].startswith("4.17.")
    assert view.total_memory_kib == int(info["total_memory"]) * 1024
    assert view.free_memory_kib == int(info["free_memory"]) * 1024
    store = _xenstore()
    top = _xentop_first_frame()
    assert {d.name for d in view.guests} == set(GUESTS)
    for domain in view.domains:
        node = f"/local/domain/{domain.domid}/memory"
        assert domain.max_kib == int(store[f"{node}/static-max"])
        if not domain.is_dom0:
            assert domain.target_kib == int(store[f"{node}/target"])
            assert domain.guest_type == "pv"
        # xentop's MEM(k) is what the domain holds, like xl list's Mem column.
        assert domain.current_kib == int(top[domain.name][4])
    dom0 = view.dom0
    assert dom0 is not None
    # libxl reports Dom0's target 1 KiB below dom0_mem; xenstore has it whole.
    assert dom0.target_kib == int(store["/local/domain/0/memory/target"]) - 1


def _inventory(tmp_path: Path, recording: Path) -> Path:
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        "[[hypervisor]]\n"
        'name = "xen-dom0"\n'
        'backend = "xl"\n'
        f'cfg_dir = "{recording / "etc-xen"}"\n'
    )
    return inventory


def test_domains_lists_the_cfg_only_domain_shut_off(
    real_host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["domains", "-i", str(_inventory(tmp_path, real_host)), "--json"]) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)["hosts"][0]["domains"]}
    # Debian's /etc/xen/xlexample.* declare names too, but are examples, not domains.
    assert set(listed) == {*GUESTS, "parked"}
    parked = listed["parked"]
    assert parked["state"] == "shutoff" and parked["domid"] is None
    assert parked["target_kib"] == 384 * 1024  # memory = 384 in parked.cfg
    assert parked["drift"] == []
    assert "192 MiB" in " ".join(listed["drifted"]["drift"])


def test_busybox_ps_sizes_are_read_back_to_kib() -> None:
    text = (REAL / "guests" / "healthy" / "ps.txt").read_text()
    assert re.search(r"memhog\s+\d+m\s", text)  # busybox scales 10000 KiB and more
    processes = parse_ps(text)
    hog = next(p for p in processes if p.comm == "memhog")
    assert 24 * 1024 <= hog.rss_kib < 26 * 1024
    assert max(processes, key=lambda p: p.rss_kib) == hog


def test_real_oom_kill_is_parsed_with_its_victim() -> None:
    log = parse_kernlog((REAL / "guests" / "squeezed" / "dmesg.txt").read_text())
    kills = [e for e in log.events if isinstance(e, OomKill)]
    assert kills and all(k.victim_process == "memhog" for k in kills)
    assert kills[0].oom_score_adj == 1000
    assert kills[0].text.startswith("Out of memory: Killed process")


def test_real_atomic_page_allocation_failure_is_parsed() -> None:
    log = parse_kernlog((REAL / "guests" / "burst" / "dmesg.txt").read_text())
    failures = [e for e in log.events if isinstance(e, PageAllocFailure)]
    assert failures
    first = failures[0]
    assert first.order == 0
    assert first.is_atomic
    assert "GFP_ATOMIC" in first.gfp_flags
    assert first.kernel_version and first.kernel_version.startswith("6.1.")


def test_replaying_the_real_audit_gives_its_verdicts(tmp_path: Path) -> None:
    out = tmp_path / "replay"
    assert replay_audit(REAL / "audit-snapshots", out, tmp_path / "state") == 1
    report = report_of(out)
    by_name = {d["name"]: d for d in report["domains"]}
    assert set(by_name) == {*GUESTS, "parked"}
    squeezed = by_name["squeezed"]
    assert {"shortage", "oom_kill"} <= {f["code"] for f in squeezed["findings"]}
    assert squeezed["recommendation"]["change"] == "increase"
    assert by_name["healthy"]["severity"] == "ok"
    assert by_name["healthy"]["top_processes"][0]["comm"] == "memhog"
    assert by_name["parked"]["state"] == "shutoff"
    plan = report["hosts"][0]["plan"]
    assert "parked" in {e["domain"] for e in plan["entries"]}
    # Dom0 booted with dom0_mem=768M counts as 768 MiB, not libxl's 767.999.
    assert plan["dom0_mib"] == 768


def test_audit_of_the_recorded_host_counts_the_shut_off_domain(
    real_host: Path, tmp_path: Path
) -> None:
    """xl read live (the fake xl), guests from the real run's snapshots, cfgs from etc-xen."""
    inventory = _inventory(tmp_path, real_host)
    snapshots = REAL / "audit-snapshots"
    inventory.write_text(
        inventory.read_text().replace(
            "[[hypervisor]]", f'guest_snapshot_dir = "{snapshots}"\n[[hypervisor]]', 1
        )
    )
    out = tmp_path / "out"
    assert main(["audit", "-i", str(inventory), "-o", str(out), "-q"]) == 1
    report = json.loads((out / "report.json").read_text())
    names = {d["name"]: d for d in report["domains"]}
    assert set(names) == {*GUESTS, "parked"}
    assert names["parked"]["config"]["path"].endswith("etc-xen/parked.cfg")
    entries = {e["domain"]: e for e in report["hosts"][0]["plan"]["entries"]}
    assert entries["parked"]["current_mib"] == 384


def test_replaying_the_real_burst_audit_names_the_atomic_reserve(tmp_path: Path) -> None:
    """The audit Dom0 ran right after a real GFP_ATOMIC failure: the cause is the tiny
    atomic reserve (vm.min_free_kbytes = 128), and the report quotes the kernel's line."""
    out = tmp_path / "replay"
    replay_audit(REAL / "burst-audit-snapshots", out, tmp_path / "state")
    report = report_of(out)
    burst = next(d for d in report["domains"] if d["name"] == "burst")
    findings = {f["code"]: f for f in burst["findings"]}
    assert "atomic_reserve" in findings, burst["diagnosis"]
    log = (REAL / "burst-audit-snapshots" / "burst" / "kernlog").read_text()
    first = next(line for line in log.splitlines() if "page allocation failure" in line)
    message = first.split("] ", 1)[1]
    assert any(message in e["text"] for e in findings["atomic_reserve"]["evidence"])
    sysvm = (REAL / "burst-audit-snapshots" / "burst" / "sysvm").read_text()
    assert "min_free_kbytes=128\n" in sysvm
    # Answered live: the reserve back to at least the kernel's own default, memory kept.
    assert burst["min_free"]["current_kib"] == 128
    assert burst["min_free"]["suggested_kib"] >= 1145
    assert burst["recommendation"]["change"] == "none"
