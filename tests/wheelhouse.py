"""Wheels for installing xenaudit on stand-in Dom0s without a network.

The Ansible tests install xenaudit the way an admin does: its wheel, built on
the controller, is copied to each Dom0, and its dependencies come from a
package index. Here the wheel is built from a copy of this checkout and the
"index" is a folder of the dependencies' wheels, packed back from the test
virtualenv where they are installed already (an installed distribution is a
wheel's content plus the files pip added), so nothing is downloaded.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
#: Files pip writes at install time; they are not part of a wheel.
_INSTALLER_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def dependencies(root: str = "xenaudit") -> list[str]:
    """Every distribution `root` needs (recursively), as installed here; extras left out."""
    seen: set[str] = set()
    order: list[str] = []
    pending = [root]
    environment = default_environment()
    while pending:
        name = pending.pop()
        key = _normal(name)
        if key in seen:
            continue
        seen.add(key)
        if name != root:
            order.append(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            marker_env = {**environment, "extra": ""}
            if requirement.marker is None or requirement.marker.evaluate(marker_env):
                pending.append(requirement.name)
    return sorted(order, key=_normal)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def repack(name: str, folder: Path) -> Path:
    """The installed distribution `name` as a wheel in `folder`."""
    dist = importlib.metadata.distribution(name)
    site = Path(str(dist.locate_file(""))).resolve()
    wheel_info = dist.read_text("WHEEL") or ""
    tags = [
        line.split(":", 1)[1].strip() for line in wheel_info.splitlines() if line.startswith("Tag:")
    ]
    if not tags:
        raise RuntimeError(f"{name}: no WHEEL tags; installed from source, cannot repack")
    python = ".".join(dict.fromkeys(t.split("-")[0] for t in tags))
    abi = ".".join(dict.fromkeys(t.split("-")[1] for t in tags))
    platform = ".".join(dict.fromkeys(t.split("-")[2] for t in tags))
    version = dist.version
    project = _normal(dist.metadata["Name"])
    path = folder / f"{project}-{version}-{python}-{abi}-{platform}.whl"
    rows: list[list[str]] = []
    dist_info = None
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for entry in dist.files or []:
            source = (site / entry).resolve()
            inside = str(entry)
            if site not in source.parents or "__pycache__" in entry.parts:
                continue  # scripts under ../../bin, byte code: pip makes those itself
            if entry.parts[0].endswith(".dist-info"):
                dist_info = entry.parts[0]
                if entry.name in _INSTALLER_FILES:
                    continue
            if not source.is_file():
                continue
            data = source.read_bytes()
            wheel.writestr(inside, data)
            rows.append([inside, _record_hash(data), str(len(data))])
        if dist_info is None:
            raise RuntimeError(f"{name}: no .dist-info among its files")
        record = io.StringIO()
        writer = csv.writer(record, lineterminator="\n")
        writer.writerows([*rows, [f"{dist_info}/RECORD", "", ""]])
        wheel.writestr(f"{dist_info}/RECORD", record.getvalue())
    return path


def build_xenaudit_wheel(folder: Path, scratch: Path) -> Path:
    """xenaudit's wheel from a copy of the checkout, built offline by the test venv's hatchling."""
    source = scratch / "src"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "test-artifacts", "__pycache__", "*.pyc", ".*_cache", "build", "dist"
        ),
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(folder),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building xenaudit's wheel failed:\n{done.stderr[-3000:]}")
    (wheel,) = folder.glob("xenaudit-*.whl")
    return wheel


def make_wheelhouses(root: Path) -> tuple[Path, Path]:
    """(xenaudit's wheel alone, its dependencies' wheels) in two folders under `root`.

    The first is what the controller copies to each Dom0; the second stands in
    for a package index the Dom0s install dependencies from.
    """
    own, deps = root / "xenaudit", root / "deps"
    own.mkdir(parents=True)
    deps.mkdir()
    build_xenaudit_wheel(own, root / "build")
    shutil.rmtree(root / "build", ignore_errors=True)
    for name in dependencies():
        repack(name, deps)
    return own, deps
