"""The xm backend end to end: fake `xm`, `xentop` and xenstore tools on PATH, here and over SSH."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_xl.standin_dom0 import StandinDom0, available, standin_dom0
from tests.fake_xl.support import RECORDINGS, copy_recording, use_fake_xl, write_command
from xenaudit.hypervisor.factory import make_source, read_hosts
from xenaudit.hypervisor.interface import HypervisorError
from xenaudit.hypervisor.snapshot import SnapshotSource, save_host_snapshot
from xenaudit.hypervisor.xm import XmSource
from xenaudit.inventory.interface import HypervisorSpec, SshSettings

MIB = 1024


def _spec(recording: Path, **changes: object) -> HypervisorSpec:
    fields: dict[str, object] = {
        "name": "ovm",
        "backend": "xm",
        "cfg_dir": str(recording / "etc-xen"),
    }
    fields.update(changes)
    return HypervisorSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def host_xm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    recording = copy_recording("host_xm", tmp_path)
    use_fake_xl(monkeypatch, recording)
    monkeypatch.setenv("XENAUDIT_FAKE_XL_LOG", str(tmp_path / "calls.log"))
    return recording


def test_reads_a_recorded_xend_dom0(host_xm: Path, tmp_path: Path) -> None:
    view = make_source(_spec(host_xm), SshSettings()).read()
    assert view.backend == "xm" and view.xen_version == "4.4.4OVM"
    assert view.total_memory_kib == 262010 * MIB and view.dom0_mem_kib == 9 * 1024 * MIB
    assert view.autoballoon == "off"  # xend-config.sxp: (enable-dom0-ballooning no)
    pv = next(d for d in view.domains if d.domid == 1)
    assert (pv.guest_type, pv.target_kib, pv.max_kib, pv.current_kib) == (
        "pv",
        2048 * MIB,
        2048 * MIB,
        2097152,
    )
    assert view.signals is not None and view.signals.sources == ("xentop",)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["info", "list", "list -l", "xentop -b -f -i 2 -d 1"]


def test_real_xm_outputs_replayed_through_the_fake_xm(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = tmp_path / "real"
    recording.mkdir()
    shutil.copy(corpus / "xminfo_xen3.3.0_ubuntu_i686.txt", recording / "info.out")
    shutil.copy(corpus / "xmlist_two_domains_pv_guest.txt", recording / "list.out")
    shutil.copy(corpus / "xmlistl_xen3.3.1_centos5_pv_pygrub.sxp", recording / "list_l.out")
    shutil.copy(corpus / "xentop_xmtop_xen4.1.2_ubuntuforums.txt", recording / "xentop.out")
    use_fake_xl(monkeypatch, recording)
    view = XmSource(_spec(recording)).read()
    assert view.xen_version == "3.3.0" and view.total_memory_kib == 2046 * MIB
    guest = view.guests[0]
    # The samples come from different hosts: the guest has no details and no xentop row.
    assert (guest.name, guest.domid, guest.guest_type, guest.current_kib) == (
        "My-PV-VM",
        7,
        None,
        None,
    )
    assert any("xentop has no unambiguous row for 'My-PV-VM'" in w for w in view.warnings)


def test_xend_not_running(host_xm: Path) -> None:
    write_command(
        host_xm,
        "info",
        err="Error: Unable to connect to xend: No such file or directory. Is xend running?\n",
        rc=1,
    )
    with pytest.raises(HypervisorError) as caught:
        XmSource(_spec(host_xm)).read()
    assert caught.value.host == "ovm" and caught.value.source == "xm info (local)"
    assert (
        "xend is not running" in caught.value.message and 'backend = "xl"' in caught.value.message
    )


def test_xm_missing(host_xm: Path) -> None:
    with pytest.raises(HypervisorError, match="not found on PATH; set xm_command"):
        XmSource(_spec(host_xm, xm_command="/nonexistent/xm")).read()


def test_xentop_failure_is_a_warning_not_a_failure(host_xm: Path) -> None:
    (host_xm / "xentop.out").unlink()
    view = XmSource(_spec(host_xm)).read()
    assert any("what each domain holds is unknown" in w for w in view.warnings)
    assert any("xentop -b -f -i 2 -d 1 (local)" in w for w in view.warnings)
    assert all(d.current_kib is None for d in view.guests)


def test_replay_of_an_xm_host_snapshot(host_xm: Path, tmp_path: Path) -> None:
    live = XmSource(_spec(host_xm), signals=True).read()
    save_host_snapshot(live, tmp_path / "snap", "2026-11-25T02:31:07Z")
    replayed = SnapshotSource(tmp_path / "snap").read()
    assert replayed.backend == "xm"
    assert replayed.domains == live.domains and replayed.signals == live.signals


def test_one_bad_xm_host_does_not_hide_the_other(host_xm: Path, tmp_path: Path) -> None:
    good = _spec(host_xm)
    bad = _spec(host_xm, name="gone", xm_command="/nonexistent/xm")
    results = read_hosts([good, bad], SshSettings(), signal_hosts={"ovm"})
    assert results[0][1] is not None and results[0][1].signals is not None
    assert results[0][1].signals.sources == ("xenstore-ls", "xentop", "xm dmesg")
    assert results[1][1] is None and "not found" in (results[1][2] or "")


# ------------------------------------------------------------ stand-in Dom0 over SSH


@pytest.fixture(scope="module")
def remote_xm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinDom0]:
    why = available()
    if why is not None:
        pytest.skip(why)
    directory = tmp_path_factory.mktemp("dom0")
    with standin_dom0(directory, RECORDINGS / "host_xm") as dom0:
        yield dom0


def _ssh(dom0: StandinDom0, tmp_path: Path) -> SshSettings:
    known = tmp_path / "known_hosts"
    known.write_text(dom0.known_hosts_line())
    return SshSettings(
        identity_file=str(dom0.client_key),
        known_hosts=str(known),
        own_known_hosts=str(tmp_path / "own"),
        ssh_config=None,
        connect_timeout_s=10.0,
    )


@pytest.mark.sshd
def test_xm_over_ssh_reads_what_xm_here_reads(
    remote_xm: StandinDom0, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = HypervisorSpec(name="ovm", backend="xm", ssh_host="127.0.0.1", ssh_port=remote_xm.port)
    remote = XmSource(spec, _ssh(remote_xm, tmp_path), signals=True).read()
    local_copy = copy_recording("host_xm", tmp_path)
    use_fake_xl(monkeypatch, local_copy)
    local = XmSource(_spec(local_copy), signals=True).read()
    assert remote.domains == local.domains
    assert remote.signals == local.signals
    for name in ("xm-info.txt", "xm-list.txt", "xm-list-l.sxp", "xentop.txt", "xenstore-ls.txt"):
        assert remote.raw[name] == local.raw[name]
    # The remote Dom0 answered one batch: no command per domain or per key.
    logged = remote_xm.log.read_text().splitlines()
    assert logged.count("xenstore-ls -f /local/domain") >= 1
    assert not any(line.startswith("xenstore-read") for line in logged)


@pytest.mark.sshd
def test_stand_in_dom0_serves_xenstore_read_from_its_store(
    remote_xm: StandinDom0, tmp_path: Path
) -> None:
    from xenaudit.hypervisor.ssh_runner import SshRunner

    spec = HypervisorSpec(name="ovm", backend="xm", ssh_host="127.0.0.1", ssh_port=remote_xm.port)
    runner = SshRunner(spec, _ssh(remote_xm, tmp_path))
    try:
        found = runner.run(
            ["xenstore-read", "-p", "/local/domain/11/memory/videoram", "/local/domain/1/name"],
            10,
            65536,
        )
        missing = runner.run(["xenstore-read", "/local/domain/99/name"], 10, 65536)
    finally:
        runner.close()
    assert found.returncode == 0 and found.stdout == (
        "/local/domain/11/memory/videoram: 4096\n"
        "/local/domain/1/name: 0004fb0000060000236e45007b980aa1\n"
    )
    assert missing.returncode == 1 and "couldn't read path /local/domain/99/name" in missing.stderr


def test_domains_command_reads_an_xm_dom0(
    host_xm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from xenaudit.cli import main

    assert main(["domains", "--backend", "xm"]) == 0
    table = capsys.readouterr().out
    assert "(xm): total 262010 MiB" in table and "removed in Xen 4.5" in table
    assert main(["domains", "--backend", "xm", "--json"]) == 0
    (host,) = json.loads(capsys.readouterr().out)["hosts"]
    names = [d["name"] for d in host["domains"]]
    assert names == [
        "0004fb0000060000236e45007b980aa1",
        "0004fb00000600007c522c7d71072a52",
        "ovm-template-ol6",
    ]
