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

    def broken_replace(src: object, dst: object, **_dir_fds: object) -> None:
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

def crash(src, dst, **dir_fds):
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


# --- links and escapes below an output folder ------------------------------------------


def test_a_planted_link_is_replaced_never_written_through(tmp_path: Path) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim.cfg"
    out.mkdir()
    victim.write_text("memory = 512\n")
    (out / "report.json").symlink_to(victim)
    atomic_write_bytes(out / "report.json", b"{}", root=out)
    assert victim.read_text() == "memory = 512\n"
    assert not (out / "report.json").is_symlink()
    assert (out / "report.json").read_bytes() == b"{}"


def test_a_planted_hard_link_is_replaced_not_rewritten(tmp_path: Path) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim.cfg"
    out.mkdir()
    victim.write_text("memory = 512\n")
    os.link(victim, out / "summary.csv")
    atomic_write_bytes(out / "summary.csv", b"new", root=out)
    assert victim.read_text() == "memory = 512\n"


def test_a_linked_folder_below_the_output_folder_is_refused(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "etc-xen"
    out.mkdir()
    elsewhere.mkdir()
    (out / "patches").symlink_to(elsewhere)
    with pytest.raises(atomicwrite.UnsafePathError, match="symlink"):
        atomic_write_bytes(out / "patches" / "web.cfg.diff", b"diff", root=out)
    assert list(elsewhere.iterdir()) == []


def test_a_path_leaving_the_output_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for bad in (out / ".." / "escaped", tmp_path / "escaped", Path("/etc/escaped")):
        with pytest.raises(atomicwrite.UnsafePathError):
            atomic_write_bytes(bad, b"x", root=out)
    assert not (tmp_path / "escaped").exists()


def test_the_output_folder_itself_may_not_be_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    with pytest.raises(atomicwrite.UnsafePathError):
        atomic_write_bytes(tmp_path / "out" / "report.html", b"x", root=tmp_path / "out")
    with pytest.raises(atomicwrite.OutputFolderError, match="symbolic link"):
        atomicwrite.prepare_output_folder(tmp_path / "out", force=True)
    assert list(real.iterdir()) == []


def test_an_output_folder_must_be_new_or_empty_and_ours(tmp_path: Path) -> None:
    atomicwrite.prepare_output_folder(tmp_path / "new" / "run")
    assert (tmp_path / "new" / "run").is_dir()
    atomicwrite.prepare_output_folder(tmp_path / "new" / "run")  # empty: fine
    (tmp_path / "new" / "run" / "leftover").write_text("x")
    with pytest.raises(atomicwrite.OutputFolderError, match="not empty"):
        atomicwrite.prepare_output_folder(tmp_path / "new" / "run")
    atomicwrite.prepare_output_folder(tmp_path / "new" / "run", force=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 4242, 4242)
    with pytest.raises(atomicwrite.OutputFolderError, match="uid 4242"):
        atomicwrite.prepare_output_folder(foreign)
    atomicwrite.prepare_output_folder(foreign, force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(atomicwrite.OutputFolderError, match="not a folder"):
        atomicwrite.prepare_output_folder(tmp_path / "file", force=True)
