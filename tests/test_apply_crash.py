"""A crash at any point leaves the cfg whole (old or new, never torn), and undo still works."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_apply_support import (
    Guest,
    log_records,
    make_report,
    run_apply,
    sha256,
    subprocess_env,
)
from xenaudit.apply import engine
from xenaudit.xlcfg import parse

#: Runs apply with os.replace / os.write wrapped so the process SIGKILLs itself
#: at the chosen point, as a power cut or an OOM kill would stop it.
KILLER = """
import os, signal, sys

point = sys.argv[1]
real_replace, real_write = os.replace, os.write

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def replace(src, dst, **kw):
    if point == "before-replace":
        die()
    real_replace(src, dst, **kw)
    if point == "after-replace":
        die()

def write(fd, data):
    name = os.readlink(f"/proc/self/fd/{fd}")
    if point == "mid-write" and name.endswith(".tmp") and b"memory = 768" in bytes(data):
        real_write(fd, bytes(data)[: len(data) // 2])
        die()
    return real_write(fd, data)

os.replace, os.write = replace, write
from xenaudit.apply.cli import main
sys.exit(main(sys.argv[2:]))
"""


def apply_and_die(point: str, report: Path, root: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", KILLER, point, str(report), "--root", str(root), "--yes"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=subprocess_env(),
        timeout=120,
    )
    return done.returncode


@pytest.fixture
def setup(tmp_path: Path, corpus: Path) -> tuple[Path, Path, Guest]:
    root, report = tmp_path / "root", tmp_path / "report"
    root.mkdir()
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 1024)
    make_report(report, root, [guest])
    return root, report, guest


def cfg_values(path: Path) -> tuple[int | None, int | None]:
    cfg = parse(path.read_bytes(), str(path))
    return cfg.memory_mib, cfg.maxmem_mib


@pytest.mark.parametrize("point", ["mid-write", "before-replace"])
def test_killed_before_the_rename_leaves_the_old_file_whole(
    setup: tuple[Path, Path, Guest], point: str
) -> None:
    root, report, guest = setup
    path = root / "etc/xen/web.cfg"

    assert apply_and_die(point, report, root) == -signal.SIGKILL
    assert path.read_bytes() == guest.cfg
    leftovers = list(path.parent.glob(".web.cfg.xenaudit-*.tmp"))
    assert len(leftovers) == 1
    if point == "mid-write":
        # The torn bytes only ever existed under the temporary name.
        assert 0 < leftovers[0].stat().st_size < len(guest.cfg)
    else:
        assert cfg_values(leftovers[0]) == (768, 1024)

    # Undo finds nothing to restore; a new apply cleans up and goes through.
    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    assert path.read_bytes() == guest.cfg
    assert run_apply(report, "--root", root, "--yes") == 0
    assert cfg_values(path) == (768, 1024)
    assert not list(path.parent.glob(".web.cfg.xenaudit-*.tmp"))
    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    assert path.read_bytes() == guest.cfg


def test_killed_right_after_the_rename_leaves_the_new_file_whole(
    setup: tuple[Path, Path, Guest],
) -> None:
    root, report, guest = setup
    path = root / "etc/xen/web.cfg"

    assert apply_and_die("after-replace", report, root) == -signal.SIGKILL
    assert cfg_values(path) == (768, 1024)
    results = [r["result"] for r in log_records(root) if r["event"] == "apply"]
    assert results == ["started"]

    # The "started" line is enough for undo to find the backup.
    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    assert path.read_bytes() == guest.cfg


def test_a_failing_rename_keeps_the_old_file_and_cleans_up(
    setup: tuple[Path, Path, Guest], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, report, guest = setup
    path = root / "etc/xen/web.cfg"

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    assert run_apply(report, "--root", root, "--yes") == 1
    assert path.read_bytes() == guest.cfg
    assert not list(path.parent.glob(".web.cfg.xenaudit-*"))
    results = [r["result"] for r in log_records(root) if r["event"] == "apply"]
    assert results == ["started", "failed"]


def test_a_result_that_reads_back_wrong_is_rolled_back(
    setup: tuple[Path, Path, Guest], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, report, guest = setup
    path = root / "etc/xen/web.cfg"
    real_check = engine.cfg_problem
    calls: list[bytes] = []

    def check(data: bytes, filename: str, memory_mib: int, maxmem_mib: int) -> str | None:
        # The check before writing passes; the one on the bytes read back fails,
        # as if something else had touched the file in between.
        calls.append(data)
        if len(calls) == 1:
            return real_check(data, filename, memory_mib, maxmem_mib)
        return "memory is 64 MiB, expected 768"

    monkeypatch.setattr(engine, "cfg_problem", check)
    assert run_apply(report, "--root", root, "--yes") == 1
    assert len(calls) == 2
    assert path.read_bytes() == guest.cfg
    final = [r for r in log_records(root) if r["event"] == "apply"][-1]
    assert final["result"] == "rolled_back"
    assert sha256((root / final["backup"].lstrip("/")).read_bytes()) == sha256(guest.cfg)
