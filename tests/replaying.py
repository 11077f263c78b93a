"""Replaying a snapshots folder in-process, as `xenaudit audit --from-snapshots` does.

Every replay names its own history folder, so no test reads or writes the real
/var/lib/xenaudit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xenaudit.cli import main


def replay_audit(snapshots: Path, out: Path, state: Path, *extra: str) -> int:
    """The exit code of a quiet replay of `snapshots` into `out`."""
    argv = ["audit", "--from-snapshots", str(snapshots), "-o", str(out), "-q"]
    return main([*argv, "--state-dir", str(state), *extra])


def report_of(out: Path) -> dict[str, Any]:
    """The report.json a run wrote into `out`."""
    document: dict[str, Any] = json.loads((out / "report.json").read_text())
    return document
