"""Run a stand-in fleet until interrupted, for trying xenaudit by hand or from a benchmark.

    python -m tests.standin --guests 5 [--dir DIR] [--user root]

Prints, as JSON on one line, everything needed to reach the guests (ports,
client key, known_hosts, a ready [ssh] inventory snippet), then waits for
Ctrl-C, SIGTERM or end of stdin, and stops every guest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from tests.standin.fleet import Fleet, GuestSpec, StandinError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.standin", description=__doc__)
    parser.add_argument("--guests", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to keep keys and files")
    parser.add_argument("--user", default="root", help="login user on every guest")
    parser.add_argument("--prefix", default="standin", help="guest name prefix")
    args = parser.parse_args(argv)

    specs = [GuestSpec(f"{args.prefix}{i:02d}", login_user=args.user) for i in range(args.guests)]
    try:
        fleet = Fleet.start(specs, root=args.dir)
    except StandinError as exc:
        print(f"cannot start the stand-in fleet: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with fleet:
        info = {
            "root": str(fleet.root),
            "client_key": str(fleet.client_key),
            "known_hosts": str(fleet.known_hosts),
            "guests": [{"name": g.name, "host": "127.0.0.1", "port": g.port} for g in fleet.guests],
            "inventory_ssh": (
                f'[ssh]\nidentity_file = "{fleet.client_key}"\n'
                f'known_hosts = "{fleet.known_hosts}"\nssh_config = ""\n'
            ),
        }
        print(json.dumps(info), flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
