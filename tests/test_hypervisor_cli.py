"""`xenaudit domains` against the fake xl and libvirt's test driver."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tests.fake_xl.support import copy_recording, use_fake_xl
from xenaudit.hypervisor.cli import add_parser, handle, main

FLEET = Path(__file__).resolve().parent / "libvirt_nodes" / "xen_fleet.xml"
HOST_KEYS = {"name", "total_memory_kib", "free_memory_kib", "error", "domains"}
DOMAIN_KEYS = {
    "name",
    "domid",
    "state",
    "guest_type",
    "target_kib",
    "max_kib",
    "vcpus",
    "cfg_path",
    "drift",
}
MIB = 1024


@pytest.fixture
def recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    recorded = copy_recording("host_a", tmp_path)
    use_fake_xl(monkeypatch, recorded)
    return recorded


def _inventory(tmp_path: Path, *tables: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text("\n".join(tables))
    return path


def _xl_host(name: str, cfg_dir: Path, xl_command: str = "xl") -> str:
    return (
        f'[[hypervisor]]\nname = "{name}"\nbackend = "xl"\n'
        f'cfg_dir = "{cfg_dir}"\nxl_command = "{xl_command}"\n'
    )


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_contract_with_the_fake_xl(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_dir = recording / "etc-xen"
    inventory = _inventory(tmp_path, _xl_host("dom0a", cfg_dir))
    code, out, _ = _run(capsys, ["-i", str(inventory), "--json"])
    assert code == 0
    document = json.loads(out)
    assert set(document) == {"hosts"}
    (host,) = document["hosts"]
    assert set(host) == HOST_KEYS
    assert host["name"] == "dom0a" and host["error"] is None
    assert host["total_memory_kib"] == 16255 * MIB  # xl info total_memory, MiB
    for domain in host["domains"]:
        assert set(domain) == DOMAIN_KEYS
        assert domain["guest_type"] in ("pv", "pvh", "hvm", None)
        assert isinstance(domain["drift"], list)
    by_name = {d["name"]: d for d in host["domains"]}
    assert "Domain-0" not in by_name  # the host's own row is not a guest
    assert by_name["web"]["cfg_path"] == str(cfg_dir / "web.cfg")
    assert by_name["web"]["drift"] == []
    assert by_name["pvhguest"]["cfg_path"] == str(cfg_dir / "pvh-guest.cfg")
    # db.cfg says memory = 1024 while the live target is 768 MiB: an xl mem-set.
    (db_drift,) = by_name["db"]["drift"]
    assert "768 MiB" in db_drift and "1024 MiB" in db_drift and "mem-set" in db_drift
    # winhvm.cfg says maxmem = 2048 while the live maxmem is 4096 MiB.
    assert any("maxmem" in item and "not applied" in item for item in by_name["winhvm"]["drift"])


def test_json_with_the_libvirt_test_driver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("libvirt")
    code, out, _ = _run(capsys, ["--backend", "libvirt", "--uri", f"test://{FLEET}", "--json"])
    assert code == 0
    (host,) = json.loads(out)["hosts"]
    assert set(host) == HOST_KEYS
    assert host["free_memory_kib"] is None  # the test driver's 0 is not believed
    by_name = {d["name"]: d for d in host["domains"]}
    assert set(by_name) == {"web", "winhvm", "pvhguest", "batch", "archive"}
    assert by_name["archive"]["state"] == "shutoff" and by_name["archive"]["domid"] is None
    assert by_name["batch"]["state"] == "paused"
    assert by_name["pvhguest"]["guest_type"] == "pvh"
    assert all(set(d) == DOMAIN_KEYS for d in host["domains"])


def test_one_unreadable_host_exits_3_and_still_prints_the_other(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = _inventory(
        tmp_path,
        _xl_host("dom0a", recording / "etc-xen"),
        _xl_host("dom0b", recording / "etc-xen", xl_command=str(tmp_path / "no-xl")),
    )
    code, out, err = _run(capsys, ["-i", str(inventory), "--json"])
    assert code == 3
    hosts = {h["name"]: h for h in json.loads(out)["hosts"]}
    assert hosts["dom0a"]["error"] is None and len(hosts["dom0a"]["domains"]) == 4
    assert hosts["dom0b"]["domains"] == [] and "set xl_command" in hosts["dom0b"]["error"]
    assert "dom0b" in err


def test_text_table(recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = _inventory(tmp_path, _xl_host("dom0a", recording / "etc-xen"))
    code, out, _ = _run(capsys, ["-i", str(inventory)])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("== dom0a (xl): total 16255 MiB")
    header = next(line for line in lines if line.startswith("NAME"))
    assert header.split() == ["NAME", "ID", "STATE", "TYPE", "TARGET", "MAX", "VCPUS", "CFG"]
    web = next(line for line in lines if line.startswith("web "))
    assert web.split()[:7] == ["web", "3", "blocked", "pv", "512", "768", "2"]
    db_row = next(i for i, line in enumerate(lines) if line.startswith("db "))
    assert lines[db_row + 1].strip().startswith("drift: live target 768 MiB")


def test_hostile_domain_names_are_escaped_in_the_table(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = recording / "list.out"
    listing.write_text(listing.read_text().replace("web     ", "w\x1b[2Jb   ", 1))
    inventory = _inventory(tmp_path, _xl_host("dom0a", recording / "etc-xen"))
    code, out, _ = _run(capsys, ["-i", str(inventory)])
    assert code == 0
    assert "\x1b" not in out and "w\\x1b[2Jb" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--uri", "xen:///system"],
        ["--backend", "xl", "--uri", "xen:///system"],
        ["-i", "inventory.toml", "--backend", "xl"],
        ["--backend", "hyperv"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, argv)
    assert code == 2 and out == "" and err


def test_bad_inventory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, ["-i", str(tmp_path / "missing.toml")])
    assert code == 2 and "missing.toml" in err
    broken = _inventory(tmp_path, '[[hypervisor]]\nname = "a"\nbakend = "xl"\n')
    code, _, err = _run(capsys, ["-i", str(broken)])
    assert code == 2 and "bakend" in err


def test_add_parser_wires_the_subcommand(recording: Path, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="xenaudit")
    add_parser(parser.add_subparsers(dest="command"))
    inventory = _inventory(tmp_path, _xl_host("dom0a", recording / "etc-xen"))
    args = parser.parse_args(["domains", "-i", str(inventory), "--json"])
    assert args.func is handle
    assert args.func(args) == 0
