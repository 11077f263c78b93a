"""--live: the right xl commands, in the right order, in MiB, and none where it is unsafe."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_apply_support import (
    Guest,
    cli_command,
    log_records,
    make_report,
    run_apply,
    subprocess_env,
)
from xenaudit.apply import reviewed
from xenaudit.apply.engine import Applier, ApplyOptions
from xenaudit.apply.interface import HostEntry, LiveMemory, LiveStep, ProposedChange
from xenaudit.apply.live_libvirt import LibvirtLiveChanger
from xenaudit.apply.live_plan import plan_live
from xenaudit.apply.livehosts import from_inventory
from xenaudit.inventory.interface import HypervisorSpec, Inventory
from xenaudit.xlcfg import parse

#: Logs its arguments; answers `list -l NAME` (JSON, as xl prints it) from a
#: "name domid uuid" file; fails the subcommand named in FAKE_XL_FAIL; records
#: whether apply had already printed the command (its stdout file) when it ran.
FAKE_XL = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_XL_LOG"
if [ -n "$FAKE_XL_STDOUT" ] && grep -qF -- "live: $0 $*" "$FAKE_XL_STDOUT"; then
    printf 'printed before: %s\\n' "$*" >> "$FAKE_XL_LOG"
fi
if [ "$1" = list ]; then
    line=$(awk -v n="$3" '$1 == n' "$FAKE_XL_DOMIDS")
    if [ -z "$line" ]; then
        echo "Error: Domain '$3' does not exist." >&2
        exit 1
    fi
    echo "$line" | awk '{ printf "[{\\"domid\\": %s, \\"config\\": {\\"c_info\\": ", $2;
                          printf "{\\"name\\": \\"%s\\", \\"uuid\\": \\"%s\\"}}}]\\n", $1, $3 }'
    exit 0
fi
if [ "$1" = "$FAKE_XL_FAIL" ]; then
    echo "libxl: error: cannot set memory" >&2
    exit 1
fi
exit 0
"""


UUID = "6f1c0003-2a41-4e3b-9d5c-000000000003"


class FakeXl:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        bindir = tmp_path / "bin"
        bindir.mkdir()
        self.path = bindir / "xl"
        self.path.write_text(FAKE_XL)
        self.path.chmod(0o755)
        self.log = tmp_path / "xl.log"
        self.domids = tmp_path / "domids"
        self.domids.write_text("")
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_XL_LOG", str(self.log))
        monkeypatch.setenv("FAKE_XL_DOMIDS", str(self.domids))
        monkeypatch.delenv("FAKE_XL_FAIL", raising=False)
        monkeypatch.delenv("FAKE_XL_STDOUT", raising=False)

    def running(self, name: str, domid: int, uuid: str = UUID) -> None:
        with self.domids.open("a") as handle:
            handle.write(f"{name} {domid} {uuid}\n")

    def calls(self) -> list[str]:
        if not self.log.exists():
            return []
        return [line for line in self.log.read_text().splitlines() if line]

    def memory_calls(self) -> list[str]:
        return [c for c in self.calls() if c.startswith("mem-")]


@pytest.fixture
def xl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeXl:
    return FakeXl(tmp_path, monkeypatch)


@pytest.fixture
def zabbix(corpus: Path) -> bytes:
    return (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes()


def inventory(tmp_path: Path, body: str = 'name = "dom0a"\nbackend = "xl"\n') -> Path:
    """The admin's inventory: how apply reaches each host live (here: dom0a with local xl)."""
    path = tmp_path / "inventory.toml"
    path.write_text(f"[[hypervisor]]\n{body}")
    return path


def apply_live(tmp_path: Path, guests: list[Guest], hosts: list[dict] | None = None) -> int:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    make_report(tmp_path / "report", root, guests, hosts=hosts)
    return run_apply(
        tmp_path / "report", "--root", root, "--yes", "--live", "-i", inventory(tmp_path)
    )


def test_growing_maxmem_runs_mem_max_before_mem_set_in_mib(
    tmp_path: Path, xl: FakeXl, zabbix: bytes
) -> None:
    xl.running("web", 7)
    guest = Guest("web", zabbix, 768, 1536, live_mib=(512, 1024))
    assert apply_live(tmp_path, [guest]) == 0
    assert xl.calls() == ["list -l web", "mem-max web 1536m", "mem-set web 768m"]
    cfg = parse((tmp_path / "root/etc/xen/web.cfg").read_bytes(), "web")
    assert (cfg.memory_mib, cfg.maxmem_mib) == (768, 1536)
    live = [r for r in log_records(tmp_path / "root") if r["event"] == "live"]
    assert [(r["kind"], r["memory_mib"], r["status"]) for r in live] == [
        ("max", 1536, "done"),
        ("target", 768, "done"),
    ]


def test_an_increase_within_the_ceiling_only_sets_the_target(
    tmp_path: Path, xl: FakeXl, zabbix: bytes
) -> None:
    xl.running("web", 7)
    guest = Guest("web", zabbix, 768, 1024, live_mib=(512, 1024))
    assert apply_live(tmp_path, [guest]) == 0
    assert xl.memory_calls() == ["mem-set web 768m"]


def test_a_target_above_the_boot_maximum_stops_at_it(
    tmp_path: Path, xl: FakeXl, zabbix: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    xl.running("web", 7)
    guest = Guest("web", zabbix, 1024, 1024, live_mib=(512, 640))
    assert apply_live(tmp_path, [guest]) == 0
    assert xl.memory_calls() == ["mem-max web 1024m", "mem-set web 640m"]
    assert "next boot" in capsys.readouterr().out


def test_hvm_without_a_balloon_driver_is_never_changed_live(
    tmp_path: Path, xl: FakeXl, zabbix: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    xl.running("win", 9)
    guest = Guest(
        "win", zabbix, 768, 1024, guest_type="hvm", live_change_safe=False, live_mib=(512, 512)
    )
    assert apply_live(tmp_path, [guest]) == 0
    assert xl.calls() == []
    assert "balloon driver" in capsys.readouterr().out
    # The cfg change itself went through.
    assert parse((tmp_path / "root/etc/xen/win.cfg").read_bytes(), "w").memory_mib == 768


def test_a_decrease_to_or_below_the_need_is_never_made_live(
    tmp_path: Path, xl: FakeXl, zabbix: bytes
) -> None:
    xl.running("db", 7)
    guest = Guest("db", zabbix, 512, 1024, change="decrease", live_mib=(1024, 1024), need_mib=512)
    assert apply_live(tmp_path, [guest]) == 0
    assert xl.memory_calls() == []


def test_a_decrease_that_stays_above_the_need_sets_only_the_target(
    tmp_path: Path, xl: FakeXl, zabbix: bytes
) -> None:
    xl.running("db", 7)
    guest = Guest("db", zabbix, 768, 768, change="decrease", live_mib=(1024, 1024), need_mib=400)
    assert apply_live(tmp_path, [guest]) == 0
    assert xl.memory_calls() == ["mem-set db 768m"]


def test_a_decrease_without_a_measured_need_is_not_made_live(
    tmp_path: Path, xl: FakeXl, zabbix: bytes
) -> None:
    xl.running("db", 7)
    guest = Guest("db", zabbix, 768, 768, change="decrease", live_mib=(1024, 1024), need_mib=None)
    assert apply_live(tmp_path, [guest]) == 0
    assert xl.memory_calls() == []


@pytest.mark.parametrize("state", ["shutoff", "paused", "crashed"])
def test_domains_that_are_not_running_are_left_alone(
    tmp_path: Path, xl: FakeXl, zabbix: bytes, state: str
) -> None:
    xl.running("web", 7)
    assert apply_live(tmp_path, [Guest("web", zabbix, 768, 768, state=state)]) == 0
    assert xl.calls() == []


def test_a_domain_that_restarted_since_the_audit_is_not_changed(
    tmp_path: Path, xl: FakeXl, zabbix: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    xl.running("web", 12)
    guest = Guest("web", zabbix, 768, 768, domid=7, live_mib=(512, 1024))
    assert apply_live(tmp_path, [guest]) == 1
    assert xl.calls() == ["list -l web"]
    assert "restarted" in capsys.readouterr().out


def test_a_same_named_domain_with_another_uuid_is_not_changed(
    tmp_path: Path, xl: FakeXl, zabbix: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    # Same name and even the same domid, but a different domain (another Dom0's report).
    xl.running("web", 7, uuid="00000000-0000-4000-8000-000000000001")
    guest = Guest("web", zabbix, 768, 768, domid=7, uuid=UUID, live_mib=(512, 1024))
    assert apply_live(tmp_path, [guest]) == 1
    assert xl.memory_calls() == []
    assert "another domain" in capsys.readouterr().out


def test_a_domain_not_running_here_is_not_changed(
    tmp_path: Path, xl: FakeXl, zabbix: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    guest = Guest("web", zabbix, 768, 768, domid=7, uuid=UUID, live_mib=(512, 1024))
    assert apply_live(tmp_path, [guest]) == 1
    assert xl.calls() == ["list -l web"]
    assert "does not exist" in capsys.readouterr().out


def test_a_failed_mem_max_stops_before_mem_set(
    tmp_path: Path, xl: FakeXl, zabbix: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    xl.running("web", 7)
    monkeypatch.setenv("FAKE_XL_FAIL", "mem-max")
    guest = Guest("web", zabbix, 768, 1536, live_mib=(512, 1024))
    assert apply_live(tmp_path, [guest]) == 1
    assert xl.memory_calls() == ["mem-max web 1536m"]
    live = [r for r in log_records(tmp_path / "root") if r["event"] == "live"]
    assert live[-1]["status"] == "failed" and "cannot set memory" in live[-1]["detail"]


def test_nothing_runs_live_for_a_skipped_cfg_or_without_live(
    tmp_path: Path, xl: FakeXl, zabbix: bytes
) -> None:
    xl.running("web", 7)
    root = tmp_path / "root"
    root.mkdir()
    make_report(tmp_path / "report", root, [Guest("web", zabbix, 768, 1024)])
    assert run_apply(tmp_path / "report", "--root", root, "--yes") == 0
    assert xl.calls() == []
    # Applied once already: nothing to write, and --live must not act on it either.
    inv = inventory(tmp_path)
    assert run_apply(tmp_path / "report", "--root", root, "--yes", "--live", "-i", inv) == 0
    assert xl.calls() == []
    # Changed by someone else since the audit: stale, skipped, nothing live.
    cfg = root / "etc/xen/web.cfg"
    cfg.write_bytes(zabbix.replace(b"memory", b"# by hand\nmemory", 1))
    assert run_apply(tmp_path / "report", "--root", root, "--yes", "--live", "-i", inv) == 1
    assert xl.calls() == []


@pytest.mark.parametrize(
    "host",
    [
        {"name": "dom0a", "backend": "xl", "ssh_host": "dom0a.example.org"},
        {"name": "dom0a", "backend": "snapshot"},
        {"name": "other", "backend": "xl"},
    ],
)
def test_hosts_apply_cannot_reach_with_local_xl_are_left_alone(
    tmp_path: Path, xl: FakeXl, zabbix: bytes, host: dict
) -> None:
    xl.running("web", 7)
    assert apply_live(tmp_path, [Guest("web", zabbix, 768, 768)], hosts=[host]) == 0
    assert xl.calls() == []


def test_every_live_command_is_printed_before_it_runs(
    tmp_path: Path, xl: FakeXl, zabbix: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    xl.running("web", 7)
    root = tmp_path / "root"
    root.mkdir()
    make_report(tmp_path / "report", root, [Guest("web", zabbix, 768, 1536, live_mib=(512, 1024))])
    stdout = tmp_path / "apply.out"
    monkeypatch.setenv("FAKE_XL_STDOUT", str(stdout))
    with stdout.open("wb") as out:
        done = subprocess.run(
            [
                *cli_command(),
                str(tmp_path / "report"),
                "--root",
                str(root),
                "--yes",
                "--live",
                "-i",
                str(inventory(tmp_path)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            env=subprocess_env(),
            timeout=120,
        )
    assert done.returncode == 0
    assert xl.calls() == [
        "list -l web",
        "mem-max web 1536m",
        "printed before: mem-max web 1536m",
        "mem-set web 768m",
        "printed before: mem-set web 768m",
    ]


# -- the plan itself ---------------------------------------------------------------


def change(**overrides: object) -> ProposedChange:
    values: dict[str, object] = {
        "domain": "web",
        "host": "h",
        "state": "running",
        "guest_type": "pv",
        "domid": 1,
        "uuid": None,
        "cfg_path": "/etc/xen/web.cfg",
        "cfg_sha256": "0" * 64,
        "cfg_memory_mib": 512,
        "cfg_maxmem_mib": 512,
        "memory_mib": 768,
        "maxmem_mib": 768,
        "change": "increase",
        "fits": True,
        "not_fitting_reason": None,
        "live_change_safe": True,
        "need_mib": 300,
        "live": LiveMemory(target_kib=512 * 1024, max_kib=1024 * 1024, current_kib=None),
        "patch_relpath": "patches/web.cfg.diff",
    }
    values.update(overrides)
    return ProposedChange(**values)  # type: ignore[arg-type]


XL_HOST = HostEntry(name="h", backend="xl")


@pytest.mark.parametrize(
    ("overrides", "steps"),
    [
        ({}, [("target", 768)]),
        ({"maxmem_mib": 2048}, [("max", 2048), ("target", 768)]),
        ({"state": "blocked"}, [("target", 768)]),
        ({"guest_type": "hvm", "live_change_safe": True}, [("target", 768)]),
        ({"guest_type": "hvm", "live_change_safe": False}, []),
        ({"guest_type": "pv", "live_change_safe": False}, []),
        ({"live": None}, []),
        ({"live": LiveMemory(None, 1024 * 1024, None)}, []),
        ({"memory_mib": 512}, []),
        ({"memory_mib": 400, "need_mib": 300}, [("target", 400)]),
        ({"memory_mib": 400, "need_mib": 400}, []),
        ({"memory_mib": 2048, "maxmem_mib": 2048}, [("max", 2048), ("target", 1024)]),
        # Live ceiling unknown: the old cfg's maxmem (or memory) stands in for it.
        (
            {"live": LiveMemory(512 * 1024, None, None), "maxmem_mib": 1024},
            [("max", 1024), ("target", 768)],
        ),
    ],
)
def test_plan_live_rules(overrides: dict, steps: list[tuple[str, int]]) -> None:
    plan = plan_live(change(**overrides), XL_HOST)
    assert [(s.kind, s.memory_mib) for s in plan.steps] == steps
    if not steps:
        assert plan.notes


def test_plan_live_needs_a_uri_for_libvirt() -> None:
    assert plan_live(change(), HostEntry("h", "libvirt", uri=None)).steps == ()
    assert plan_live(change(), HostEntry("h", "libvirt", uri="test:///default")).steps == (
        LiveStep("target", 768),
    )


# -- libvirt -----------------------------------------------------------------------

NODE_XML = """<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>2</active>
    <nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads></cpu>
  <memory>16777216</memory>
  <domain type='xen'>
    <name>g1</name>
    <uuid>11111111-1111-1111-1111-111111111111</uuid>
    <memory unit='KiB'>786432</memory>
    <currentMemory unit='KiB'>524288</currentMemory>
    <vcpu>1</vcpu>
    <os><type>xen</type><kernel>/boot/vmlinuz</kernel></os>
    <devices><memballoon model='xen'/></devices>
  </domain>
</node>
"""


@pytest.fixture
def libvirt_conn(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    libvirt = pytest.importorskip("libvirt")
    node = tmp_path / "node.xml"
    node.write_text(NODE_XML)
    conn = libvirt.open(f"test://{node}")
    yield conn, f"test://{node}"
    conn.close()


def libvirt_apply(tmp_path: Path, conn: object, uri: str, guest: Guest) -> tuple[int, list, str]:
    root = tmp_path / "root"
    root.mkdir()
    report_dir = tmp_path / "report"
    make_report(
        report_dir, root, [guest], hosts=[{"name": "dom0a", "backend": "libvirt", "uri": uri}]
    )
    out = io.StringIO()
    report = reviewed.load(report_dir)
    admin = Inventory(path="inventory.toml", hypervisors=(HypervisorSpec("dom0a", "libvirt", uri),))
    applier = Applier(
        report,
        ApplyOptions(
            root=root, live=True, live_hosts=from_inventory(admin, report.hosts, ["dom0a"])
        ),
        confirm=lambda question: True,
        out=out,
        live_factory=lambda host: LibvirtLiveChanger(host.uri or "", connect=lambda _: conn),
    )
    summary = applier.run()
    return summary.exit_code, list(summary.outcomes[0].live), out.getvalue()


def test_libvirt_sets_the_live_balloon_target(
    tmp_path: Path, libvirt_conn: tuple[Any, str], zabbix: bytes
) -> None:
    conn, uri = libvirt_conn
    dom = conn.lookupByName("g1")
    guest = Guest(
        "g1", zabbix, 640, 768, domid=dom.ID(), uuid=dom.UUIDString(), live_mib=(512, 768)
    )
    code, results, _ = libvirt_apply(tmp_path, conn, uri, guest)
    assert code == 0
    assert [(r.step.kind, r.status) for r in results] == [("target", "done")]
    assert dom.info()[2] == 640 * 1024


def test_libvirt_ceiling_refused_by_the_driver_is_reported_not_fatal(
    tmp_path: Path, libvirt_conn: tuple[Any, str], zabbix: bytes
) -> None:
    conn, uri = libvirt_conn
    dom = conn.lookupByName("g1")
    guest = Guest(
        "g1", zabbix, 700, 1024, domid=dom.ID(), uuid=dom.UUIDString(), live_mib=(512, 768)
    )
    code, results, out = libvirt_apply(tmp_path, conn, uri, guest)
    assert [(r.step.kind, r.status) for r in results] == [
        ("max", "unsupported"),
        ("target", "done"),
    ]
    assert code == 0
    assert dom.info()[2] == 700 * 1024
    assert "MEM_MAXIMUM" in out


def test_libvirt_domain_with_another_uuid_is_not_touched(
    tmp_path: Path, libvirt_conn: tuple[Any, str], zabbix: bytes
) -> None:
    conn, uri = libvirt_conn
    dom = conn.lookupByName("g1")
    other_uuid = "22222222-2222-2222-2222-222222222222"
    guest = Guest("g1", zabbix, 640, 768, domid=dom.ID(), uuid=other_uuid, live_mib=(512, 768))
    code, results, out = libvirt_apply(tmp_path, conn, uri, guest)
    assert code == 1 and results == []
    assert "uuid" in out
    assert dom.info()[2] == 512 * 1024
