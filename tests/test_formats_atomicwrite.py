"""Atomic replacement: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from xenaudit import atomicwrite
from xenaudit.atomicwrite import atomic_write_bytes, atomic_write_text

REPO = Path(__file__).resolve().parent.parent


def _leftovers(directory: Path, name: str) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(f".{name}.")]


def test_new_file_gets_content_and_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        target = tmp_path / "report.json"
        atomic_write_bytes(target, b'{"a": 1}\n')
    finally:
        os.umask(old)
    assert target.read_bytes() == b'{"a": 1}\n'
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _leftovers(tmp_path, "report.json") == []


def test_replacing_keeps_the_mode_of_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "xenaudit.prom"
    target.write_text("old\n")
    target.chmod(0o604)
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o604


def test_explicit_mode_wins(tmp_path: Path) -> None:
    target = tmp_path / "web.cfg"
    target.write_text("memory = 512\n")
    atomic_write_text(target, "memory = 768\n", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_text_is_utf8_and_newlines_untouched(tmp_path: Path) -> None:
    target = tmp_path / "summary.csv"
    atomic_write_text(target, "naïve\r\nzwei\n")
    assert target.read_bytes() == "naïve\r\nzwei\n".encode()


def test_failed_rename_leaves_old_file_whole_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    target.write_bytes(b"old report")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomicwrite.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(target, b"new report that never lands")
    assert target.read_bytes() == b"old report"
    assert _leftovers(tmp_path, "report.html") == []


def test_failed_fsync_leaves_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b"[1, 2, 3]")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomicwrite.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output"):
        atomic_write_bytes(target, b"[4, 5, 6]")
    assert target.read_bytes() == b"[1, 2, 3]"
    assert _leftovers(tmp_path, "report.json") == []


CRASH_CHILD = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from xenaudit import atomicwrite

def crash(src, dst):
    os._exit(9)  # the process dies after writing, before the rename

atomicwrite.os.replace = crash
atomicwrite.atomic_write_bytes(Path(sys.argv[1]), b"N" * 1_000_000)
"""


def test_crash_between_write_and_rename_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "xenaudit.prom"
    old = b"xenaudit_audit_success 1\n" * 1000
    target.write_bytes(old)
    done = subprocess.run(
        [sys.executable, "-c", CRASH_CHILD, str(target), str(REPO)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr
    assert target.read_bytes() == old
    # The crash left its temporary file behind: written in full, under a name
    # node_exporter ignores (it does not end in .prom).
    leftovers = _leftovers(tmp_path, "xenaudit.prom")
    assert len(leftovers) == 1
    assert leftovers[0].stat().st_size == 1_000_000
    assert not leftovers[0].name.endswith(".prom")
