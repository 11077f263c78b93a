"""Where a run keeps the raw text it collected, so it can be replayed offline.

Layout under a run's `snapshots/` folder:

    snapshots/
      _hypervisor/<safe host>/host.json     backend, host name, collected_at
      _hypervisor/<safe host>/<raw files>   e.g. xl-list-l.json, xl-info.txt
      <safe domain>/meta.json               domain, host, status, error, times
      <safe domain>/<section>               one file per collected section

Domain and host names come from guests and hypervisors and are hostile, so
folder names are sanitised and the true names live in the JSON files.
"""

from __future__ import annotations

import re
from pathlib import Path

HYPERVISOR_DIR = "_hypervisor"
GUEST_META = "meta.json"
HOST_META = "host.json"

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")


def safe_name(name: str, taken: set[str] | None = None) -> str:
    """A folder name for `name` that cannot escape its parent or clash with our own folders."""
    cleaned = _UNSAFE.sub("_", name)[:64].lstrip(".") or "unnamed"
    if cleaned.startswith("_"):
        cleaned = "d" + cleaned
    if taken is None:
        return cleaned
    candidate, n = cleaned, 2
    while candidate in taken:
        candidate = f"{cleaned}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def guest_dirs(snapshot_root: Path) -> list[Path]:
    """Every guest folder under a snapshots root, in a stable order."""
    if not snapshot_root.is_dir():
        return []
    return sorted(p for p in snapshot_root.iterdir() if p.is_dir() and (p / GUEST_META).is_file())


def host_dirs(snapshot_root: Path) -> list[Path]:
    base = snapshot_root / HYPERVISOR_DIR
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / HOST_META).is_file())
