"""Fixtures of the real-Xen suite: one machine per run, and the fleet's story in order.

The machine (QEMU with Xen 4.17, Dom0 and three DomUs) is booted once for the
package and stopped when its last test is done, so it never runs beside the rest
of the suite. Each later step is a fixture that needs the one before it, so a
single selected test still gets everything it depends on.

A failing test gets the serial console's tail and Dom0's `xl dmesg` in its report.
Setting XENAUDIT_REALXEN_RECORD=DIR copies the raw recordings of the run to DIR
(that is how tests/fake_xl/recordings/realxen_4.17 was made).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.realxen import scenario
from tests.realxen.install import REPORTS, build_wheels, install
from tests.realxen.machine import (
    RealXen,
    build_images,
    environment_problem,
    read_fleet,
)

_RUNNING: list[RealXen] = []
TIMINGS: dict[str, float] = {}
QEMU_RSS_MIB: list[int] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and _RUNNING and item.get_closest_marker("realxen"):
        report.sections.append(
            ("real Xen: serial console and Dom0's xl dmesg", _RUNNING[-1].diagnostics())
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        listed = ", ".join(f"{k} {v:.0f} s" for k, v in TIMINGS.items())
        terminalreporter.write_line(f"real Xen timings: {listed}")
    if QEMU_RSS_MIB:
        terminalreporter.write_line(f"real Xen: QEMU resident memory {QEMU_RSS_MIB[-1]} MiB")


@contextmanager
def _timed(name: str) -> Iterator[None]:
    """Records how long the block took under `name` (printed at the end of the run)."""
    started = time.monotonic()
    yield
    TIMINGS[name] = time.monotonic() - started


@pytest.fixture(scope="package")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("realxen")


@pytest.fixture(scope="package")
def realxen(workdir: Path) -> Iterator[RealXen]:
    """Images built (or found cached), QEMU booted, DomUs up, xenaudit installed in Dom0."""
    problem = environment_problem()
    if problem:
        pytest.fail(problem)
    with _timed("build"):
        images = build_images(workdir / "build.log")
    with _timed("wheels"):
        wheels = build_wheels(workdir / "wheels")
    machine = RealXen(images, workdir / "vm")
    _RUNNING.append(machine)
    try:
        with _timed("boot to Dom0 ssh"):
            machine.boot()
        with _timed("DomUs up"):
            boot = [g.name for g in read_fleet().values() if g.start == "boot"]
            machine.wait_for_guests(boot)
        with _timed("install"):
            install(machine, wheels)
        yield machine
    finally:
        rss = machine.qemu_rss_mib()
        if rss is not None:
            QEMU_RSS_MIB.append(rss)
        machine.stop()
        _RUNNING.remove(machine)
        (workdir / "timings.json").write_text(json.dumps(TIMINGS, indent=1))
        record = os.environ.get("XENAUDIT_REALXEN_RECORD")
        recordings = workdir / "recordings"
        if record and recordings.is_dir():
            shutil.rmtree(record, ignore_errors=True)
            shutil.copytree(recordings, record)


@pytest.fixture(scope="package")
def first(realxen: RealXen, workdir: Path) -> scenario.FirstAudit:
    with _timed("first audit"):
        result = scenario.first_audit(realxen)
    with _timed("recordings"):
        recordings = workdir / "recordings"
        scenario.capture(realxen, ["healthy", "squeezed", "drifted"], recordings)
        scenario.fetch_folder(realxen, f"{REPORTS}/first/snapshots", recordings / "audit-snapshots")
    return result


@pytest.fixture(scope="package")
def from_dom0(realxen: RealXen, first: scenario.FirstAudit) -> scenario.FromDom0:
    with _timed("audit from Dom0 alone"):
        result = scenario.audit_from_dom0(realxen)
    return result


@pytest.fixture(scope="package")
def applied(realxen: RealXen, first: scenario.FirstAudit) -> scenario.LiveApply:
    with _timed("apply --live"):
        result = scenario.live_apply(realxen, first)
        rec = first.report_domain("squeezed")["recommendation"]
        result.beyond_boot_max = scenario.probe_beyond_boot_max(
            realxen, rec["maxmem_mib"], rec["memory_mib"]
        )
    return result


@pytest.fixture(scope="package")
def recreated(realxen: RealXen, applied: scenario.LiveApply) -> scenario.Recreated:
    with _timed("shutdown + create"):
        result = scenario.recreate(realxen)
    return result


@pytest.fixture(scope="package")
def undone(
    realxen: RealXen, first: scenario.FirstAudit, recreated: scenario.Recreated
) -> scenario.Undone:
    with _timed("apply --undo"):
        result = scenario.undo(realxen, first)
    return result


@pytest.fixture(scope="package")
def burst(realxen: RealXen, workdir: Path) -> scenario.Burst:
    """First, on a fresh host: the burst guest is created, flooded, audited (with a
    history of its own) and destroyed before the nightly story begins. How often a
    flood provokes the failure varies from run to run (see README: the real-Xen suite),
    so the test that needs one skips, saying so, when none of its floods did."""
    with _timed("page allocation failure attempt"):
        result = scenario.burst(realxen, read_fleet()["burst"].ip)
    scenario.capture(realxen, ["burst"], workdir / "recordings", hypervisor=False)
    if result.failure_lines:  # the audit that saw it, for the fast tests to replay
        scenario.fetch_folder(
            realxen, f"{REPORTS}/burst/snapshots", workdir / "recordings" / "burst-audit-snapshots"
        )
    realxen.run("xl destroy burst")
    return result
