"""Which strings may be handed to SSH (and to ssh_config matching) as a host.

Domain names and inventory values end up as the host we connect to. A name
like `-oProxyCommand=...`, `a b`, `x;y` or one with control characters is
never a real host, so it is refused up front instead of being passed on.
"""

from __future__ import annotations

import ipaddress
import re

#: RFC 1123 labels, plus `_`, which resolvers accept and is common in Xen domain names.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def is_valid_host(name: str) -> bool:
    """True for a DNS host name (labels of letters, digits, `-`, `_`) or an IP address."""
    if not name or len(name) > 253:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return all(_LABEL.fullmatch(label) for label in labels)
