"""Tampered report folders against `apply`: nothing they say can run code or edit another file.

The report folder is data anyone with write access to it can change. These
tests edit it the way an attacker would and check the safe outcome: the
live step takes its route from the inventory, the cfg edited is the
domain's own, a failure after the rename is rolled back, and undo trusts
the file's hash rather than the logged outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_apply_support import (
    Guest,
    cli_command,
    install_cfg,
    log_records,
    make_report,
    memory_diff,
    run_apply,
    sha256,
    subprocess_env,
)
from xenaudit.apply import cli as apply_cli
from xenaudit.apply import engine, files
from xenaudit.apply.actionlog import ActionLog

MARKER_SCRIPT = """#!/bin/sh
echo "ran as $(id -u)" > "{marker}"
exit 1
"""


@pytest.fixture
def zabbix(corpus: Path) -> bytes:
    return (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes()


@pytest.fixture
def no_default_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's /etc/xenaudit/inventory.toml, made absent for the test."""
    monkeypatch.setattr(apply_cli, "DEFAULT_INVENTORY", tmp_path / "absent" / "inventory.toml")


def marker_uri(tmp_path: Path) -> tuple[str, Path]:
    """A libvirt URI whose `ext` transport runs a script that leaves a marker file."""
    marker = tmp_path / "marker"
    script = tmp_path / "evil.sh"
    script.write_text(MARKER_SCRIPT.format(marker=marker))
    script.chmod(0o755)
    return f"test+ext:///default?command={script}", marker


def tampered_report(tmp_path: Path, zabbix: bytes, uri: str) -> tuple[Path, Path]:
    root, report = tmp_path / "root", tmp_path / "report"
    root.mkdir()
    guest = Guest("web", zabbix, 768, 768, live_mib=(512, 1024))
    make_report(report, root, [guest], hosts=[{"name": "dom0a", "backend": "libvirt", "uri": uri}])
    return root, report


def test_the_tampered_uri_would_run_its_command(tmp_path: Path) -> None:
    """The attack is real: opening such a URI runs the program (so the tests below mean it)."""
    pytest.importorskip("libvirt")
    uri, marker = marker_uri(tmp_path)
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import libvirt\ntry: libvirt.open({uri!r})\nexcept Exception: pass",
        ],
        capture_output=True,
        timeout=60,
    )
    assert marker.exists()


@pytest.mark.parametrize(
    "inventory",
    [
        None,  # no inventory at all
        '[[hypervisor]]\nname = "dom0a"\nbackend = "xl"\n',  # another backend
        '[[hypervisor]]\nname = "dom0a"\nbackend = "libvirt"\nuri = "test:///default"\n',
        '[[hypervisor]]\nname = "dom0b"\nbackend = "xl"\n',  # the host is not in it
    ],
)
def test_a_live_step_never_uses_the_reports_uri(
    tmp_path: Path,
    zabbix: bytes,
    inventory: str | None,
    no_default_inventory: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri, marker = marker_uri(tmp_path)
    root, report = tampered_report(tmp_path, zabbix, uri)
    args: list[str | Path] = [report, "--root", root, "--yes", "--live"]
    if inventory is not None:
        (tmp_path / "inventory.toml").write_text(inventory)
        args += ["-i", tmp_path / "inventory.toml"]
    assert run_apply(*args) == 0
    assert not marker.exists()
    out = capsys.readouterr().out
    assert "no live change" in out and "test+ext" not in out
    # The file part still happened; it takes effect at the next boot.
    assert b"memory = 768" in (root / "etc/xen/web.cfg").read_bytes()


def test_the_inventorys_route_is_the_one_used(
    tmp_path: Path, zabbix: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Control: when the admin's inventory names that URI itself, the live step does use it."""
    pytest.importorskip("libvirt")
    uri, marker = marker_uri(tmp_path)
    root, report = tampered_report(tmp_path, zabbix, uri)
    (tmp_path / "inventory.toml").write_text(
        f'[[hypervisor]]\nname = "dom0a"\nbackend = "libvirt"\nuri = "{uri}"\n'
    )
    run_apply(report, "--root", root, "--yes", "--live", "-i", tmp_path / "inventory.toml")
    assert marker.exists()


def test_a_broken_inventory_refuses_before_anything_changes(tmp_path: Path, zabbix: bytes) -> None:
    uri, marker = marker_uri(tmp_path)
    root, report = tampered_report(tmp_path, zabbix, uri)
    (tmp_path / "inventory.toml").write_text("[[hypervisor]]\nname = 1\n")
    args = [report, "--root", root, "--yes", "--live", "-i", tmp_path / "inventory.toml"]
    assert run_apply(*args) == 2
    assert not marker.exists()
    assert b"memory = 768" not in (root / "etc/xen/web.cfg").read_bytes()


def test_a_fifo_report_is_refused_without_hanging(tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    os.mkfifo(report / "report.json")
    done = subprocess.run(
        [*cli_command(), str(report), "--dry-run"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert done.returncode == 2
    assert "not a regular file" in done.stderr


def test_a_report_cannot_target_xl_conf_or_another_domains_cfg(
    tmp_path: Path, zabbix: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    root, report = tmp_path / "root", tmp_path / "report"
    root.mkdir()
    xl_conf = b'autoballoon="off"\nlockfile="/var/lock/xl"\n'
    other = Guest("other", zabbix, 768, 768)
    install_cfg(root, other.logical, other.cfg)
    guests = [
        Guest("conf", xl_conf, 768, 768, path="/etc/xen/xl.conf", keep_name=True),
        # web's entry pointed at the cfg of another domain (which xl parses fine).
        Guest("web", other.cfg, 768, 768, path=other.logical, keep_name=True),
    ]
    make_report(report, root, guests, install=False)
    install_cfg(root, "/etc/xen/xl.conf", xl_conf)
    assert run_apply(report, "--root", root, "--yes") == 1
    out = capsys.readouterr().out
    assert "xl.conf is not a domain cfg" in out
    assert "declares name = 'other'" in out
    assert (root / "etc/xen/xl.conf").read_bytes() == xl_conf
    assert (root / "etc/xen/other.cfg").read_bytes() == other.cfg


def test_a_carriage_return_in_an_added_comment_is_refused(
    tmp_path: Path, zabbix: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    root, report = tmp_path / "root", tmp_path / "report"
    root.mkdir()
    guest = Guest("web", zabbix, 768, 768)
    diff = memory_diff(guest.logical, guest.cfg, 768, 768)
    # The comment hides what follows the \r on a terminal.
    diff = diff.replace(b"+memory = 768\n", b"+memory = 768 # tuned\rmemory = 64\n")
    guest.diff = diff
    make_report(report, root, [guest])
    assert run_apply(report, "--root", root, "--yes") == 1
    assert "changes more than memory" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg


def test_the_summary_shows_what_the_diff_does_not_what_the_report_claims(
    tmp_path: Path, zabbix: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    root, report = tmp_path / "root", tmp_path / "report"
    root.mkdir()
    # The report claims the cfg had 4096 MiB: a shrink to 768 would look like
    # a decrease the admin might think twice about; the file says 512.
    guest = Guest("web", zabbix, 768, 768, cfg_memory_mib=4096, cfg_maxmem_mib=4096)
    make_report(report, root, [guest])
    assert run_apply(report, "--root", root, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "memory 512 -> 768 MiB" in out
    assert "4096" not in out


# --- a failure after the rename --------------------------------------------------------


def setup_web(tmp_path: Path, zabbix: bytes) -> tuple[Path, Path, Guest]:
    root, report = tmp_path / "root", tmp_path / "report"
    root.mkdir()
    guest = Guest("web", zabbix, 768, 768)
    make_report(report, root, [guest])
    return root, report, guest


def test_an_error_after_the_rename_rolls_the_cfg_back(
    tmp_path: Path,
    zabbix: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, report, guest = setup_web(tmp_path, zabbix)
    real_append = ActionLog.append

    def append(self: ActionLog, record: dict) -> None:
        # Stands in for a full disk: the "started" line lands, the final one does not.
        if record.get("result") == "applied":
            raise OSError(28, "No space left on device")
        real_append(self, record)

    monkeypatch.setattr(ActionLog, "append", append)
    assert run_apply(report, "--root", root, "--yes") == 1
    assert "ROLLED BACK" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg
    assert [r["result"] for r in log_records(root) if r["event"] == "apply"] == [
        "started",
        "rolled_back",
    ]


def test_undo_trusts_the_files_hash_not_the_logged_outcome(
    tmp_path: Path,
    zabbix: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, report, guest = setup_web(tmp_path, zabbix)
    real_check, real_replace = engine.cfg_problem, files.replace
    checks: list[bytes] = []
    replaces: list[bytes] = []

    def check(data: bytes, *args: object) -> str | None:
        checks.append(data)
        return real_check(data, *args) if len(checks) == 1 else "memory is 64 MiB"  # type: ignore[arg-type]

    def replace(dir_fd: int, name: str, data: bytes, owner: files.Ownership) -> None:
        replaces.append(data)
        if len(replaces) == 2:  # the rollback itself fails
            raise OSError(5, "Input/output error")
        real_replace(dir_fd, name, data, owner)

    monkeypatch.setattr(engine, "cfg_problem", check)
    monkeypatch.setattr(files, "replace", replace)
    assert run_apply(report, "--root", root, "--yes") == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "--undo restores it" in out
    new = (root / "etc/xen/web.cfg").read_bytes()
    assert new != guest.cfg
    monkeypatch.undo()

    # The log says "failed"; the file says the change landed: undo restores it.
    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    assert "nothing to undo" not in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg
    undo = [r for r in log_records(root) if r["event"] == "undo"]
    assert undo[-1]["result"] == "restored"
    assert undo[-1]["replaced_sha256"] == sha256(new)


def test_undo_after_a_rollback_finds_the_original_in_place(
    tmp_path: Path,
    zabbix: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, report, guest = setup_web(tmp_path, zabbix)
    real_check = engine.cfg_problem
    calls: list[bytes] = []

    def check(data: bytes, *args: object) -> str | None:
        calls.append(data)
        return real_check(data, *args) if len(calls) == 1 else "memory is 64 MiB"  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "cfg_problem", check)
    assert run_apply(report, "--root", root, "--yes") == 1
    monkeypatch.undo()
    capsys.readouterr()
    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    assert "already holds its content from before the apply" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg
    assert json.loads(json.dumps(log_records(root)))  # the log stays readable
