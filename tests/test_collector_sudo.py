"""A non-root login whose sudo rule allows the reads that need root."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.standin import PROBE_USER, GuestSpec
from xenaudit.collector.ssh import SshCollector

pytestmark = pytest.mark.sshd


def test_sudo_reads_restricted_dmesg_and_slabinfo(standin_fleet, tmp_path: Path) -> None:
    if shutil.which("sudo") is None or not Path("/etc/sudoers").exists():
        pytest.fail("sudo is missing; scripts/test.sh installs it")
    # The guest's own sudoers, laid over /etc/sudoers inside its mount namespace only.
    sudoers = tmp_path / "sudoers"
    sudoers.write_text(
        f"Defaults !lecture\nroot ALL=(ALL:ALL) ALL\n{PROBE_USER} ALL=(root) NOPASSWD: ALL\n"
    )
    os.chmod(sudoers, 0o440)
    spec = GuestSpec(
        "sudoer", login_user=PROBE_USER, dmesg_restrict=1, binds={"/etc/sudoers": str(sudoers)}
    )
    fleet = standin_fleet(spec)
    snap = next(iter(SshCollector(fleet.settings()).collect(fleet.targets())))

    assert snap.status == "ok", snap.error
    assert snap.kernlog_source == "dmesg"
    assert snap.sections["kernlog"] == spec.kernlog
    assert snap.section_status["slabinfo"] == "ok"
    assert snap.sections["slabinfo"].startswith("slabinfo - version:")
