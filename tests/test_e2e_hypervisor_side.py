"""Whole audits of guests nobody logs into, and of an xm-era Dom0, through fake tools on PATH.

The recorded hosts are tests/fake_xl/recordings/host_signals (xl) and
host_xm (xend); their NOTES say which files are real and which constructed.
Each night is its own run, with its own time, against one state directory.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fake_xl.support import copy_recording, use_fake_xl
from xenaudit.analysis.hypervisor_history import FILE_NAME
from xenaudit.analysis.hypervisor_side import HYPERVISOR_SIDE_REASON
from xenaudit.audit import AuditOptions, run_audit
from xenaudit.cli import main
from xenaudit.hypervisor.xm_parse import XEND_REMOVED_NOTE
from xenaudit.inventory.toml import load_inventory
from xenaudit.xlcfg.xmcfg import parse_xm


def _inventory(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(
        text
        + '\n[ssh]\nhost_template = "{name}.invalid"\nconnect_timeout_s = 1.0\nretries = 0\n'
        + f'known_hosts = "{tmp_path / "kh"}"\nown_known_hosts = "{tmp_path / "own"}"\n'
        + f'ssh_config = "{tmp_path / "none"}"\n'
    )
    return path


def _night(inventory: Path, out: Path, state: Path, day: int, root: Path = Path("/")) -> dict:
    run_audit(
        load_inventory(inventory),
        AuditOptions(
            outdir=out, state_dir=state, now=datetime(2026, 11, day, 2, 31, tzinfo=UTC), root=root
        ),
    )
    return json.loads((out / "report.json").read_text())


def _domain(report: dict, name: str) -> dict:
    return next(d for d in report["domains"] if d["name"] == name)


def _codes(domain: dict) -> list[str]:
    return [f["code"] for f in domain["findings"]]


def _renumber(recording: Path, name: str, old: int, new: int) -> None:
    """The same host on an earlier night, when `name` ran with domid `old`."""
    listing = recording / "list.out"
    listing.write_text(
        re.sub(rf"^({name}\s+){new}\b", rf"\g<1>{old}", listing.read_text(), flags=re.M)
    )
    details = json.loads((recording / "list_l.out").read_text())
    for entry in details:
        if entry["domid"] == new:
            entry["domid"] = old
    (recording / "list_l.out").write_text(json.dumps(details))
    store = recording / "xenstore.store"
    store.write_text(store.read_text().replace(f"/local/domain/{new}", f"/local/domain/{old}"))


@pytest.fixture
def xl_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    recording = copy_recording("host_signals", tmp_path)
    use_fake_xl(monkeypatch, recording)
    monkeypatch.setenv("XENAUDIT_FAKE_XL_LOG", str(tmp_path / "calls.log"))
    # The Dom0's files under a stand-in root, so the cfgs are /etc/xen/*.cfg as on a Dom0.
    shutil.copytree(recording / "etc-xen", tmp_path / "root" / "etc" / "xen", symlinks=True)
    inventory = _inventory(
        tmp_path,
        '[[hypervisor]]\nname = "dom0a"\nbackend = "xl"\ncfg_dir = "/etc/xen"\n'
        '\n[domains.db]\ncollect = "hypervisor"\n[domains.winhvm]\ncollect = "hypervisor"\n',
    )
    return recording, inventory


def test_guests_without_login_are_judged_from_dom0(
    xl_host: tuple[Path, Path], tmp_path: Path
) -> None:
    recording, inventory = xl_host
    state = tmp_path / "state"
    # Last night winhvm ran as domid 2; the hypervisor log shows Dom2 ran out of PoD memory.
    root = tmp_path / "root"
    _renumber(recording, "winhvm", 2, 6)
    _night(inventory, tmp_path / "n1", state, 23, root)
    _renumber(recording, "winhvm", 6, 2)
    report = _night(inventory, tmp_path / "n2", state, 24, root)

    winhvm = _domain(report, "winhvm")
    assert winhvm["severity"] == "critical" and "pod_crash" in _codes(winhvm)
    db = _domain(report, "db")
    assert db["collection"]["status"] == "skipped"
    assert db["collection"]["error"] == HYPERVISOR_SIDE_REASON
    assert {"hypervisor_side", "shortage"} <= set(_codes(db))
    # pvhguest is read over SSH (and cannot be reached), yet Dom0 shows its balloon stuck.
    pvh = _domain(report, "pvhguest")
    assert pvh["collection"]["status"] == "unreachable"
    assert "balloon_stuck" in _codes(pvh) and "hypervisor_side" not in _codes(pvh)

    snapshot = tmp_path / "n2" / "snapshots" / "_hypervisor" / "dom0a"
    for name in ("xenstore-ls.txt", "xentop.txt", "xen-dmesg.txt"):
        assert (snapshot / name).is_file(), name
    with sqlite3.connect(state / FILE_NAME) as db_file:
        rows = db_file.execute(
            "SELECT domain, domid FROM nights ORDER BY run_at, domain"
        ).fetchall()
    assert ("winhvm", 2) in rows and ("winhvm", 6) in rows and len(rows) == 8

    # No SSH connection is ever attempted to a guest judged from Dom0.
    assert not (tmp_path / "n2" / "snapshots" / "db" / "meminfo").exists()
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls.count("xenstore-ls -f /local/domain") == 2  # one per night, whatever the domains


def test_replay_without_the_inventory_judges_them_the_same(
    xl_host: tuple[Path, Path], tmp_path: Path
) -> None:
    _recording, inventory = xl_host
    first = _night(inventory, tmp_path / "n1", tmp_path / "state", 24, tmp_path / "root")
    assert _domain(first, "db")["config"]["path"] == "/etc/xen/db.cfg"
    code = main(
        [
            "audit",
            "--from-snapshots",
            str(tmp_path / "n1" / "snapshots"),
            "-o",
            str(tmp_path / "replay"),
            "--state-dir",
            str(tmp_path / "state2"),
            "-q",
        ]
    )
    assert code in (1, 3)
    replayed = json.loads((tmp_path / "replay" / "report.json").read_text())
    for name in ("db", "winhvm", "pvhguest"):
        assert _codes(_domain(replayed, name)) == _codes(_domain(first, name)), name


@pytest.fixture
def xm_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    recording = copy_recording("host_xm", tmp_path)
    use_fake_xl(monkeypatch, recording)
    inventory = _inventory(
        tmp_path,
        f'[[hypervisor]]\nname = "ovm"\nbackend = "xm"\ncfg_dir = "{recording / "etc-xen"}"\n'
        'collect = "hypervisor"\n',
    )
    return recording, inventory


def test_xm_dom0_three_nights_of_xenballoond_figures(
    xm_host: tuple[Path, Path], tmp_path: Path
) -> None:
    recording, inventory = xm_host
    state = tmp_path / "state"
    for day in (22, 23):
        _night(inventory, tmp_path / f"n{day}", state, day)
    out = tmp_path / "n24"
    report = _night(inventory, out, state, 24)

    host = report["hosts"][0]
    assert host["backend"] == "xm" and XEND_REMOVED_NOTE in host["plan"]["notes"]
    assert "removed in Xen 4.5" in (out / "report.html").read_text()

    pv = _domain(report, "0004fb0000060000236e45007b980aa1")
    rec = pv["recommendation"]
    assert rec["change"] == "increase" and rec["confidence"] == "low"
    assert any("xenballoond" in r for r in rec["reasons"])
    # The plain xm cfg gets a patch; the result is still plain assignments for xm.
    target = tmp_path / "root" / recording.relative_to("/") / "etc-xen"
    target.mkdir(parents=True)
    cfg = recording / "etc-xen" / "0004fb0000060000236e45007b980aa1.cfg"
    (target / cfg.name).write_bytes(cfg.read_bytes())
    subprocess.run(
        ["patch", "-p1", "-s"],
        input=(out / pv["patch"]).read_bytes(),
        cwd=tmp_path / "root",
        check=True,
    )
    patched = parse_xm((target / cfg.name).read_bytes())
    assert patched.memory_mib == rec["memory_mib"] and patched.maxmem_mib == rec["maxmem_mib"]

    hvm = _domain(report, "0004fb00000600007c522c7d71072a52")
    assert hvm["patch"] is None
    assert ":2: 'import os' imports Python code" in hvm["config"]["error"]
    assert "hvm_pod_risk" in _codes(hvm)
    assert hvm["recommendation"]["change"] == "maxmem"
