"""Domains that exist only as a cfg file: the shut-off domains `xl list` cannot show.

xl lists the domains Xen holds (running, paused, crashed, dying); a domain that is
shut off is nothing but its cfg file. The host plan must still count it, because
an admin expects tomorrow's `xl create` to work, so with the xl backend every cfg
named the way admins and the xendomains script name them, `<cfg_dir>/*.cfg` and
what `<cfg_dir>/auto/` (the autostart folder) links to, whose `name =` is not a
domain Xen lists, becomes a shut-off domain with the cfg's memory and maxmem.

Other files in /etc/xen are not domains: Debian ships `xlexample.hvm`,
`xlexample.pvlinux` and `xlexample.pvhlinux` there (with `name =` lines), and
xl.conf, backups and editor leftovers sit beside the cfgs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xenaudit.analysis.interface import ConfigFacts
from xenaudit.hypervisor.cfgfind import looks_like_domain_cfg, real_path
from xenaudit.hypervisor.interface import Domain
from xenaudit.hypervisor.xlcfg_read import CfgReadError, read_cfg_facts

#: A folder with more files than this is not an /etc/xen; stop listing it.
MAX_FILES = 10_000
_MAX_CFG_BYTES = 1024 * 1024


def _declared_name(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_CFG_BYTES + 1)
    except OSError:
        return None
    if len(data) > _MAX_CFG_BYTES or b"\0" in data:
        return None
    try:
        return read_cfg_facts(data.decode("utf-8", errors="replace"), str(path)).name
    except CfgReadError:
        return None


def _candidates(cfg_dir: Path, root: Path) -> Iterable[Path]:
    listed = 0
    for folder, wanted in ((cfg_dir, lambda n: n.endswith(".cfg")), (cfg_dir / "auto", None)):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            listed += 1
            if listed > MAX_FILES:
                return
            if not looks_like_domain_cfg(entry.name) or (wanted and not wanted(entry.name)):
                continue
            real = real_path(entry, root)
            if real.is_file():
                yield real


def cfg_only_names(cfg_dir: str, listed: set[str], root: Path = Path("/")) -> list[str]:
    """Names declared by domain cfgs in `cfg_dir` (taking `root` as /) that Xen does not list."""
    folder = Path(cfg_dir)
    if folder.is_absolute():
        folder = root / folder.relative_to(folder.anchor)
    names: set[str] = set()
    for path in _candidates(folder, root):
        name = _declared_name(path)
        if name and name not in listed:
            names.add(name)
    return sorted(names)


def shutoff_domain(name: str, facts: ConfigFacts) -> Domain:
    """The shut-off domain a cfg describes: its sizes are the cfg's (xl's defaults applied)."""
    memory = facts.memory_mib
    maxmem = facts.maxmem_mib if facts.maxmem_mib is not None else memory
    return Domain(
        name=name,
        domid=None,
        uuid=None,
        state="shutoff",
        guest_type=facts.guest_type,
        vcpus=None,
        target_kib=memory * 1024 if memory is not None else None,
        max_kib=maxmem * 1024 if maxmem is not None else None,
    )
