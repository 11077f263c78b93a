"""Where the kernel log comes from when dmesg fails or has nothing to say."""

from __future__ import annotations

import pytest

from tests.standin import GuestSpec
from xenaudit.collector.ssh import SshCollector

pytestmark = pytest.mark.sshd

KERN_LOG = (
    "2026-11-25T10:00:00.123456+00:00 web01 kernel: [ 8812.3] swapper/0: page allocation "
    "failure: order:0, mode:0x20\n"
)


def collect_one(standin_fleet, spec: GuestSpec):
    fleet = standin_fleet(spec)
    (snap,) = SshCollector(fleet.settings(), global_known_hosts=None, use_agent=False).collect(
        fleet.targets()
    )
    return snap


def test_failing_dmesg_falls_back_to_the_journal(standin_fleet) -> None:
    spec = GuestSpec(
        "nodmesg",
        dmesg_script="echo 'dmesg: read kernel buffer failed: Operation not permitted' >&2; exit 1",
    )
    snap = collect_one(standin_fleet, spec)
    assert snap.status == "ok", snap.error
    assert snap.kernlog_source == "journalctl"
    assert snap.section_status["kernlog"] == "ok"
    assert snap.sections["kernlog"] == spec.kernlog


def test_empty_dmesg_and_journal_fall_back_to_kern_log(standin_fleet) -> None:
    spec = GuestSpec(
        "cleared", dmesg_script="exit 0", journalctl_script="exit 0", kern_log=KERN_LOG
    )
    snap = collect_one(standin_fleet, spec)
    assert snap.status == "ok", snap.error
    assert snap.kernlog_source == "kern.log"
    assert snap.sections["kernlog"] == KERN_LOG


def test_an_empty_log_everywhere_is_an_empty_log_not_an_error(standin_fleet) -> None:
    spec = GuestSpec("quiet", dmesg_script="exit 0", journalctl_script="exit 0")
    snap = collect_one(standin_fleet, spec)
    assert snap.status == "ok", snap.error
    assert snap.section_status["kernlog"] == "ok"
    assert snap.sections.get("kernlog", "") == ""
