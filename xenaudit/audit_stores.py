"""The run's two history stores: where they live, how they are opened, how a run is recorded.

The guest history and the hypervisor-side nights sit in the same state
directory (a throw-away one for the demo). A store that cannot be opened is
reported and the audit goes on without it; a run is recorded one
transaction per night, and a row the store refuses costs only its domain.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from xenaudit.analysis.sqlite_store import SqliteStore, StoreError
from xenaudit.inventory.interface import Inventory

if TYPE_CHECKING:
    from xenaudit.audit import AuditOptions

Store = TypeVar("Store", bound=SqliteStore)
Night = TypeVar("Night")

#: What a store may raise for one row (SQLite refuses integers beyond 64 bits).
ROW_ERRORS = (StoreError, OverflowError, ValueError, TypeError)


@contextmanager
def opened_store(
    open_in: Callable[[Path], Store],
    label: str,
    inventory: Inventory,
    options: AuditOptions,
    errors: list[str],
    seed: Callable[[Store], None] | None = None,
) -> Iterator[Store | None]:
    """The store in the run's state directory, seeded; None (and an error) when it is broken."""
    with tempfile.TemporaryDirectory(prefix="xenaudit-state-") as scratch:
        if options.state_dir is not None:
            state_dir = options.state_dir
        elif options.demo:
            state_dir = Path(scratch)
        else:
            state_dir = Path(inventory.state_dir)
        try:
            store = open_in(state_dir)
        except StoreError as exc:
            errors.append(f"{label}: {exc}")
            yield None
            return
        try:
            if seed is not None:
                seed(store)
            yield store
        finally:
            store.close()


def record_by_night(
    record_run: Callable[[str, Sequence[tuple[str, str, Night]]], None],
    rows: Iterable[tuple[str, str, str, Night]],
    label: str,
    errors: list[str],
) -> None:
    """Record (night, host, domain, row) in one transaction per night, oldest night first.

    When a night's transaction is refused, its rows are recorded one by one
    and each refused one is named.
    """
    by_night: dict[str, list[tuple[str, str, Night]]] = {}
    for night_at, host, domain, night in rows:
        by_night.setdefault(night_at, []).append((host, domain, night))
    for night_at, night_rows in sorted(by_night.items()):
        try:
            record_run(night_at, night_rows)
            continue
        except ROW_ERRORS:
            pass
        for host, domain, night in night_rows:
            try:
                record_run(night_at, [(host, domain, night)])
            except ROW_ERRORS as exc:
                errors.append(f"{host}/{domain}: {label}: not recorded: {exc}")
