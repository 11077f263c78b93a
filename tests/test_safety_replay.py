"""Crafted snapshot folders: links to secrets, FIFOs, odd JSON, paths outside /etc/xen.

A snapshots folder handed to `--from-snapshots` may come from anywhere. Each
test crafts one, replays it through the command line, and checks that the
run ends with a report, a clean error naming the host or domain, and no
secret copied and no path outside the cfg folder named in a patch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xenaudit.cli import main
from xenaudit.demo import FLEET_DIR

REPO = Path(__file__).resolve().parent.parent
SECRET = "root-only-secret-4f1d9c"
DEEP = "[" * 30_000 + "]" * 30_000


def fleet_copy(tmp_path: Path) -> Path:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET_DIR, fleet)
    return fleet


def secret_file(tmp_path: Path, text: str = f"MemTotal: 1 kB\n{SECRET}\n") -> Path:
    path = tmp_path / "private" / "secret"
    path.parent.mkdir(mode=0o700)
    path.write_text(text)
    path.chmod(0o600)
    return path


def replay(tmp_path: Path, fleet: Path) -> tuple[int, dict[str, Any], str, str]:
    """(exit code, report.json, everything written under the output folder, stderr)."""
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "xenaudit",
            "audit",
            "--from-snapshots",
            str(fleet),
            "-o",
            str(out),
            "-q",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    written = "".join(p.read_text(errors="replace") for p in sorted(out.rglob("*")) if p.is_file())
    return done.returncode, json.loads((out / "report.json").read_text()), written, done.stderr


def domain(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in report["domains"] if d["name"] == name)


def test_a_section_linked_to_a_secret_is_refused_and_not_copied(tmp_path: Path) -> None:
    fleet = fleet_copy(tmp_path)
    secret = secret_file(tmp_path)
    (fleet / "web-frontend" / "meminfo").unlink()
    (fleet / "web-frontend" / "meminfo").symlink_to(secret)
    code, report, written, stderr = replay(tmp_path, fleet)
    assert code == 3
    assert SECRET not in written
    web = domain(report, "web-frontend")
    assert web["collection"]["status"] == "unreachable"
    assert "symlink" in web["collection"]["error"]
    assert "Traceback" not in stderr


def test_a_guest_folder_linked_elsewhere_is_not_replayed(tmp_path: Path) -> None:
    fleet = fleet_copy(tmp_path)
    secret_dir = tmp_path / "private"
    shutil.copytree(fleet / "monitor", secret_dir)
    (secret_dir / "meminfo").write_text(f"MemTotal: 1 kB\n{SECRET}\n")
    shutil.rmtree(fleet / "monitor")
    (fleet / "monitor").symlink_to(secret_dir)
    code, report, written, _ = replay(tmp_path, fleet)
    assert code == 3
    assert SECRET not in written
    assert domain(report, "monitor")["collection"]["status"] == "unreachable"


@pytest.mark.parametrize("name", ["xl-info.txt", "xl-list-l.json", "host.json"])
def test_host_files_linked_to_a_secret_are_a_host_error(tmp_path: Path, name: str) -> None:
    fleet = fleet_copy(tmp_path)
    secret = secret_file(tmp_path, f"{SECRET}\n")
    path = fleet / "_hypervisor" / "xen-demo" / name
    path.unlink()
    path.symlink_to(secret)
    code, report, written, stderr = replay(tmp_path, fleet)
    assert code == 3
    assert SECRET not in written
    host, other = report["hosts"]  # xen-demo, then the untouched xen-legacy
    assert "symlink" in (host["error"] or "") and other["error"] is None
    assert "Traceback" not in stderr


def test_a_cfg_copy_or_index_linked_to_a_secret_is_refused(tmp_path: Path) -> None:
    fleet = fleet_copy(tmp_path)
    secret = secret_file(tmp_path, f'name = "web-frontend"\nmemory = 512\n# {SECRET}\n')
    copy = fleet / "_cfg" / "xen-demo" / "web-frontend.cfg"
    copy.unlink()
    copy.symlink_to(secret)
    code, report, written, _ = replay(tmp_path, fleet)
    assert SECRET not in written
    assert "symlink" in domain(report, "web-frontend")["config"]["error"]
    assert domain(report, "web-frontend")["patch"] is None

    index = fleet / "_cfg" / "index.json"
    shutil.copy(index, tmp_path / "index.json")
    index.unlink()
    index.symlink_to(tmp_path / "index.json")
    shutil.rmtree(tmp_path / "out")
    code, report, written, _ = replay(tmp_path, fleet)
    assert code == 3
    assert any("unreadable cfg index" in e and "symlink" in e for e in report["errors"])


def test_a_fifo_in_a_snapshot_does_not_hang_the_replay(tmp_path: Path) -> None:
    fleet = fleet_copy(tmp_path)
    (fleet / "cache-node" / "meminfo").unlink()
    os.mkfifo(fleet / "cache-node" / "meminfo")
    code, report, _, _ = replay(tmp_path, fleet)  # a subprocess with a timeout
    assert code == 3
    assert "not a regular file" in domain(report, "cache-node")["collection"]["error"]

    shutil.rmtree(tmp_path / "out")
    os.unlink(fleet / "_hypervisor" / "xen-demo" / "xl.conf")
    os.mkfifo(fleet / "_hypervisor" / "xen-demo" / "xl.conf")
    code, report, _, _ = replay(tmp_path, fleet)
    assert code == 3
    assert "not a regular file" in (report["hosts"][0]["error"] or "")


def rewrite_json(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_deeply_nested_json_gives_clean_errors(tmp_path: Path) -> None:
    fleet = fleet_copy(tmp_path)
    (fleet / "db-primary" / "meta.json").write_text(DEEP)
    (fleet / "_cfg" / "index.json").write_text(DEEP)
    code, report, _, stderr = replay(tmp_path, fleet)
    assert code == 3
    db = domain(report, "db-primary")
    assert "nested too deeply" in db["collection"]["error"]
    assert any("nested too deeply" in e for e in report["errors"])
    assert "Traceback" not in stderr

    shutil.rmtree(tmp_path / "out")
    (fleet / "_hypervisor" / "xen-demo" / "xl-list-l.json").write_text(DEEP)
    code, report, _, stderr = replay(tmp_path, fleet)
    assert code == 3
    assert "nested too deeply" in report["hosts"][0]["error"]
    assert "Traceback" not in stderr

    shutil.rmtree(tmp_path / "out")
    (fleet / "_hypervisor" / "xen-demo" / "host.json").write_text(DEEP)
    code, report, _, stderr = replay(tmp_path, fleet)
    assert code == 3
    assert "nested too deeply" in report["hosts"][0]["error"]
    assert "Traceback" not in stderr


def test_wrong_shapes_long_names_and_lone_surrogates_give_clean_errors(tmp_path: Path) -> None:
    fleet = fleet_copy(tmp_path)

    def meta_list(meta: dict[str, Any]) -> None:
        meta["domain"] = ["web-frontend"]

    def index_odd(index: dict[str, Any]) -> None:
        index["xen-demo"]["db-primary"]["path"] = ["/etc/xen/db-primary.cfg"]
        index["xen-demo"]["cache-node"]["file"] = "xen-demo/" + "a" * 5000
        index["xen-demo"]["monitor"]["path"] = "/etc/xen/" + "m" * 5000

    rewrite_json(fleet / "web-frontend" / "meta.json", meta_list)
    rewrite_json(fleet / "_cfg" / "index.json", index_odd)
    code, report, _, stderr = replay(tmp_path, fleet)
    assert "Traceback" not in stderr
    assert code == 3
    assert "domain: expected" in domain(report, "web-frontend")["collection"]["error"]
    for name in ("db-primary", "cache-node", "monitor"):
        assert domain(report, name)["config"]["error"], name
        assert domain(report, name)["patch"] is None

    shutil.rmtree(tmp_path / "out")
    host_json = fleet / "_hypervisor" / "xen-demo" / "host.json"
    host_json.write_text(
        host_json.read_text().replace('"name": "xen-demo"', '"name": "xen-\\ud800demo"')
    )
    code, report, _, stderr = replay(tmp_path, fleet)
    assert "Traceback" not in stderr
    assert code == 3
    # The host folder's name stands in for the name that cannot be written anywhere.
    host = report["hosts"][0]
    assert host["name"] == "xen-demo"
    assert "host.json" in host["error"]


@pytest.mark.parametrize(
    "path",
    ["/root/.ssh/authorized_keys", "/etc/xen/../shadow", "/etc/xen//web.cfg", "relative.cfg"],
)
def test_a_replayed_cfg_path_outside_the_cfg_folder_is_refused(tmp_path: Path, path: str) -> None:
    fleet = fleet_copy(tmp_path)

    def retarget(index: dict[str, Any]) -> None:
        for entry in index["xen-demo"].values():
            entry["path"] = path

    rewrite_json(fleet / "_cfg" / "index.json", retarget)
    code, report, written, _ = replay(tmp_path, fleet)
    assert code == 3
    assert all(d["patch"] is None for d in report["domains"])
    assert all(d["config"]["path"] != path for d in report["domains"])
    assert not list((tmp_path / "out" / "patches").glob("*"))
    assert f"a{path}" not in written


def test_negative_memory_in_a_replayed_xl_list_is_refused(tmp_path: Path) -> None:
    fleet = fleet_copy(tmp_path)
    listing = fleet / "_hypervisor" / "xen-demo" / "xl-list-l.json"
    listing.write_text(
        listing.read_text().replace('"target_memkb": 524288', '"target_memkb": -524288', 1)
    )
    code, report, _, _ = replay(tmp_path, fleet)
    assert code == 3
    assert "target_memkb = -524288 is negative" in report["hosts"][0]["error"]


def test_the_command_line_replay_runs_in_process_too(tmp_path: Path) -> None:
    """The same crafted folder through main() (no subprocess): no exception escapes."""
    fleet = fleet_copy(tmp_path)
    (fleet / "db-primary" / "meta.json").write_text(DEEP)
    out, state = str(tmp_path / "o"), str(tmp_path / "state")
    code = main(["audit", "--from-snapshots", str(fleet), "-o", out, "-q", "--state-dir", state])
    assert code == 3
