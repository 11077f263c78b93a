"""Helpers for tests that run the real xl code path against the fake `xl` beside this file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FAKE_XL_BIN = Path(__file__).resolve().parent
RECORDINGS = FAKE_XL_BIN / "recordings"


def use_fake_xl(monkeypatch: pytest.MonkeyPatch, recordings: Path) -> Path:
    """Put the fake xl first on PATH, replaying `recordings`; returns that directory."""
    path = f"{FAKE_XL_BIN}:{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", path)
    monkeypatch.setenv("XENAUDIT_FAKE_XL_DIR", str(recordings))
    return recordings


def copy_recording(name: str, destination: Path) -> Path:
    """A writable copy of one recorded host (symlinks kept as symlinks)."""
    target = destination / name
    shutil.copytree(RECORDINGS / name, target, symlinks=True)
    return target


def write_command(
    directory: Path,
    key: str,
    *,
    out: str | None = None,
    err: str | None = None,
    rc: int | None = None,
    hang_s: float | None = None,
) -> None:
    """Record (or replace) how the fake xl answers one command, e.g. key "list_l"."""
    for ext in ("out", "err", "rc", "hang"):
        (directory / f"{key}.{ext}").unlink(missing_ok=True)
    if out is not None:
        (directory / f"{key}.out").write_text(out, encoding="utf-8")
    if err is not None:
        (directory / f"{key}.err").write_text(err, encoding="utf-8")
    if rc is not None:
        (directory / f"{key}.rc").write_text(f"{rc}\n", encoding="utf-8")
    if hang_s is not None:
        (directory / f"{key}.hang").write_text(f"{hang_s}\n", encoding="utf-8")
