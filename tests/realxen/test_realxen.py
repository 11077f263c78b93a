"""xenaudit against a real Xen 4.17: audit, patch, live resize and boot real PV domains.

Every expected number here is read from the hypervisor (`xl list -l`, `xl info`,
xenstore) or from the guests at the same moment, never written down in advance.
The fleet (scripts/realxen/fleet.tsv): healthy, squeezed (ballooned down under a
memory hog until the kernel OOM-kills), drifted (`xl mem-set` away from its cfg),
parked (only a cfg, never started) and burst (started first, for a real page
allocation failure, and destroyed before the rest).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import xenaudit
from tests.realxen import scenario
from tests.realxen.machine import RealXen, read_fleet
from xenaudit.parsers.kernpatterns import MARKERS_BYTES

pytestmark = [pytest.mark.realxen, pytest.mark.slow]

FLEET = read_fleet()
RUNNING = [g.name for g in FLEET.values() if g.start == "boot"]
STATE_OF_FLAG = {"r": "running", "b": "blocked", "p": "paused"}


def _state(flags: str) -> str:
    """The state xenaudit should report for `xl list` flags (running guests only)."""
    for flag in flags:
        if flag in STATE_OF_FLAG:
            return STATE_OF_FLAG[flag]
    return "running"  # "------": on a CPU right now and between states


def _b_info(truth: scenario.HypervisorTruth, name: str) -> dict[str, Any]:
    info: dict[str, Any] = truth.domains[name]["config"]["b_info"]
    return info


def test_xenaudit_in_dom0_is_the_wheel_of_this_checkout(realxen: RealXen) -> None:
    version = realxen.run("xenaudit --version").stdout
    assert xenaudit.__version__ in version
    where = realxen.run("/opt/xenaudit/bin/python -c 'import xenaudit; print(xenaudit.__file__)'")
    assert where.stdout.startswith("/opt/xenaudit/lib/python3.11/site-packages/xenaudit/")
    # Offline install: Dom0 has no route out of the emulated machine.
    assert realxen.run("ip route get 1.1.1.1", check=False).returncode != 0


CPU_CHECK = """
import json
from xenaudit.parsers import markers
from xenaudit.parsers.kernpatterns import MARKERS_BYTES

line = b"<4>[ 12.5] kernel: " + b" ".join(MARKERS_BYTES) + b"\\n"
buf = (b"x" * 80 + b"\\n") * 50_000 + line * 300
fast = markers.backend()
print(json.dumps({
    "name": fast.name,
    "same_hits": fast.find(buf, 0, len(buf)) == markers.BYTES.find(buf, 0, len(buf)),
    "lines": fast.count(buf, 0, len(buf)),
    "hits": len(fast.find(buf, 0, len(buf))),
}))
"""


def test_the_kernel_log_scanner_runs_on_the_emulated_cpu(realxen: RealXen) -> None:
    """QEMU's qemu64 CPU has SSE3 but no SSSE3 or later, like old Opteron hosts:
    a SIMD library built for newer CPUs dies there with SIGILL rather than raising.
    StringZilla picks its code at run time, so it must load and agree with bytes.find."""
    flags = realxen.run("grep -m1 '^flags' /proc/cpuinfo").stdout.split()
    assert "ssse3" not in flags  # otherwise this test proves nothing
    out = realxen.run("/opt/xenaudit/bin/python -", stdin=CPU_CHECK.encode()).stdout
    result = json.loads(out)
    assert result["name"] == "stringzilla"
    assert result["same_hits"] is True
    assert result["lines"] == 50_300
    assert result["hits"] == 300 * len(MARKERS_BYTES)


def test_a_real_page_allocation_failure_within_a_minute(burst: scenario.Burst) -> None:
    if not burst.failure_lines:
        # A race, not a bug (see scenario.burst): the diagnosis of a real failure of this
        # kind is still asserted on the recorded one (tests/test_realxen_recordings.py).
        pytest.skip(
            f"{scenario.FLOOD_ROUNDS} floods provoked no page allocation failure this run "
            f"({burst.flood_output}; {burst.ping_output.strip()})"
        )
    seconds = burst.seconds_to_first_failure()
    assert seconds is not None and 0 < seconds <= 60, seconds
    first_line = burst.failure_lines[0]
    pattern = r"page allocation failure: order:0, mode:0x[0-9a-f]+\(GFP_ATOMIC\)"
    assert re.search(pattern, first_line), first_line
    entry = next(d for d in burst.report["domains"] if d["name"] == "burst")
    findings = {f["code"]: f for f in entry["findings"]}
    assert "atomic_reserve" in findings, entry["diagnosis"]
    message = first_line.split("] ", 1)[1]
    quoted = [e["text"] for e in findings["atomic_reserve"]["evidence"]]
    assert any(message in text for text in quoted), quoted


def test_the_hypervisor_is_xen_4_17_with_pv_guests(first: scenario.FirstAudit) -> None:
    info = first.truth.info
    assert info["xen_version"].startswith("4.17.")
    for name in RUNNING:
        assert first.truth.domains[name]["config"]["c_info"]["type"] == "pv"
    assert "parked" not in first.truth.domains  # shut off: xl does not list it


def test_domains_json_agrees_with_xl_and_xenstore(first: scenario.FirstAudit) -> None:
    truth = first.truth
    assert first.domains_rc == 0
    host = first.domains["hosts"][0]
    assert host["error"] is None
    assert host["total_memory_kib"] == int(truth.info["total_memory"]) * 1024
    assert host["free_memory_kib"] == int(truth.info["free_memory"]) * 1024
    for name in RUNNING:
        listed = first.listed_domain(name)
        b_info = _b_info(truth, name)
        domid = truth.domains[name]["domid"]
        assert listed["domid"] == domid
        assert listed["guest_type"] == "pv"
        assert listed["target_kib"] == b_info["target_memkb"] == truth.memory_node(domid, "target")
        assert listed["max_kib"] == b_info["max_memkb"] == truth.memory_node(domid, "static-max")
        # Idle guests flip between running and blocked from one xl call to the next.
        assert listed["state"] in ("running", "blocked")
        assert _state(truth.states[name]) in ("running", "blocked")
        assert listed["cfg_path"] == f"/etc/xen/{name}.cfg"
    # Drift: the two `xl mem-set`s show, the untouched guest has none.
    assert first.listed_domain("healthy")["drift"] == []
    drifted = " ".join(first.listed_domain("drifted")["drift"])
    assert "192 MiB" in drifted and "256 MiB" in drifted
    squeezed = " ".join(first.listed_domain("squeezed")["drift"])
    assert "128 MiB" in squeezed and "192 MiB" in squeezed


def test_a_domain_with_only_a_cfg_is_listed_shut_off(first: scenario.FirstAudit) -> None:
    parked = FLEET["parked"]
    listed = first.listed_domain("parked")
    assert listed["state"] == "shutoff"
    assert listed["domid"] is None
    assert listed["cfg_path"] == parked.cfg_path
    assert listed["target_kib"] == parked.memory_mib * 1024
    # Debian's /etc/xen/xlexample.* files are examples, not domains.
    names = {d["name"] for d in first.domains["hosts"][0]["domains"]}
    assert not any(name.startswith("example") for name in names)


def test_report_agrees_with_the_hypervisor(first: scenario.FirstAudit) -> None:
    truth = first.truth
    host = first.report["hosts"][0]
    assert host["backend"] == "xl"
    assert host["total_memory_kib"] == int(truth.info["total_memory"]) * 1024
    assert host["free_memory_kib"] == int(truth.info["free_memory"]) * 1024
    assert host["xen_version"] == truth.info["xen_version"]
    dom0_memkb = _b_info(truth, "Domain-0")["max_memkb"]
    assert host["dom0_mem_kib"] == dom0_memkb
    for name in RUNNING:
        entry = first.report_domain(name)
        b_info = _b_info(truth, name)
        domid = truth.domains[name]["domid"]
        assert entry["domid"] == domid
        assert entry["uuid"] == truth.domains[name]["config"]["c_info"]["uuid"]
        assert entry["live"]["target_kib"] == b_info["target_memkb"]
        assert entry["live"]["max_kib"] == b_info["max_memkb"]
        assert entry["live"]["target_kib"] == truth.memory_node(domid, "target")
        assert entry["state"] == _state(scenario.xl_list_states(first.audit_xl_list)[name])
        assert entry["config"]["memory_mib"] == FLEET[name].memory_mib
        assert entry["config"]["maxmem_mib"] == FLEET[name].maxmem_mib
        # The guest's own balloon driver agrees with Xen's target.
        assert entry["balloon"]["target_kib"] == b_info["target_memkb"]


def test_the_shut_off_domain_counts_in_the_host_plan(first: scenario.FirstAudit) -> None:
    parked = first.report_domain("parked")
    assert parked["state"] == "shutoff"
    assert parked["collection"]["status"] != "ok"
    plan = first.report["hosts"][0]["plan"]
    entries = {e["domain"]: e for e in plan["entries"]}
    assert entries["parked"]["current_mib"] == FLEET["parked"].memory_mib
    assert any("parked" in note for note in plan["notes"])


def test_every_running_guest_was_read_over_ssh(first: scenario.FirstAudit) -> None:
    assert first.audit_rc == 1, first.audit_output  # findings, nothing unreadable
    for name in RUNNING:
        collection = first.report_domain(name)["collection"]
        assert collection["status"] == "ok", collection
        assert collection["kernlog_source"] == "dmesg"
        assert set(collection["sections"].values()) == {"ok"}, collection["sections"]


def test_the_oom_killed_guest_is_a_shortage_with_the_kill_quoted(
    first: scenario.FirstAudit,
) -> None:
    assert "memhog-exit=137" in first.oom_output  # SIGKILL from the OOM killer
    kill_line = next(
        line for line in first.oom_dmesg.splitlines() if "Out of memory: Killed process" in line
    )
    message = kill_line.split("] ", 1)[1]
    entry = first.report_domain("squeezed")
    assert entry["severity"] == "critical"
    findings = {f["code"]: f for f in entry["findings"]}
    assert "shortage" in findings
    quoted = [e["text"] for e in findings["shortage"]["evidence"]]
    assert any(message in text for text in quoted), quoted
    rec = entry["recommendation"]
    assert rec["change"] == "increase"
    assert rec["memory_mib"] > FLEET["squeezed"].memory_mib
    assert rec["maxmem_mib"] >= rec["memory_mib"]
    assert f"+memory  = {rec['memory_mib']}" in first.patch
    assert f"-memory  = {FLEET['squeezed'].memory_mib}" in first.patch


def test_healthy_and_drifted_guests(first: scenario.FirstAudit) -> None:
    healthy = first.report_domain("healthy")
    assert healthy["severity"] == "ok"
    assert healthy["recommendation"]["change"] == "none"
    assert healthy["patch"] is None
    drifted = first.report_domain("drifted")
    codes = {f["code"] for f in drifted["findings"]}
    assert "drift" in codes
    assert drifted["patch"] is None  # the cfg is right; the live target moved


def test_largest_processes_come_from_the_whole_busybox_process_list(
    first: scenario.FirstAudit,
) -> None:
    # busybox ps cannot sort; the 24 MiB service has a pid far past the kernel threads.
    top = first.report_domain("healthy")["top_processes"]
    assert top[0]["comm"] == "memhog"
    assert str(top[0]["pid"]) == first.hog_pid
    assert top[0]["rss_kib"] >= 24 * 1024


def _held_mib(texts: list[str]) -> float:
    held = next(t for t in texts if t.startswith("holds "))
    found = re.match(r"holds ([\d,.]+) (MiB|GiB)", held)
    assert found, held
    value = float(found[1].replace(",", ""))
    return value * 1024 if found[2] == "GiB" else value


def test_judged_from_dom0_alone_the_moved_balloon_is_seen(from_dom0: scenario.FromDom0) -> None:
    assert from_dom0.rc in (0, 1), from_dom0.output[-3000:]
    domid = from_dom0.truth.domains["drifted"]["domid"]
    assert from_dom0.truth.memory_node(domid, "target") == scenario.MOVED_TO_MIB * 1024
    drifted = from_dom0.report_domain("drifted")
    assert drifted["collection"]["status"] == "skipped"
    findings = {f["code"]: f for f in drifted["findings"]}
    texts = [e["text"] for e in findings["hypervisor_side"]["evidence"]]
    assert f"target {scenario.MOVED_TO_MIB} MiB (xenstore memory/target)" in texts
    # xentop's MEM(k) is what the guest holds: the balloon driver reached the target.
    assert abs(_held_mib(texts) - scenario.MOVED_TO_MIB) <= 1, texts
    # Linux 6.1 writes control/feature-balloon in HVM guests only: a PV guest never has
    # it, and the report says nothing about it rather than "not 1".
    assert f"/local/domain/{domid}/control/feature-balloon" not in from_dom0.truth.xenstore
    assert not [t for t in texts if "feature-balloon" in t], texts
    assert "balloon_stuck" not in findings
    drift = " ".join(e["text"] for e in findings["drift"]["evidence"])
    assert f"{scenario.MOVED_TO_MIB} MiB" in drift and "256 MiB" in drift
    # From Dom0 alone memory is never lowered, and nothing here sizes it up.
    assert drifted["recommendation"] is None or drifted["recommendation"]["change"] != "decrease"


def test_judged_from_dom0_alone_no_guest_is_logged_into(from_dom0: scenario.FromDom0) -> None:
    for name in RUNNING:
        entry = from_dom0.report_domain(name)
        assert entry["collection"]["status"] == "skipped", (name, entry["collection"])
        assert "hypervisor_side" in {f["code"] for f in entry["findings"]}, name
    files = from_dom0.guest_files.split()
    assert not [f for f in files if f.endswith(("/meminfo", "/kernlog"))], files


def test_apply_live_changes_the_real_target_and_maxmem(
    first: scenario.FirstAudit, applied: scenario.LiveApply
) -> None:
    rec = first.report_domain("squeezed")["recommendation"]
    assert applied.rc == 0, applied.output
    before = applied.before["config"]["b_info"]
    after = _b_info(applied.truth, "squeezed")
    domid = applied.truth.domains["squeezed"]["domid"]
    assert before["max_memkb"] == FLEET["squeezed"].maxmem_mib * 1024
    assert after["max_memkb"] == rec["maxmem_mib"] * 1024
    assert applied.truth.memory_node(domid, "static-max") == rec["maxmem_mib"] * 1024
    # The target goes to the new memory, but never past what the domain booted with.
    boot_max = FLEET["squeezed"].maxmem_mib
    expected_target = min(rec["memory_mib"], boot_max) * 1024
    assert after["target_memkb"] == expected_target
    assert applied.truth.memory_node(domid, "target") == expected_target
    text = applied.cfg_after.decode()
    assert re.search(rf"^memory\s*=\s*{rec['memory_mib']}$", text, re.M)
    assert re.search(rf"^maxmem\s*=\s*{rec['maxmem_mib']}$", text, re.M)


def test_a_running_pv_guest_cannot_grow_past_its_boot_maximum(
    first: scenario.FirstAudit, applied: scenario.LiveApply
) -> None:
    """Why apply --live stops the target at the boot-time maximum."""
    rec = first.report_domain("squeezed")["recommendation"]
    probe = applied.beyond_boot_max
    assert probe["rc"] == "0", probe  # libxl accepts it: mem-max raised static-max
    assert int(probe["guest_target_kb"]) == rec["maxmem_mib"] * 1024
    assert int(probe["guest_current_kb"]) == FLEET["squeezed"].maxmem_mib * 1024
    assert int(probe["xl_list_mem_mib"]) == FLEET["squeezed"].maxmem_mib


def test_the_patched_cfg_boots_with_the_new_size(
    first: scenario.FirstAudit, recreated: scenario.Recreated
) -> None:
    rec = first.report_domain("squeezed")["recommendation"]
    b_info = recreated.domain["config"]["b_info"]
    assert b_info["target_memkb"] == rec["memory_mib"] * 1024
    assert b_info["max_memkb"] == rec["maxmem_mib"] * 1024
    target_kb, current_kb = (int(v) for v in recreated.guest_balloon.split())
    assert target_kb == rec["memory_mib"] * 1024
    assert current_kb == rec["memory_mib"] * 1024
    mem_total = int(re.search(r"^MemTotal:\s+(\d+) kB", recreated.guest_meminfo, re.M)[1])  # type: ignore[index]
    assert mem_total > first.report_domain("squeezed")["meminfo_kib"]["MemTotal"]


def test_undo_restores_the_cfg_byte_for_byte(
    applied: scenario.LiveApply, undone: scenario.Undone
) -> None:
    assert undone.rc == 0, undone.output
    assert applied.cfg_after != applied.cfg_before
    assert undone.cfg == applied.cfg_before


def test_failure_output_names_the_serial_log_and_xl_dmesg(realxen: RealXen) -> None:
    text = realxen.diagnostics()
    assert "--- serial log" in text
    assert "(XEN)" in text  # Xen's own boot messages on the serial console
    assert "--- Dom0: xl dmesg" in text
