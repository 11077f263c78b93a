"""xl on a remote Dom0 over SSH, against a real OpenSSH sshd on 127.0.0.1.

The sshd runs in its own mount namespace (for its private /run/sshd) and
hands the fake xl its recordings through `SetEnv`, so the remote side runs
exactly the commands the local backend runs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_xl.standin_dom0 import StandinDom0, StandinDom0Error, standin_dom0
from tests.fake_xl.support import FAKE_XL_BIN, RECORDINGS, use_fake_xl
from tests.localssh import free_port, keygen
from xenaudit.hypervisor.interface import HypervisorError
from xenaudit.hypervisor.xl import XlSource
from xenaudit.inventory.interface import HypervisorSpec, SshSettings

pytestmark = [
    pytest.mark.sshd,
    pytest.mark.skipif(
        os.geteuid() != 0
        or not all(shutil.which(p) for p in ("unshare", "ssh-keygen"))
        or not Path("/usr/sbin/sshd").is_file(),
        reason="needs root, unshare, ssh-keygen and /usr/sbin/sshd",
    ),
]

FAKE_XL = str(FAKE_XL_BIN / "xl")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinDom0]:
    try:
        with standin_dom0(tmp_path_factory.mktemp("sshd"), RECORDINGS / "host_a") as dom0:
            yield dom0
    except StandinDom0Error as exc:
        pytest.skip(str(exc))


def _settings(
    sshd: StandinDom0, tmp_path: Path, known: str | None, **changes: object
) -> SshSettings:
    known_hosts = tmp_path / "known_hosts"
    if known is not None:
        known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {known}\n")
    fields: dict[str, object] = {
        "identity_file": str(sshd.client_key),
        "known_hosts": str(known_hosts),
        "own_known_hosts": str(tmp_path / "own" / "known_hosts"),
        "ssh_config": None,
        "connect_timeout_s": 10.0,
    }
    fields.update(changes)
    return SshSettings(**fields)  # type: ignore[arg-type]


def _remote(sshd: StandinDom0, xl_command: str = FAKE_XL) -> HypervisorSpec:
    return HypervisorSpec(
        name="dom0r", ssh_host="127.0.0.1", ssh_port=sshd.port, xl_command=xl_command
    )


def test_xl_over_ssh_reads_what_xl_here_reads(
    sshd: StandinDom0, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = XlSource(_remote(sshd), _settings(sshd, tmp_path, sshd.host_public_key)).read()
    use_fake_xl(monkeypatch, RECORDINGS / "host_a")
    local = XlSource(HypervisorSpec(name="dom0r", cfg_dir=str(tmp_path))).read()
    assert remote.domains == local.domains
    for name in ("xl-info.txt", "xl-list.txt", "xl-list-l.json"):
        assert remote.raw[name] == local.raw[name]


def test_unknown_host_key_is_refused_by_default(sshd: StandinDom0, tmp_path: Path) -> None:
    with pytest.raises(HypervisorError) as caught:
        XlSource(_remote(sshd), _settings(sshd, tmp_path, known=None)).read()
    assert caught.value.host == "dom0r" and caught.value.source == "ssh"
    assert "not known" in caught.value.message and "accept-new" in caught.value.message


def test_accept_new_records_the_key_for_next_time(sshd: StandinDom0, tmp_path: Path) -> None:
    settings = _settings(sshd, tmp_path, known=None, host_key_policy="accept-new")
    XlSource(_remote(sshd), settings).read()
    recorded = (tmp_path / "own" / "known_hosts").read_text()
    assert f"[127.0.0.1]:{sshd.port} {sshd.host_public_key}" in recorded
    strict_again = _settings(sshd, tmp_path, known=None)
    assert XlSource(_remote(sshd), strict_again).read().guests


def test_changed_host_key_is_refused_even_with_accept_new(
    sshd: StandinDom0, tmp_path: Path
) -> None:
    keygen(tmp_path / "impostor")
    other = " ".join((tmp_path / "impostor.pub").read_text().split()[:2])
    settings = _settings(sshd, tmp_path, known=other, host_key_policy="accept-new")
    with pytest.raises(HypervisorError, match="CHANGED"):
        XlSource(_remote(sshd), settings).read()


def test_xl_missing_on_the_remote_dom0(sshd: StandinDom0, tmp_path: Path) -> None:
    spec = _remote(sshd, xl_command="/nonexistent/bin/xl")
    with pytest.raises(HypervisorError) as caught:
        XlSource(spec, _settings(sshd, tmp_path, sshd.host_public_key)).read()
    assert "not found" in caught.value.message and "set xl_command" in caught.value.message
    assert f"ssh root@127.0.0.1:{sshd.port}" in caught.value.source


def test_nobody_listening(tmp_path: Path) -> None:
    spec = HypervisorSpec(name="dom0x", ssh_host="127.0.0.1", ssh_port=free_port())
    settings = SshSettings(known_hosts=str(tmp_path / "k"), ssh_config=None, connect_timeout_s=5)
    with pytest.raises(HypervisorError) as caught:
        XlSource(spec, settings).read()
    assert caught.value.source == "ssh" and "cannot connect" in caught.value.message


def test_audit_of_a_remote_dom0_reads_its_cfgs_over_ssh(sshd: StandinDom0, tmp_path: Path) -> None:
    """The cfg folder is read on the Dom0 (here: the same disk, reached over SSH)."""
    import json

    from xenaudit.cli import main

    cfg_dir = RECORDINGS / "host_a" / "etc-xen"
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_public_key}\n")
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        f'[[hypervisor]]\nname = "dom0r"\nbackend = "xl"\nssh_host = "127.0.0.1"\n'
        f'ssh_port = {sshd.port}\nxl_command = "{FAKE_XL}"\ncfg_dir = "{cfg_dir}"\n\n'
        f'[ssh]\nidentity_file = "{sshd.client_key}"\nknown_hosts = "{known}"\n'
        f'own_known_hosts = "{tmp_path / "own"}"\nssh_config = "{tmp_path / "none"}"\n'
        'host_template = "{name}.invalid"\nconnect_timeout_s = 2.0\nretries = 0\n'
    )
    out = tmp_path / "out"
    code = main(
        [
            "audit",
            "-i",
            str(inventory),
            "-o",
            str(out),
            "-q",
            "--state-dir",
            str(tmp_path / "state"),
        ]
    )
    assert code == 3  # the guests themselves cannot be reached
    report = json.loads((out / "report.json").read_text())
    web = next(d for d in report["domains"] if d["name"] == "web")
    assert web["config"]["path"] == str(cfg_dir / "web.cfg")
    assert web["config"]["memory_mib"] is not None
    assert web["config"]["sha256"]
    saved = json.loads((out / "snapshots" / "_cfg" / "index.json").read_text())
    assert saved["dom0r"]["web"]["path"] == str(cfg_dir / "web.cfg")
    copy = out / "snapshots" / "_cfg" / saved["dom0r"]["web"]["file"]
    assert copy.read_bytes() == (cfg_dir / "web.cfg").read_bytes()
