"""Hypervisor-side reads through fake xl/xentop/xenstore tools on PATH: one batch per Dom0.

The real corpus outputs are replayed verbatim by the fakes; the recorded
hosts (tests/fake_xl/recordings/*/NOTES say what is constructed) serve
xenstore-ls and xenstore-read from one recorded store, like xenstored.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fake_xl.support import copy_recording, use_fake_xl, write_command
from xenaudit.hypervisor.signals import (
    RAW_SIGNAL_ERRORS,
    RAW_XEN_DMESG,
    RAW_XENSTORE,
    RAW_XENSTORE_REREAD,
    RAW_XENTOP,
)
from xenaudit.hypervisor.snapshot import SnapshotSource, save_host_snapshot
from xenaudit.hypervisor.xendmesg_parse import DomainCrashed
from xenaudit.hypervisor.xl import XlSource
from xenaudit.inventory.interface import HypervisorSpec


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "calls.log"
    monkeypatch.setenv("XENAUDIT_FAKE_XL_LOG", str(log))
    return log


def _spec(recording: Path) -> HypervisorSpec:
    return HypervisorSpec(name="dom0a", cfg_dir=str(recording / "etc-xen"))


def test_real_outputs_replayed_through_the_tools(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch, calls: Path
) -> None:
    recording = copy_recording("host_a", tmp_path)
    shutil.copy(
        corpus / "xenstore_ls_fp_arm_petalinux_mailwrapped.txt", recording / "xenstore-ls.out"
    )
    shutil.copy(corpus / "xentop_xen4.9.2_batch.txt", recording / "xentop.out")
    shutil.copy(
        corpus / "xendmesg_xen4.14.3_passthrough_reported_crashed.log", recording / "dmesg.out"
    )
    use_fake_xl(monkeypatch, recording)
    view = XlSource(_spec(recording), signals=True).read()
    signals = view.signals
    assert signals is not None and signals.sources == ("xenstore-ls", "xentop", "xl dmesg")
    assert signals.xenstore[2].target_kib == 1048577 and signals.xenstore[2].name == "guest1"
    assert signals.xentop is not None and signals.xentop.match("guest-01").mem_kib == 1048576  # type: ignore[union-attr]
    assert signals.log is not None
    (crash,) = signals.log.events
    assert isinstance(crash, DomainCrashed) and crash.domid == 1
    # The mail-wrapped listing is read as far as it goes, and the view says what was skipped.
    assert any("22 lines" in w for w in view.warnings)
    # One read per tool for the whole Dom0, not one per key or domain.
    logged = calls.read_text().splitlines()
    assert logged.count("xenstore-ls -f /local/domain") == 1
    assert sum(1 for line in logged if line.startswith("xentop")) == 1
    assert logged.count("dmesg") == 1
    assert not any(line.startswith("xenstore-read") for line in logged)


def test_recorded_store_answers_like_xenstored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path
) -> None:
    recording = copy_recording("host_signals", tmp_path)
    use_fake_xl(monkeypatch, recording)
    view = XlSource(_spec(recording), signals=True).read()
    assert view.signals is not None
    db = view.signals.for_domain("db", 4)
    assert db.xenstore is not None and db.xenstore.agent_free_kib == 61220
    assert db.xentop is not None and db.xentop.mem_kib == 786432
    assert db.events == ()  # the forged "(d2) ... Domain 4 crashed" line is guest text
    winhvm = view.signals.for_domain("winhvm", 6)
    assert winhvm.xenstore is not None and winhvm.xenstore.videoram_kib == 8192
    assert winhvm.xenstore.feature_balloon is None
    assert view.raw[RAW_XENSTORE].startswith('/local/domain/0 = ""\n')


def test_old_xenstore_tools_tree_fallback_and_uncut_re_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path
) -> None:
    recording = copy_recording("host_xm", tmp_path)
    (recording / "xenstore.old").write_text("")
    use_fake_xl(monkeypatch, recording)
    from xenaudit.hypervisor.xm import XmSource

    view = XmSource(
        HypervisorSpec(name="ovm", backend="xm", cfg_dir=str(recording / "etc-xen")), signals=True
    ).read()
    logged = calls.read_text().splitlines()
    assert "xenstore-ls -f /local/domain" in logged and "xenstore-ls /local/domain" in logged
    (reread,) = [line for line in logged if line.startswith("xenstore-read")]
    assert reread == "xenstore-read -p /local/domain/1/memory/meminfo"
    assert RAW_XENSTORE_REREAD in view.raw
    assert view.signals is not None
    meminfo = view.signals.xenstore[1].balloond_meminfo
    assert meminfo is not None and meminfo.endswith("Committed_AS:    2821004 kB")
    assert view.signals.xenstore[1].truncated == ()


def test_xentop_without_full_names_is_retried_without_f(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path
) -> None:
    recording = copy_recording("host_signals", tmp_path)
    (recording / "xentop.no-f").write_text("")
    use_fake_xl(monkeypatch, recording)
    view = XlSource(_spec(recording), signals=True).read()
    tops = [line for line in calls.read_text().splitlines() if line.startswith("xentop")]
    assert tops == ["xentop -b -f -i 2 -d 1", "xentop -b -i 2 -d 1"]
    assert RAW_XENTOP in view.raw and RAW_SIGNAL_ERRORS not in view.raw


def test_missing_tools_leave_the_host_readable_with_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path
) -> None:
    recording = copy_recording("host_signals", tmp_path)
    (recording / "xenstore.store").unlink()
    (recording / "xentop.out").unlink()
    write_command(recording, "dmesg", err="libxl: error: cannot read console ring\n", rc=1)
    use_fake_xl(monkeypatch, recording)
    view = XlSource(_spec(recording), signals=True).read()
    assert [d.name for d in view.guests] == ["web", "db", "pvhguest", "winhvm"]
    failures = view.raw[RAW_SIGNAL_ERRORS].splitlines()
    assert len(failures) == 3
    assert any("xenstore-ls -f /local/domain (local)" in f for f in failures)
    assert any("cannot read console ring" in f for f in failures)
    assert sum("hypervisor-side read failed" in w for w in view.warnings) == 3
    assert view.signals is not None and view.signals.sources == ()


def test_signals_are_not_read_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path
) -> None:
    recording = copy_recording("host_signals", tmp_path)
    use_fake_xl(monkeypatch, recording)
    view = XlSource(_spec(recording)).read()
    assert view.signals is None
    assert calls.read_text().splitlines() == ["info", "list", "list -l"]


def test_a_replayed_snapshot_has_the_same_signals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path
) -> None:
    recording = copy_recording("host_signals", tmp_path)
    write_command(recording, "dmesg", err="denied\n", rc=1)
    use_fake_xl(monkeypatch, recording)
    live = XlSource(_spec(recording), signals=True).read()
    save_host_snapshot(live, tmp_path / "snap", "2026-11-25T02:31:07Z")
    replayed = SnapshotSource(tmp_path / "snap").read()
    assert replayed.signals == live.signals
    assert replayed.warnings == live.warnings
    assert RAW_XEN_DMESG not in replayed.raw
