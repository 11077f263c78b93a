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

#: Folder under the demo's OUTDIR that stands in for `/`: the demo cfgs live in
#: its etc/xen, so `xenaudit apply OUTDIR --root OUTDIR/demo-root` (and --undo)
#: can be tried without touching the real /etc/xen.
SANDBOX_DIR = "demo-root"


def sandbox_root(outdir: Path) -> Path:
    return Path(outdir) / SANDBOX_DIR


def write_sandbox(outdir: Path) -> Path:
    """Put the demo fleet's cfgs where its report says they are, under OUTDIR/demo-root.

    Each demo run starts the sandbox afresh: the cfgs are rewritten as recorded
    (backups and the action log of earlier tries stay, as they would on a host).
    """
    import json

    from xenaudit.atomicwrite import atomic_write_bytes

    root = sandbox_root(outdir)
    cfg_dir = FLEET_DIR / "_cfg"
    index = json.loads((cfg_dir / "index.json").read_text(encoding="utf-8"))
    for entries in index.values():
        for entry in entries.values():
            logical = Path(entry["path"])
            if not logical.is_absolute() or ".." in logical.parts:
                continue
            target = root / logical.relative_to("/")
            # An output like any other: nothing below OUTDIR is written through a link.
            data = (cfg_dir / entry["file"]).read_bytes()
            atomic_write_bytes(target, data, 0o644, root=outdir)
    return root
