"""Which guests to read on a host, and how to reach each one.

Domain names come from the hypervisor and are hostile: `ssh_host_template`
(`{name}` -> the domain name) would otherwise turn a domain called
`-oProxyCommand=...` or `a b` into an SSH destination. Names that are not
valid host names are still returned as targets, so the domain appears in
the report, but their `ssh_host` is refused by the collector before any
connection, with an error that says to set `ssh_host` for that domain.

The template may end in a port, as an SSH address would
(`{name}.guests.example.net:2222`, `[{name}.v6.example.net]:2222`): guests
that all listen on another port then need no per-domain table. ssh_config
`Host` patterns then apply to the resulting name, as `ssh NAME` would apply
them (see sshconfig.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from xenaudit.collector.hostnames import is_valid_host
from xenaudit.collector.interface import GuestTarget
from xenaudit.inventory.interface import Inventory

_BRACKETED = re.compile(r"\[(?P<host>[^\]]+)\]:(?P<port>[^:]*)")
_PLAIN = re.compile(r"(?P<host>[^:\[\]]+):(?P<port>[^:]*)")


def split_template(template: str) -> tuple[str, int | None]:
    """The host part of an address template and its port, if it names one.

    `"{name}.guests.example.net:2222"` -> `("{name}.guests.example.net", 2222)`;
    a template without a port gives None. Raises ValueError for a port that is
    not a number from 1 to 65535.
    """
    match = _BRACKETED.fullmatch(template) or _PLAIN.fullmatch(template)
    if match is None:
        return template, None
    port = match.group("port")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"host_template {template!r}: port {port!r} is not a number 1-65535")
    return match.group("host"), int(port)


def targets_for(inventory: Inventory, host: str, domain_names: Iterable[str]) -> list[GuestTarget]:
    """One target per domain to collect on `host`, with overrides applied; skipped ones left out.

    Raises ValueError only for an inventory mistake that affects every
    domain (a template without `{name}`).
    """
    template = inventory.ssh_host_template
    if "{name}" not in template:
        raise ValueError(f"ssh host_template {template!r} does not contain {{name}}")
    template, template_port = split_template(template)
    settings = inventory.ssh
    targets = []
    for name in dict.fromkeys(domain_names):
        override = inventory.override(name, host)
        if override.skip:
            continue
        # A port in the template belongs to the template's address: a domain with
        # its own ssh_host uses its own ssh_port (or the global one).
        port = settings.port
        if override.ssh_host:
            ssh_host = override.ssh_host
        elif is_valid_host(name):
            ssh_host = template.replace("{name}", name)
            port = template_port if template_port is not None else settings.port
        else:
            # Keep the raw name (never used to connect) so the refusal names it.
            ssh_host = name
        targets.append(
            GuestTarget(
                domain=name,
                host=host,
                ssh_host=ssh_host,
                ssh_port=override.ssh_port if override.ssh_port is not None else port,
                ssh_user=override.ssh_user or settings.user,
                identity_file=override.identity_file or settings.identity_file,
            )
        )
    return targets
