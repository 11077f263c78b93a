"""The whole audit against real parts: sshd stand-in guests, libvirt's test driver, a fake xl.

Two Dom0s in one inventory: one read with `xl` (a fake binary on PATH that
replays real output formats), one with libvirt's test driver. Their guests are
real OpenSSH servers on loopback, one of which presents a host key we do not
know and one of which is down.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fake_xl.support import use_fake_xl
from tests.localssh import free_port
from tests.standin import content
from tests.standin.dom0s import xl_recordings as standin_xl_recordings
from tests.standin.fleet import Fleet, GuestSpec
from xenaudit.cli import main

pytestmark = pytest.mark.sshd

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


def xl_recordings(folder: Path, domains: list[tuple[str, int, int]]) -> Path:
    """`xl list`, `xl list -l` and `xl info` of an 8 GiB Dom0 named dom0-xl."""
    return standin_xl_recordings(
        folder, "dom0-xl", domains, total_mib=8191, free_mib=2047, dom0_mib=1024
    )


def libvirt_node(path: Path, running: str, shutoff: str) -> Path:
    path.write_text(
        f"""<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>4</active>
    <nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>2</threads></cpu>
  <memory>8388608</memory>
  <domain type='xen'>
    <name>{running}</name>
    <uuid>11111111-1111-4111-8111-111111111111</uuid>
    <memory unit='KiB'>1048576</memory>
    <currentMemory unit='KiB'>1048576</currentMemory>
    <vcpu>1</vcpu>
    <os><type>xen</type><kernel>/boot/vmlinuz</kernel></os>
    <devices><memballoon model='xen'/></devices>
  </domain>
  <domain type='xen' xmlns:test='{TEST_NS}'>
    <name>{shutoff}</name>
    <test:runstate>5</test:runstate>
    <uuid>22222222-2222-4222-8222-222222222222</uuid>
    <memory unit='KiB'>2097152</memory>
    <currentMemory unit='KiB'>2097152</currentMemory>
    <vcpu>2</vcpu>
    <os><type>xen</type><kernel>/boot/vmlinuz</kernel></os>
  </domain>
</node>
"""
    )
    return path


def cfg(folder: Path, name: str, memory_mib: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.cfg").write_text(
        f'# {name}\nname = "{name}"\nbootloader = "pygrub"\n\nmemory = {memory_mib}\nvcpus = 1\n'
        f"disk = [ 'phy:/dev/vg/{name},xvda,w' ]\n"
    )


@pytest.fixture
def two_dom0s(
    tmp_path: Path, standin_fleet: Callable[..., Fleet], monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Fleet, Path]:
    fleet = standin_fleet(
        GuestSpec("alpha"),  # the reference case: order-0 GFP_ATOMIC failure, 512 MiB
        GuestSpec(
            "beta",
            kernlog="[    0.000000] Linux version 6.1.0\n",
            meminfo=content.meminfo(total_kib=1_004_000, free_kib=400_000, available_kib=700_000),
        ),
        GuestSpec("delta"),  # will present a host key we do not know
        GuestSpec(
            "lv-web",
            kernlog="[    0.000000] Linux version 6.1.0\n",
            meminfo=content.meminfo(total_kib=1_004_000, free_kib=300_000, available_kib=600_000),
        ),
    )
    known = fleet.write_known_hosts(
        tmp_path / "known_hosts",
        [fleet.guest("alpha"), fleet.guest("beta"), fleet.guest("lv-web")],
    )
    down_port = free_port()
    use_fake_xl(
        monkeypatch,
        xl_recordings(
            tmp_path / "xl",
            [("alpha", 3, 512), ("beta", 4, 1024), ("gamma", 5, 768), ("delta", 6, 512)],
        ),
    )
    etc_xl, etc_lv = tmp_path / "etc-xl", tmp_path / "etc-lv"
    for name, memory in (("alpha", 512), ("beta", 1024), ("gamma", 768), ("delta", 512)):
        cfg(etc_xl, name, memory)
    cfg(etc_lv, "lv-web", 1024)
    node = libvirt_node(tmp_path / "node.xml", "lv-web", "lv-off")
    (tmp_path / "ssh_config").write_text("")
    overrides = "".join(
        f'[domains.{g.name}]\nssh_host = "127.0.0.1"\nssh_port = {g.port}\n' for g in fleet.guests
    )
    overrides += f'[domains.gamma]\nssh_host = "127.0.0.1"\nssh_port = {down_port}\n'
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        f"""state_dir = "{tmp_path / "state"}"

[[hypervisor]]
name = "dom0-xl"
backend = "xl"
cfg_dir = "{etc_xl}"

[[hypervisor]]
name = "dom0-lv"
backend = "libvirt"
uri = "test://{node}"
cfg_dir = "{etc_lv}"

[ssh]
identity_file = "{fleet.client_key}"
known_hosts = "{known}"
own_known_hosts = "{tmp_path / "own_known_hosts"}"
ssh_config = "{tmp_path / "ssh_config"}"
connect_timeout_s = 5.0
guest_timeout_s = 30.0
retries = 0

{overrides}"""
    )
    return inventory, fleet, tmp_path


def test_audit_over_real_parts(two_dom0s: tuple[Path, Fleet, Path]) -> None:
    inventory, fleet, tmp_path = two_dom0s
    out = tmp_path / "out"
    code = main(["audit", "-i", str(inventory), "-o", str(out), "-q"])
    assert code == 3  # gamma is down and delta's key is refused: incomplete
    report = json.loads((out / "report.json").read_text())
    by_name = {d["name"]: d for d in report["domains"]}
    assert set(by_name) == {"alpha", "beta", "gamma", "delta", "lv-web", "lv-off"}
    assert {h["name"] for h in report["hosts"]} == {"dom0-xl", "dom0-lv"}
    assert {d["host"] for d in report["domains"] if d["name"].startswith("lv-")} == {"dom0-lv"}

    alpha = by_name["alpha"]
    assert alpha["collection"]["status"] == "ok"
    assert alpha["meminfo_kib"]["MemTotal"] == 505_416
    kinds = [e["kind"] for e in alpha["events"]]
    assert "page_alloc_failure" in kinds
    assert alpha["recommendation"]["memory_mib"] > 512
    assert alpha["patch"] == "patches/alpha.cfg.diff"

    delta = by_name["delta"]
    assert delta["collection"]["status"] == "host_key_rejected"
    assert fleet.guest("delta").host_key_fingerprint in (delta["collection"]["error"] or "")
    assert delta["recommendation"] is None

    gamma = by_name["gamma"]
    assert gamma["collection"]["status"] == "unreachable"
    assert gamma["config"]["memory_mib"] == 768

    assert by_name["lv-off"]["state"] == "shutoff"
    assert by_name["lv-web"]["collection"]["status"] == "ok"
    assert by_name["lv-web"]["meminfo_kib"]["MemAvailable"] == 600_000

    html = (out / "report.html").read_text()
    for name in by_name:
        assert name in html
    # The guests' own snapshots are on disk for a replay.
    assert (out / "snapshots" / "alpha" / "meminfo").read_text().startswith("MemTotal:")


def test_patch_from_real_run_applies_to_the_cfg(two_dom0s: tuple[Path, Fleet, Path]) -> None:
    inventory, _fleet, tmp_path = two_dom0s
    out = tmp_path / "out"
    main(["audit", "-i", str(inventory), "-o", str(out), "-q", "--format", "json,patches"])
    diff = (out / "patches" / "alpha.cfg.diff").read_text()
    cfg_path = tmp_path / "etc-xl" / "alpha.cfg"
    assert diff.startswith(f"--- a{cfg_path}")
    original = cfg_path.read_bytes()
    if shutil.which("patch") is None:
        pytest.fail("the patch tool is missing; scripts/test.sh installs it")
    subprocess.run(
        ["patch", "-p1"], input=diff, text=True, cwd="/", check=True, capture_output=True
    )
    patched = cfg_path.read_text().splitlines()
    assert "memory = 512" not in patched
    assert any(line.startswith("memory = ") for line in patched)
    untouched = [line for line in original.decode().splitlines() if not line.startswith("memory")]
    assert [line for line in patched if not line.startswith(("memory", "maxmem"))] == untouched


def test_audit_leaves_cfgs_alone(two_dom0s: tuple[Path, Fleet, Path]) -> None:
    inventory, _fleet, tmp_path = two_dom0s
    before = {p: p.read_bytes() for p in (tmp_path / "etc-xl").iterdir()}
    main(["audit", "-i", str(inventory), "-o", str(tmp_path / "out"), "-q"])
    assert {p: p.read_bytes() for p in (tmp_path / "etc-xl").iterdir()} == before
