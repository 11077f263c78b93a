"""Domains that exist only as a cfg file: the shut-off domains `xl list` cannot show.

xl lists the domains Xen holds (running, paused, crashed, dying); a domain that is
shut off is nothing but its cfg file. The host plan must still count it, because
an admin expects tomorrow's `xl create` to work, so with the xl backend every cfg
named the way admins and the xendomains script name them, `<cfg_dir>/*.cfg` and
what `<cfg_dir>/auto/` (the autostart folder) links to, whose `name =` is not a
domain Xen lists, becomes a shut-off domain with the cfg's memory and maxmem.

Other files in /etc/xen are not domains: Debian ships `xlexample.hvm`,
`xlexample.pvlinux` and `xlexample.pvhlinux` there (with `name =` lines), and
xl.conf, backups and editor leftovers sit beside the cfgs. The files come from
the run's `CfgIndex`, so each is read once for finding cfgs and for this.
"""

from __future__ import annotations

from pathlib import Path

from xenaudit.analysis.interface import ConfigFacts
from xenaudit.hypervisor.cfgfind import CfgIndex
from xenaudit.hypervisor.interface import Domain


def _conventional(entry: Path, cfg_dir: Path) -> bool:
    """A cfg named as admins name one (`*.cfg` in cfg_dir) or listed for autostart."""
    if entry.parent == cfg_dir / "auto":
        return True
    return entry.parent == cfg_dir and entry.name.endswith(".cfg")


def cfg_only_names(index: CfgIndex, listed: set[str]) -> list[str]:
    """Names declared by domain cfgs in the index's folder that Xen does not list."""
    return sorted(
        name
        for name, files in index.declared().items()
        if name not in listed
        and any(_conventional(entry, index.cfg_dir) for entry in files.values())
    )


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
