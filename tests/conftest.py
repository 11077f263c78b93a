"""Shared fixtures: where the repository and the real-world corpus live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.standin.fixtures"]


def corpus_dir() -> Path:
    """The shared corpus of real samples sits beside the checkout (../shared/corpus)."""
    override = os.environ.get("XENAUDIT_CORPUS")
    path = Path(override) if override else REPO.parent / "shared" / "corpus"
    if not (path / "MANIFEST.tsv").is_file():
        raise RuntimeError(f"corpus not found at {path}; set XENAUDIT_CORPUS")
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    return corpus_dir()
