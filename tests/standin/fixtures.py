"""The `standin_fleet` fixture: start stand-in guests, always stop them afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.standin.fleet import Fleet, GuestSpec, StandinError


@pytest.fixture
def standin_fleet() -> Iterator[Callable[..., Fleet]]:
    """A factory: `standin_fleet(GuestSpec("a"), GuestSpec("b"))` returns a running Fleet.

    Every fleet started through it is stopped when the test ends, passed or
    failed. Missing prerequisites (root, sshd) fail the test with the reason.
    """
    started: list[Fleet] = []

    def start(*specs: GuestSpec, root: Path | None = None) -> Fleet:
        try:
            fleet = Fleet.start(specs, root=root)
        except StandinError as exc:
            pytest.fail(f"stand-in fleet unavailable: {exc}", pytrace=False)
        started.append(fleet)
        return fleet

    try:
        yield start
    finally:
        for fleet in started:
            fleet.stop()
