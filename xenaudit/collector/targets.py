"""Which guests to read on a host, and how to reach each one.

Domain names come from the hypervisor and are hostile: `ssh_host_template`
(`{name}` -> the domain name) would otherwise turn a domain called
`-oProxyCommand=...` or `a b` into an SSH destination. Names that are not
valid host names are still returned as targets, so the domain appears in
the report, but their `ssh_host` is refused by the collector before any
connection, with an error that says to set `ssh_host` for that domain.
"""

from __future__ import annotations

from collections.abc import Iterable

from xenaudit.collector.hostnames import is_valid_host
from xenaudit.collector.interface import GuestTarget
from xenaudit.inventory.interface import Inventory


def targets_for(inventory: Inventory, host: str, domain_names: Iterable[str]) -> list[GuestTarget]:
    """One target per domain to collect on `host`, with overrides applied; skipped ones left out.

    Raises ValueError only for an inventory mistake that affects every
    domain (a template without `{name}`).
    """
    template = inventory.ssh_host_template
    if "{name}" not in template:
        raise ValueError(f"ssh host_template {template!r} does not contain {{name}}")
    settings = inventory.ssh
    targets = []
    for name in dict.fromkeys(domain_names):
        override = inventory.override(name, host)
        if override.skip:
            continue
        if override.ssh_host:
            ssh_host = override.ssh_host
        elif is_valid_host(name):
            ssh_host = template.replace("{name}", name)
        else:
            # Keep the raw name (never used to connect) so the refusal names it.
            ssh_host = name
        targets.append(
            GuestTarget(
                domain=name,
                host=host,
                ssh_host=ssh_host,
                ssh_port=override.ssh_port if override.ssh_port is not None else settings.port,
                ssh_user=override.ssh_user or settings.user,
                identity_file=override.identity_file or settings.identity_file,
            )
        )
    return targets
