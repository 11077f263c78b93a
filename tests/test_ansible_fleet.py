"""The Ansible role and playbooks, run by real `ansible-playbook` against stand-in Dom0s.

Four Dom0s in the Ansible inventory (tests/standin/dom0s.py): each a real
sshd in its own mount namespace with a fake `xl` and its own stand-in guests.

    dom0-a   the reference guest (page allocation failure) and a healthy one: exit 1
    dom0-b   one healthy guest: exit 0
    dom0-c   the reference guest and one that is down: exit 3 (incomplete)
    dom0-d   not running: unreachable

audit.yml installs xenaudit from a wheel built here (its dependencies from a
local folder standing in for a package index), renders each Dom0's inventory,
the systemd units and the run script, audits, fetches and merges. Then the
same playbook again (nothing to install or configure), and apply.yml in check
mode, for real, and again.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.standin import content
from tests.standin.dom0s import (
    PLAYBOOKS,
    Dom0Plan,
    GuestPlan,
    PlaybookRun,
    StandinDom0s,
    ansible_env,
    ansible_playbook,
    run_playbook,
)
from tests.standin.fleet import GuestSpec, StandinError
from tests.wheelhouse import make_wheelhouses
from xenaudit.fleet.json import fleet_schema
from xenaudit.inventory.toml import load_inventory

pytestmark = [
    pytest.mark.sshd,
    pytest.mark.slow,
    pytest.mark.skipif(not ansible_playbook(), reason="ansible-core is not installed"),
]

HEALTHY = {
    "kernlog": "[    0.000000] Linux version 6.1.0\n",
    "meminfo": content.meminfo(total_kib=1_004_000, free_kib=400_000, available_kib=700_000),
}
PLANS = (
    Dom0Plan("dom0-a", (GuestPlan("a-ref"), GuestPlan("a-ok", 1024, GuestSpec("a-ok", **HEALTHY)))),
    Dom0Plan("dom0-b", (GuestPlan("b-ok", 1024, GuestSpec("b-ok", **HEALTHY)),)),
    Dom0Plan("dom0-c", (GuestPlan("c-ref"), GuestPlan("c-down", 768, up=False))),
    Dom0Plan("dom0-d", (GuestPlan("d-any"),), reachable=False),
)
ROLE_SETUP_TASKS = (
    "Create the virtualenv",
    "Copy the wheelhouse to the Dom0",
    "Install or upgrade xenaudit and its dependencies",
    "Create xenaudit's folders",
    "Lay down the inventory",
    "Install the run script (used by the timer and by the playbook's audit)",
    "Install the systemd units",
)


@dataclass
class AnsibleFleet:
    dom0s: StandinDom0s
    inventory: Path
    home: Path
    fleet_root: Path
    first: PlaybookRun

    def play(self, playbook: str, *args: str) -> PlaybookRun:
        return run_playbook(playbook, self.inventory, self.home, *args)

    def latest(self) -> Path:
        return (self.fleet_root / "latest").resolve()


def fleet_json(folder: Path) -> dict[str, Any]:
    document = json.loads((folder / "fleet.json").read_text())
    assert list(jsonschema.Draft202012Validator(fleet_schema()).iter_errors(document)) == []
    return document


@pytest.fixture(scope="module")
def ansible_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnsibleFleet]:
    work = tmp_path_factory.mktemp("ansible")
    own_wheel, dependencies = make_wheelhouses(work / "wheels")
    try:
        dom0s = StandinDom0s.start(PLANS, work / "standins")
    except StandinError as exc:
        pytest.fail(f"stand-in Dom0s unavailable: {exc}", pytrace=False)
    with dom0s:
        fleet_root = work / "fleet"
        inventory = dom0s.inventory(
            work / "hosts.yml",
            {
                "xenaudit_wheelhouse": str(own_wheel),
                "xenaudit_pip_offline": True,
                "xenaudit_pip_args": ["--find-links", str(dependencies)],
                "xenaudit_timer": True,
            },
            {
                "xenaudit_fleet_root": str(fleet_root),
                "xenaudit_fleet_textfile_dir": str(work / "textfile"),
            },
        )
        (work / "textfile").mkdir()
        home = work / "ansible-home"
        first = run_playbook("audit.yml", inventory, home)
        yield AnsibleFleet(dom0s, inventory, home, fleet_root, first)


def test_audit_playbook_installs_audits_fetches_and_merges(ansible_fleet: AnsibleFleet) -> None:
    run = ansible_fleet.first
    recap = run.recap()
    assert recap["dom0-a"]["failed"] == 0 and recap["dom0-a"]["unreachable"] == 0, run.output
    assert recap["dom0-b"]["failed"] == 0
    assert recap["dom0-c"]["failed"] == 1  # exit 3 fails that Dom0 only
    assert recap["dom0-d"]["unreachable"] == 1
    assert recap["localhost"]["failed"] == 0
    # Exit codes as Ansible results: 1 is "changed", 0 is "ok", 3 fails with what was not read.
    audit = run.task_results()["xenaudit : Run the audit"]
    assert audit == {"dom0-a": "changed", "dom0-b": "ok", "dom0-c": "ok"}
    assert re.search(r"fatal: \[dom0-c\].*exit 3 \(incomplete.*c-down: unreachable", run.output)
    timer = run.task_results()["xenaudit : Enable and start the timer"]
    assert set(timer.values()) == {"skipping"}  # no systemd in a stand-in

    fleet = ansible_fleet.latest()
    assert fleet.parent == ansible_fleet.fleet_root
    doc = fleet_json(fleet)
    assert [d["hosts"] for d in doc["dom0s"]] == [["dom0-a"], ["dom0-b"], ["dom0-c"]]
    assert doc["missing"] == [
        {
            "name": "dom0-d",
            "note": "no result from Ansible: unreachable, or failed before its audit ran",
        }
    ]
    by_host = {d["hosts"][0]: d for d in doc["dom0s"]}
    assert by_host["dom0-c"]["incomplete"] is True
    assert any(e.startswith("c-down: unreachable") for e in by_host["dom0-c"]["errors"])
    assert not by_host["dom0-a"]["incomplete"] and not by_host["dom0-b"]["incomplete"]
    assert by_host["dom0-b"]["actions"] == 0
    rows = {(r["host"], r["domain"]): r for r in doc["actions"] if r["kind"] == "resize"}
    assert set(rows) == {("dom0-a", "a-ref"), ("dom0-c", "c-ref")}
    unread = [r for r in doc["actions"] if r["kind"] == "unread"]
    assert [(r["host"], r["domain"]) for r in unread] == [("dom0-c", "c-down")]
    for row in rows.values():
        assert row["change"].startswith("memory 512 → ")
        assert (fleet / row["dom0"] / row["patch"]).is_file()
        page, anchor = row["link"].split("#")
        assert f'id="{anchor}"' in (fleet / page).read_text()
    page = (fleet / "fleet.html").read_text()
    assert "dom0-d</bdi></strong>: no result from Ansible: unreachable" in page
    record = json.loads((fleet / "ansible-run.json").read_text())
    assert {h: (r or {}).get("audit_rc") for h, r in record.items()} == {
        "dom0-a": 1,
        "dom0-b": 0,
        "dom0-c": 3,
        "dom0-d": None,
    }
    assert all(record[h]["audit_seconds"] > 0 for h in ("dom0-a", "dom0-b", "dom0-c"))
    # The fleet's metrics went to the controller's node_exporter folder.
    published = fleet.parent.parent / "textfile" / "xenaudit-fleet.prom"
    assert published.read_bytes() == (fleet / "fleet.prom").read_bytes()
    assert 'xenaudit_fleet_dom0_missing{dom0="dom0-d"} 1' in published.read_text()
    # The fetched copies were merged and removed; only the fleet runs remain.
    assert sorted(p.name for p in ansible_fleet.fleet_root.iterdir()) == [fleet.name, "latest"]


def test_each_dom0_got_its_own_installation(ansible_fleet: AnsibleFleet) -> None:
    for name in ("dom0-a", "dom0-b", "dom0-c"):
        dom0 = ansible_fleet.dom0s.dom0(name)
        inventory = load_inventory(dom0.path("/srv/etc-xenaudit/inventory.toml"))
        assert [h.name for h in inventory.hypervisors] == [name]
        assert set(inventory.domains) == {g.name for g in dom0.plan.guests}
        assert inventory.ssh.own_known_hosts == "/srv/var-lib-xenaudit/known_hosts"
        service = dom0.path("/srv/systemd/xenaudit.service").read_text()
        assert "ExecStart=/opt/xenaudit/bin/xenaudit-nightly" in service
        assert "OnCalendar=*-*-* 02:30:00" in dom0.path("/srv/systemd/xenaudit.timer").read_text()
        reports = dom0.path("/srv/var-lib-xenaudit/reports")
        latest = (reports / "latest").readlink()
        assert str(latest).startswith("/srv/var-lib-xenaudit/reports/20")
        assert (reports / latest.name / "report.html").is_file()
        prom = dom0.path("/srv/node-exporter/xenaudit.prom").read_text()
        assert f'xenaudit_host_read_ok{{host="{name}"}} 1' in prom
        assert dom0.path("/opt/xenaudit/bin/xenaudit").is_file()
    # Everything stayed inside the stand-ins' private mounts.
    assert not Path("/opt/xenaudit").exists() and not Path("/srv/etc-xenaudit").exists()


def test_second_run_changes_nothing_on_the_dom0s(ansible_fleet: AnsibleFleet) -> None:
    """Install and configuration are idempotent, fewer forks work, the last report is fetched."""
    run = ansible_fleet.play("audit.yml", "--forks", "2", "-e", "xenaudit_run_now=false")
    recap = run.recap()
    assert {h: recap[h]["failed"] for h in ("dom0-a", "dom0-b", "dom0-c")} == {
        "dom0-a": 0,
        "dom0-b": 0,
        "dom0-c": 0,
    }, run.output
    results = run.task_results()
    for task in ROLE_SETUP_TASKS:
        statuses = results[f"xenaudit : {task}"]
        assert statuses.pop("dom0-d", "fatal") == "fatal"  # still unreachable
        assert set(statuses.values()) == {"ok"}, (task, statuses)
    assert set(results["xenaudit : Run the audit"].values()) == {"skipping"}
    doc = fleet_json(ansible_fleet.latest())
    assert len(doc["dom0s"]) == 3 and [m["name"] for m in doc["missing"]] == ["dom0-d"]


def test_apply_playbook_checks_applies_and_is_idempotent(ansible_fleet: AnsibleFleet) -> None:
    reviewed = ansible_fleet.latest()
    dom0_a, dom0_c = ansible_fleet.dom0s.dom0("dom0-a"), ansible_fleet.dom0s.dom0("dom0-c")
    a_ref, a_ok, c_ref = (
        dom0_a.path("/etc/xen/a-ref.cfg"),
        dom0_a.path("/etc/xen/a-ok.cfg"),
        dom0_c.path("/etc/xen/c-ref.cfg"),
    )
    before = {p: p.read_bytes() for p in (a_ref, a_ok, c_ref)}
    args = [
        "--limit",
        "dom0-a,dom0-c",
        "-e",
        json.dumps({"xenaudit_fleet": str(reviewed), "xenaudit_apply_domains": ["a-ref"]}),
    ]

    check = ansible_fleet.play("apply.yml", "--check", *args)
    assert check.returncode == 0, check.output
    assert "dry run: not applied" in check.output and "+memory = 576" in check.output
    assert {p: p.read_bytes() for p in before} == before
    assert "nothing to apply here (a-ref)" in check.output  # dom0-c has no a-ref

    applied = ansible_fleet.play("apply.yml", *args)
    assert applied.returncode == 0, applied.output
    assert applied.task_results()["xenaudit : Run xenaudit apply"] == {
        "dom0-a": "changed",
        "dom0-c": "skipping",
    }
    assert "memory = 576" in a_ref.read_text() and "maxmem = 768" in a_ref.read_text()
    assert a_ok.read_bytes() == before[a_ok] and c_ref.read_bytes() == before[c_ref]
    assert len(list(a_ref.parent.glob("a-ref.cfg.xenaudit-*.bak"))) == 1

    again = ansible_fleet.play("apply.yml", *args)
    assert again.returncode == 0, again.output
    assert again.task_results()["xenaudit : Run xenaudit apply"] == {
        "dom0-a": "ok",
        "dom0-c": "skipping",
    }
    assert "already applied" in again.output
    assert len(list(a_ref.parent.glob("a-ref.cfg.xenaudit-*.bak"))) == 1


def test_apply_playbook_wants_the_reviewed_fleet_named(ansible_fleet: AnsibleFleet) -> None:
    run = ansible_fleet.play("apply.yml", "--limit", "dom0-b")
    assert run.returncode != 0
    assert "give the fleet folder you reviewed" in run.output


def test_role_and_playbooks_pass_ansible_lint(tmp_path: Path) -> None:
    lint = shutil.which("ansible-lint", path=ansible_env(tmp_path)["PATH"])
    if lint is None:
        pytest.skip("ansible-lint is not installed")
    done = subprocess.run(
        [lint, "--offline", "--profile", "production", "--nocolor"],
        cwd=PLAYBOOKS,
        env=ansible_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout + done.stderr
