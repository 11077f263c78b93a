"""The run's two history stores share one way to open and one way to record a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from xenaudit.analysis.history import HistoryStore
from xenaudit.analysis.hypervisor_history import HypervisorHistory
from xenaudit.analysis.hypervisor_nights import HypervisorNight
from xenaudit.analysis.interface import HistoryNight
from xenaudit.analysis.sqlite_store import SqliteStore
from xenaudit.audit import AuditOptions
from xenaudit.audit_stores import opened_store, record_by_night
from xenaudit.inventory.interface import Inventory


def _hv_night(domid: int) -> HypervisorNight:
    return HypervisorNight(
        run_at="x",
        domid=domid,
        state="running",
        target_kib=1048576,
        held_kib=1048576,
        tools_total_kib=None,
        tools_free_kib=None,
        tools_source=None,
        feature_balloon=True,
    )


def _guest_night(available_kib: int) -> HistoryNight:
    return HistoryNight(
        run_at="x",
        mem_total_kib=1048576,
        mem_available_kib=available_kib,
        swap_used_kib=0,
        pswpin=0,
        pgmajfault=0,
        oom_kill_counter=0,
        psi_some_avg60=0.0,
        page_alloc_failures=0,
        oom_kills=0,
    )


def test_a_row_the_hypervisor_store_refuses_costs_only_its_domain(tmp_path: Path) -> None:
    """A night's transaction that fails is recorded row by row, as the guest history does."""
    errors: list[str] = []
    with HypervisorHistory.open(tmp_path) as store:
        rows = [
            ("2026-11-24T02:31:00Z", "dom0a", "good", _hv_night(3)),
            ("2026-11-24T02:31:00Z", "dom0a", "bad", _hv_night(2**70)),
            ("2026-11-25T02:31:00Z", "dom0a", "good", _hv_night(3)),
        ]
        record_by_night(store.record_run, rows, "hypervisor-side history", errors)
        assert [n.run_at for n in store.nights("dom0a", "good")] == [
            "2026-11-24T02:31:00Z",
            "2026-11-25T02:31:00Z",
        ]
        assert store.nights("dom0a", "bad") == ()
    assert len(errors) == 1
    assert errors[0].startswith("dom0a/bad: hypervisor-side history: not recorded: ")


def test_a_row_the_guest_history_refuses_costs_only_its_domain(tmp_path: Path) -> None:
    errors: list[str] = []
    with HistoryStore.open(tmp_path) as store:
        rows = [
            ("2026-11-24T02:31:00Z", "dom0a", "good", _guest_night(500000)),
            ("2026-11-24T02:31:00Z", "dom0a", "bad", _guest_night(2**70)),
        ]
        record_by_night(store.record_run, rows, "history", errors)
        assert len(store.nights("dom0a", "good")) == 1
        assert store.nights("dom0a", "bad") == ()
    assert [e.split(": not recorded")[0] for e in errors] == ["dom0a/bad: history"]


def test_a_broken_store_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    options = AuditOptions(outdir=tmp_path / "out", state_dir=tmp_path)
    inventory = Inventory(path="inventory.toml", hypervisors=())
    openers: tuple[tuple[Callable[[Path], SqliteStore], str], ...] = (
        (HistoryStore.open, "history"),
        (HypervisorHistory.open, "hypervisor-side history"),
    )
    for opener, label in openers:
        file_name = "history.sqlite3" if label == "history" else "hypervisor-nights.sqlite3"
        (tmp_path / file_name).write_bytes(b"not sqlite at all" * 100)
        errors: list[str] = []
        with opened_store(opener, label, inventory, options, errors) as store:
            assert store is None
        assert len(errors) == 1 and errors[0].startswith(f"{label}: {tmp_path}")
        assert "left untouched" in errors[0]


def test_the_demo_keeps_its_stores_out_of_the_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    options = AuditOptions(outdir=tmp_path / "out", demo=True)
    inventory = Inventory(path="inventory.toml", hypervisors=(), state_dir=str(state))
    seeded: list[Path] = []
    with opened_store(
        HypervisorHistory.open,
        "hypervisor-side history",
        inventory,
        options,
        [],
        seed=lambda store: seeded.append(store.path),
    ) as store:
        assert store is not None and seeded == [store.path]
        assert not store.path.is_relative_to(state)
    assert not state.exists()
