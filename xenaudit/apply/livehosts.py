"""How `apply --live` reaches each host: from the inventory, never from the report folder.

A report folder is data that anyone able to write to it can change, and a
libvirt URI can run a program (the `ext` transport runs its `command=`), so
the backend, URI and SSH route of a live change come from the admin's own
inventory. The report's host name only says which inventory host is meant;
when the report describes that host differently (another backend, URI or
route) the report is not trusted for a live change at all, and the cfg
change still happens, taking effect at the next boot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from xenaudit.apply.interface import HostEntry
from xenaudit.inventory.interface import HypervisorSpec, Inventory


@dataclass(frozen=True)
class LiveHosts:
    """Where live changes may go: a host entry from the inventory, or why not."""

    #: Host name -> how to reach it, taken from the inventory only.
    hosts: Mapping[str, HostEntry] = field(default_factory=dict)
    #: Host name -> why no live change goes there.
    refusals: Mapping[str, str] = field(default_factory=dict)
    #: Why no host at all can be reached live (no inventory), if so.
    everywhere: str | None = None

    def lookup(self, host: str) -> tuple[HostEntry | None, str | None]:
        """(entry, None) to reach `host` live, or (None, why not)."""
        if self.everywhere is not None:
            return None, self.everywhere
        if host in self.refusals:
            return None, self.refusals[host]
        if host not in self.hosts:
            return None, f"host {host!r} is not in the inventory"
        return self.hosts[host], None


def nowhere(reason: str) -> LiveHosts:
    return LiveHosts(everywhere=reason)


def _entry(spec: HypervisorSpec) -> HostEntry:
    return HostEntry(
        name=spec.name,
        backend=spec.backend,
        uri=spec.uri,
        remote=spec.ssh_host is not None,
        xl_command=spec.xl_command,
    )


def _mismatch(reported: HostEntry, spec: HypervisorSpec) -> str | None:
    """How the report's description of a host differs from the inventory's, if it does."""
    if reported.backend != spec.backend:
        return f"the report says backend {reported.backend!r}, the inventory {spec.backend!r}"
    if (reported.uri or None) != (spec.uri or None):
        return "the report's libvirt URI is not the inventory's"
    if reported.remote != (spec.ssh_host is not None):
        return "the report and the inventory disagree on whether the host is reached over SSH"
    return None


def from_inventory(
    inventory: Inventory, reported: Mapping[str, HostEntry], wanted: Iterable[str]
) -> LiveHosts:
    """The inventory's entries for the hosts `wanted`, checked against the report's view."""
    specs = {spec.name: spec for spec in inventory.hypervisors}
    hosts: dict[str, HostEntry] = {}
    refusals: dict[str, str] = {}
    for name in set(wanted):
        spec = specs.get(name)
        if spec is None:
            refusals[name] = f"host {name!r} is not in the inventory {inventory.path}"
            continue
        report_entry = reported.get(name)
        if report_entry is None:
            refusals[name] = f"report.json does not describe host {name!r}"
            continue
        problem = _mismatch(report_entry, spec)
        if problem is not None:
            refusals[name] = (
                f"report.json does not describe host {name!r} as the inventory does "
                f"({problem}); not trusting it for a live change"
            )
            continue
        hosts[name] = _entry(spec)
    return LiveHosts(hosts=hosts, refusals=refusals)
