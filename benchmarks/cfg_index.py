"""How finding each domain's cfg scales with the cfg folder: 100 and 1,000 domains.

Run from the repository root:

    .venv/bin/python benchmarks/cfg_index.py [--repeat N]

Each domain's cfg is named after something else than the domain (web-17.xl
holding `name = "dom17"`), so every lookup falls through to the search by
`name =`, the expensive path. The audit reads the folder once into a
CfgIndex shared by the host's domains; this measures that, the way
`run_audit` does it, and prints the best CPU time (of this process, so other
work on a shared machine does not count) of N repeats per size and the
ratio. Ten times the domains (and files) should cost about ten times as much;
the search used to read the whole folder once per domain (a ratio near 100).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from xenaudit.cfgfiles import load_config  # noqa: E402
from xenaudit.hypervisor.cfgfind import CfgIndex  # noqa: E402
from xenaudit.inventory.interface import DomainOverride, HypervisorSpec  # noqa: E402

SIZES = (100, 1000)
#: The ratio the 10x larger folder may cost at most.
LIMIT = 12.0


def cfg_folder(root: Path, domains: int) -> list[str]:
    """`domains` cfgs under root/etc/xen, named unlike their domains; returns the names."""
    folder = root / "etc" / "xen"
    (folder / "auto").mkdir(parents=True)
    names = []
    for i in range(domains):
        name = f"dom{i}"
        names.append(name)
        (folder / f"web-{i}.xl").write_text(
            f'# guest {i}\nname = "{name}"\nmemory = {512 + i % 8 * 128}\nmaxmem = 4096\n'
            f'vcpus = 2\ntype = "pvh"\nkernel = "/boot/vmlinuz"\n'
            f"disk = [ 'phy:/dev/vg/{name},xvda,w' ]\nvif = [ 'bridge=xenbr0' ]\n"
        )
        if i % 10 == 0:
            (folder / "auto" / f"web-{i}.xl").symlink_to(f"../web-{i}.xl")
    (folder / "xl.conf").write_text('autoballoon="off"\n')
    return names


def one_run(root: Path, names: list[str]) -> float:
    """CPU seconds to load every domain's cfg as one audit run does."""
    spec = HypervisorSpec(name="dom0")
    start = time.process_time()
    index = CfgIndex.for_host(spec, root, deadline=time.monotonic() + 900)
    for name in names:
        loaded = load_config(name, spec, DomainOverride(name), root, index)
        if loaded.facts.memory_mib is None:
            raise SystemExit(f"{name}: cfg not found: {loaded.facts.error}")
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best = dict.fromkeys(SIZES, float("inf"))
    with tempfile.TemporaryDirectory(prefix="xa-cfg-index-") as scratch:
        folders = {}
        for size in SIZES:
            root = Path(scratch) / str(size)
            folders[size] = (root, cfg_folder(root, size))
        # Sizes take turns inside each repeat, so a busy machine slows both alike.
        for _ in range(args.repeat):
            for size, (root, names) in folders.items():
                best[size] = min(best[size], one_run(root, names))
    small, large = SIZES
    ratio = best[large] / best[small]
    for size in SIZES:
        print(f"{size:>5} domains: {best[size] * 1000:8.1f} ms")
    print(f"ratio {large}/{small}: {ratio:.1f}x (linear is 10x; must be <= {LIMIT:g}x)")
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    raise SystemExit(main())
