"""The bundled demo fleet, replayed through the same code paths as a real run.

`fleet/` is a snapshots folder exactly as `xenaudit audit` writes one
(hypervisor outputs, cfg files, guest sections), plus `history.json`: ten
earlier nights, as the history store would have recorded them.
"""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
FLEET_DIR = DEMO_DIR / "fleet"
INVENTORY = DEMO_DIR / "inventory.toml"
HISTORY = FLEET_DIR / "history.json"
