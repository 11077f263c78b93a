"""The Ansible fan-out's overhead: a whole fleet run against the longest single Dom0 audit in it.

Starts stand-in Dom0s (tests/standin/dom0s.py: sshd in its own mount namespace,
fake `xl`, own stand-in guests), installs xenaudit on them with audit.yml once
(not measured), then runs audit.yml --repeat times: audit every Dom0, fetch
every report folder, merge on the controller. For each run it prints the
playbook's wall time, the longest and the summed `xenaudit audit` time of the
Dom0s in that same run (from the run's ansible-run.json, measured on the Dom0s
by Ansible's command module), and their ratio: what running through Ansible
costs on top of the slowest Dom0. Needs root, OpenSSH's sshd and ansible-core
(the test extra).

    .venv/bin/python benchmarks/ansible_fleet.py [--dom0s 10] [--guests 10] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.standin.dom0s import (  # noqa: E402
    Dom0Plan,
    GuestPlan,
    PlaybookRun,
    StandinDom0s,
    run_playbook,
)
from tests.wheelhouse import make_wheelhouses  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dom0s", type=int, default=10)
    parser.add_argument("--guests", type=int, default=10, help="guests per Dom0")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--forks", type=int, default=20)
    args = parser.parse_args(argv)

    plans = [
        Dom0Plan(
            f"dom0-{d:02d}", tuple(GuestPlan(f"d{d:02d}-g{g:02d}") for g in range(args.guests))
        )
        for d in range(args.dom0s)
    ]
    with tempfile.TemporaryDirectory(prefix="xenaudit-bench-ansible-") as scratch:
        work = Path(scratch)
        own, deps = make_wheelhouses(work / "wheels")
        started = time.perf_counter()
        with StandinDom0s.start(plans, work / "standins") as dom0s:
            print(
                f"{args.dom0s} stand-in Dom0s with {args.guests} guests each up in "
                f"{time.perf_counter() - started:.1f}s"
            )
            fleet_root = work / "fleet"
            inventory = dom0s.inventory(
                work / "hosts.yml",
                {
                    "xenaudit_wheelhouse": str(own),
                    "xenaudit_pip_offline": True,
                    "xenaudit_pip_args": ["--find-links", str(deps)],
                    "xenaudit_ssh": {
                        "identity_file": str(dom0s.guest_fleet.client_key),
                        "known_hosts": str(dom0s.guest_fleet.known_hosts),
                        "ssh_config": "",
                        "connect_timeout_s": 10.0,
                        "guest_timeout_s": 120.0,
                        "retries": 0,
                    },
                },
                {"xenaudit_fleet_root": str(fleet_root)},
            )
            home = work / "ansible-home"
            forks = ["--forks", str(args.forks)]
            install = run_playbook("audit.yml", inventory, home, *forks, timeout=3600)
            seen = {check(install, fleet_root, args.dom0s, set())[1]}
            print(f"first run (installs xenaudit on every Dom0): {install.seconds:.1f}s")
            rows = []
            for round_no in range(args.repeat):
                run = run_playbook("audit.yml", inventory, home, *forks, timeout=3600)
                audits, name = check(run, fleet_root, args.dom0s, seen)
                seen.add(name)
                longest, total = max(audits), sum(audits)
                rows.append((run.seconds, longest, total))
                print(
                    f"  round {round_no + 1}: fleet run {run.seconds:6.1f}s, longest Dom0 audit "
                    f"{longest:5.1f}s (all audits {total:5.1f}s), "
                    f"overhead ratio {run.seconds / longest:5.2f}",
                    flush=True,
                )
    wall = statistics.median(r[0] for r in rows)
    longest = statistics.median(r[1] for r in rows)
    total = statistics.median(r[2] for r in rows)
    print(
        f"\n{args.dom0s} Dom0s x {args.guests} guests, forks {args.forks}, median of "
        f"{args.repeat} (on {os.cpu_count()} CPUs):"
    )
    print(f"  fleet run (audit, fetch, merge)   {wall:6.1f}s")
    print(f"  longest single Dom0 audit         {longest:6.1f}s")
    print(f"  fleet run / longest audit         {wall / longest:6.2f}")
    print(f"  all audits / fleet run            {total / wall:6.2f}  (audits running at once)")
    return 0


def check(
    run: PlaybookRun, fleet_root: Path, dom0s: int, seen: set[str]
) -> tuple[list[float], str]:
    """Each Dom0's audit seconds in this run, and the run's folder; exits unless all were merged."""
    latest = (fleet_root / "latest").resolve()
    record_path = latest / "ansible-run.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    audits = [r["audit_seconds"] for r in record.values() if r and r.get("fetched")]
    if run.returncode != 0 or len(audits) != dom0s or latest.name in seen:
        raise SystemExit(f"fleet run failed (exit {run.returncode}):\n{run.output[-4000:]}")
    return [float(a) for a in audits], latest.name


if __name__ == "__main__":
    raise SystemExit(main())
