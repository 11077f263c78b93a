"""On a terminal, apply shows each diff and asks [y/N] per domain (tested on a pseudo-terminal)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.test_apply_support import (
    Guest,
    cli_command,
    declare_name,
    make_report,
    subprocess_env,
)
from xenaudit.xlcfg import parse


def run_on_pty(answers: bytes, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the apply CLI with a pseudo-terminal as stdin, typing `answers` into it."""
    master, slave = os.openpty()
    try:
        process = subprocess.Popen(
            [*cli_command(), *(str(a) for a in args)],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        os.close(slave)
        slave = -1
        # The terminal's line discipline holds the answers until apply reads them.
        os.write(master, answers)
        out, err = process.communicate(timeout=120)
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture
def two_domains(tmp_path: Path, corpus: Path) -> tuple[Path, Path, bytes]:
    root, report = tmp_path / "root", tmp_path / "report"
    root.mkdir()
    data = (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes()
    make_report(report, root, [Guest("a", data, 768, 768), Guest("b", data, 1024, 1024)])
    return root, report, data


def test_yes_on_the_terminal_applies_after_showing_the_diff(
    two_domains: tuple[Path, Path, bytes],
) -> None:
    root, report, _ = two_domains
    done = run_on_pty(b"y\ny\n", report, "--root", root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("[y/N]") == 2
    assert done.stdout.index("+memory = 768") < done.stdout.index("Apply this change to dom0a/a?")
    assert parse((root / "etc/xen/a.cfg").read_bytes(), "a").memory_mib == 768
    assert parse((root / "etc/xen/b.cfg").read_bytes(), "b").memory_mib == 1024


def test_each_domain_is_asked_for_separately(two_domains: tuple[Path, Path, bytes]) -> None:
    root, report, data = two_domains
    done = run_on_pty(b"y\nn\n", report, "--root", root)
    # A declined change is a change not made: the exit says so.
    assert done.returncode == 1, done.stderr
    assert parse((root / "etc/xen/a.cfg").read_bytes(), "a").memory_mib == 768
    assert (root / "etc/xen/b.cfg").read_bytes() == declare_name(data, "b")
    assert not list((root / "etc/xen").glob("b.cfg.xenaudit-*"))


def test_anything_but_yes_is_no(two_domains: tuple[Path, Path, bytes]) -> None:
    root, report, data = two_domains
    done = run_on_pty(b"\nok\n", report, "--root", root)
    assert done.returncode == 1
    assert (root / "etc/xen/a.cfg").read_bytes() == declare_name(data, "a")
    assert (root / "etc/xen/b.cfg").read_bytes() == declare_name(data, "b")


def test_undo_asks_too(two_domains: tuple[Path, Path, bytes]) -> None:
    root, report, data = two_domains
    assert run_on_pty(b"y\ny\n", report, "--root", root).returncode == 0
    done = run_on_pty(b"n\ny\n", report, "--root", root, "--undo")
    assert done.stdout.count("[y/N]") == 2
    assert done.returncode == 1
    assert (root / "etc/xen/a.cfg").read_bytes() != declare_name(data, "a")
    assert (root / "etc/xen/b.cfg").read_bytes() == declare_name(data, "b")
