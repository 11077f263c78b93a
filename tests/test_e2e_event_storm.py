"""A guest that prints a storm of reports: counted in full, quoted in part, memory bounded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.replaying import replay_audit, report_of
from tests.test_inventory import write
from xenaudit.demo import FLEET_DIR
from xenaudit.inventory.interface import InventoryError
from xenaudit.inventory.toml import load_inventory
from xenaudit.parsers.guest import parse_guest


def _storm(reports: int) -> str:
    """The demo web-frontend's own failure report, printed again and again."""
    lines = (FLEET_DIR / "web-frontend" / "kernlog").read_text().splitlines()
    heads = [i for i, line in enumerate(lines) if "page allocation failure" in line]
    body = [line.partition("] ")[2] for line in lines[heads[0] : heads[1]]]
    out = []
    for n in range(reports):
        out.extend(f"[{5000 + n:6d}.{n % 999999:06d}] {text}" for text in body)
    return "\n".join(out) + "\n"


def test_a_storm_is_counted_exactly_and_quoted_in_part(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET_DIR, fleet)
    log = fleet / "cache-node" / "kernlog"
    before = log.read_text()
    log.write_text(before + _storm(400))
    out = tmp_path / "out"
    replay_audit(fleet, out, tmp_path / "state")
    report = report_of(out)
    cache = next(d for d in report["domains"] if d["name"] == "cache-node")
    counts = cache["event_counts"]
    plain = parse_guest({"kernlog": before}, keep_events=None).kernlog
    assert plain is not None and plain.counts is not None
    assert counts["by_kind"]["page_alloc_failure"] == plain.counts.page_alloc_failures + 400
    kept = [e for e in cache["events"] if e["kind"] == "page_alloc_failure"]
    assert len(kept) == 2 * counts["keep_per_kind"] == 20
    assert counts["events_total"] > counts["events_kept"] == len(cache["events"])
    # The newest failure is among those kept: the storm's last report.
    assert kept[-1]["line"] == max(e["line"] for e in kept)
    assert kept[-1]["timestamp"].startswith("5399.")
    # The page shows the exact total, not the kept number.
    page = (out / "report.html").read_text()
    assert str(counts["by_kind"]["page_alloc_failure"]) in page
    # So do the findings: the storm's 400 atomic failures, 5 of them quoted.
    atomic = next(f for f in cache["findings"] if f["code"] == "atomic_reserve")
    assert atomic["detail"].startswith("400 order-0 allocation(s) that could not wait")
    assert atomic["evidence"][0]["text"] == "5 of 400 failure reports shown, the newest"
    assert "5 of 400 failure reports shown" in page


def test_keep_events_comes_from_the_inventory(tmp_path: Path) -> None:
    base = '[[hypervisor]]\nname = "a"\n[ssh]\n'
    inventory = load_inventory(write(tmp_path, base + "kernlog_keep_events = 3\n"))
    assert inventory.ssh.kernlog_keep_events == 3
    assert load_inventory(write(tmp_path, base)).ssh.kernlog_keep_events == 10
    for bad in ("0", "-1", "1000001", '"ten"'):
        with pytest.raises(InventoryError) as caught:
            load_inventory(write(tmp_path, base + f"kernlog_keep_events = {bad}\n"))
        assert caught.value.key == "ssh.kernlog_keep_events"
    facts = parse_guest({"kernlog": _storm(50)}, keep_events=3)
    assert facts.kernlog is not None and facts.kernlog.counts is not None
    assert facts.kernlog.counts.page_alloc_failures == 50
    assert len(facts.kernlog.events) == 6
