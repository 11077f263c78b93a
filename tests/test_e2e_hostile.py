"""Bad and hostile guest text through the whole pipeline: named errors, nothing lost or run."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.replaying import replay_audit, report_of
from xenaudit.demo import FLEET_DIR

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def replay(tmp_path: Path, fleet: Path) -> tuple[int, dict, str]:
    out = tmp_path / "out"
    code = replay_audit(fleet, out, tmp_path / "state")
    return code, report_of(out), (out / "report.html").read_text()


def test_garbage_and_payloads_are_contained(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET_DIR, fleet)
    (fleet / "web-frontend" / "meminfo").write_bytes(b"MemTotal: lots kB\n\xff\xfe\x00garbage\n")
    log = fleet / "cache-node" / "kernlog"
    log.write_bytes(
        log.read_bytes()
        + f"[99999.000001] {PAYLOAD}: page allocation failure: order:0, mode:0x20\n".encode()
        + b"[99999.000002] \x1b[31m\xc3\x28 binary \x00 junk\n"
    )
    code, report, page = replay(tmp_path, fleet)

    assert code == 3  # mail-relay is still unreachable
    names = {d["name"] for d in report["domains"]}
    from xenaudit.audit import snapshot_hypervisors
    from xenaudit.hypervisor.snapshot import SnapshotSource

    listed = {
        d.name
        for spec in snapshot_hypervisors(fleet)
        for d in SnapshotSource(str(spec.snapshot_dir)).read().guests
    }
    assert names == listed and len(names) == 14
    # The bad section is reported with the domain and the source, and the audit went on.
    assert any(e.startswith("web-frontend: meminfo:") for e in report["errors"])
    web = next(d for d in report["domains"] if d["name"] == "web-frontend")
    assert web["recommendation"] is None or web["recommendation"]["change"] != "decrease"
    cache = next(d for d in report["domains"] if d["name"] == "cache-node")
    assert any(e.get("process") == PAYLOAD for e in cache["events"])
    # In the HTML the payload is text, never markup.
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_broken_snapshot_meta_is_reported_not_fatal(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET_DIR, fleet)
    (fleet / "monitor" / "meta.json").write_text("{not json")
    code, report, _page = replay(tmp_path, fleet)
    assert code == 3
    monitor = next(d for d in report["domains"] if d["name"] == "monitor")
    assert monitor["collection"]["status"] != "ok"
    assert "monitor" in (monitor["collection"]["error"] or "")
    others = [d for d in report["domains"] if d["name"] == "db-primary"]
    assert others[0]["collection"]["status"] == "ok"


def test_broken_cfg_index_is_reported_and_no_patch_is_made(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET_DIR, fleet)
    (fleet / "_cfg" / "index.json").write_text('{"xen-demo": ["not", "a", "table"]')
    code, report, _page = replay(tmp_path, fleet)
    assert code == 3
    assert any("unreadable cfg index" in e for e in report["errors"])
    for item in report["domains"]:
        assert item["config"]["memory_mib"] is None
        assert item["config"]["error"]
        assert item["patch"] is None
