"""Shared fixtures: where the repository and its real-world corpus live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.standin.fixtures"]


def corpus_dir() -> Path:
    """Real-world samples copied into the repository as published (tests/corpus/MANIFEST.tsv)."""
    return REPO / "tests" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    return corpus_dir()
