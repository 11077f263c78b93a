"""Attacks on where a root run writes: planted links, foreign or busy folders, replays in place.

Each test plants what an attacker with write access to an output folder (or
to the folder it is made in) could plant, runs the real command line, and
checks that nothing outside the output folder changed and the run said why.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from xenaudit.cli import main
from xenaudit.demo import FLEET_DIR

VICTIM_TEXT = 'name = "victim"\nmemory = 512\n'


def victim(tmp_path: Path, name: str = "victim.cfg") -> Path:
    path = tmp_path / "etc-xen" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(VICTIM_TEXT)
    return path


def demo(out: Path, *extra: str) -> int:
    return main(["audit", "--demo", "-q", "-o", str(out), *extra])


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry below `folder`: file bytes, or a link's target."""
    result: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            result[key] = "-> " + os.readlink(path)
        elif path.is_file():
            result[key] = path.read_bytes()
    return result


def test_links_planted_in_a_forced_output_folder_are_never_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etc = tmp_path / "etc-xen"
    target = victim(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    (out / "snapshots" / "web-frontend").mkdir(parents=True)
    (out / "snapshots" / "_hypervisor").mkdir()
    # Every kind of output: a top-level file, a folder of outputs, a guest
    # section, the host snapshot folder and the cfg copies.
    (out / "report.json").symlink_to(target)
    (out / "xenaudit.prom").symlink_to(target)
    (out / "patches").symlink_to(etc)
    (out / "snapshots" / "web-frontend" / "meminfo").symlink_to(target)
    (out / "snapshots" / "web-frontend" / "meta.json").symlink_to(target)
    (out / "snapshots" / "_hypervisor" / "xen-demo").symlink_to(elsewhere)
    (out / "snapshots" / "_cfg").symlink_to(elsewhere)
    before = tree(etc), tree(elsewhere)

    code = demo(out, "--force")

    assert (tree(etc), tree(elsewhere)) == before
    assert target.read_text() == VICTIM_TEXT
    # The links planted at file names were replaced by the real outputs.
    assert not (out / "report.json").is_symlink()
    report = json.loads((out / "report.json").read_text())
    assert report["domains"]
    assert (out / "snapshots" / "web-frontend" / "meminfo").read_text().startswith("MemTotal")
    # A linked folder is refused and named, and the run says the output is incomplete.
    assert code == 3
    errors = "\n".join(report["errors"]) + capsys.readouterr().err
    assert "patches" in errors and "symlink" in errors


def test_a_linked_snapshots_folder_refuses_the_run(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "snapshots").symlink_to(elsewhere)
    assert demo(out, "--force") == 2
    assert list(elsewhere.iterdir()) == []


def test_an_existing_busy_folder_is_refused_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").symlink_to(target)
    before = tree(out)
    assert demo(out) == 2
    assert "not empty" in capsys.readouterr().err
    assert tree(out) == before
    assert target.read_text() == VICTIM_TEXT


def test_a_folder_of_another_user_is_refused_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "theirs"
    out.mkdir()
    os.chown(out, 4242, 4242)
    assert demo(out) == 2
    assert "uid 4242" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_an_output_folder_that_is_a_link_is_refused_even_with_force(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    assert demo(tmp_path / "out", "--force") == 2
    assert list(real.iterdir()) == []


@pytest.mark.parametrize("where", ["same", "parent", "inside"])
def test_a_replay_into_the_folder_it_reads_is_refused(tmp_path: Path, where: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(FLEET_DIR, run / "snapshots")
    before = tree(run)
    out = {
        "same": run / "snapshots",
        "parent": run,
        "inside": run / "snapshots" / "new",
    }[where]
    code = main(
        ["audit", "--from-snapshots", str(run / "snapshots"), "-o", str(out), "-q", "--force"]
    )
    assert code == 2
    assert tree(run) == before


def test_a_fresh_dated_folder_is_made_with_its_parents(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "2026-11-25T0241"
    assert demo(out) == 3
    assert (out / "report.html").is_file()
    assert (out / "snapshots" / "_cfg" / "index.json").is_file()
