"""Stand-in Xen guests for tests and benchmarks: real sshd processes serving fake /proc files.

Use the `standin_fleet` pytest fixture (tests/standin/fixtures.py), or
`Fleet.start(specs)` directly (benchmarks), or `python -m tests.standin`.
"""

from tests.standin.fleet import (
    PROBE_USER,
    Fleet,
    GuestSpec,
    StandinError,
    StandinGuest,
    host_has_psi,
)

__all__ = ["PROBE_USER", "Fleet", "GuestSpec", "StandinError", "StandinGuest", "host_has_psi"]
