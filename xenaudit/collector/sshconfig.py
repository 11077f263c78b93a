"""Turn a guest target into the hops to connect through, honouring ~/.ssh/config.

Admins already describe how to reach their guests in ssh_config (HostName,
Port, User, IdentityFile, ProxyJump), so xenaudit follows it the way `ssh`
would, with these rules:

* The target's `ssh_host` is the name looked up (like `ssh NAME`).
* Inventory values act like `ssh` command-line options and win over the
  config, except where the target carries the built-in defaults (port 22,
  user "root", no identity file): there the config fills in. So a config
  `User admin` applies unless the inventory names another user.
* `ProxyJump` hops are resolved through the config too (their own ProxyJump
  included, up to `MAX_HOPS`), and each hop's host key is checked.
* `ProxyCommand` is refused rather than ignored: connecting directly instead
  could reach another machine. `StrictHostKeyChecking` and
  `UserKnownHostsFile` are ignored on purpose: the inventory's host key
  policy is the only one, so a permissive config cannot weaken it.
* paramiko's parser has no `Include`; such lines are ignored.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import paramiko

from xenaudit.collector.hostnames import is_valid_host
from xenaudit.collector.interface import GuestTarget
from xenaudit.collector.knownhosts import known_hosts_name
from xenaudit.inventory.interface import SshSettings

#: Longest ProxyJump chain followed (OpenSSH has no limit, but loops must end).
MAX_HOPS = 8
_DEFAULT_PORT = 22
_DEFAULT_USER = "root"


class RouteError(Exception):
    """The target cannot be reached as configured (bad name, ProxyCommand, loop)."""


@dataclass(frozen=True)
class Hop:
    """One SSH server on the way to a guest (the guest itself is the last hop)."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    identities_only: bool = False
    host_key_alias: str | None = None

    @property
    def known_hosts_name(self) -> str:
        return known_hosts_name(self.host_key_alias or self.hostname, self.port)

    @property
    def label(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


class SshConfigView:
    """One parsed ssh_config shared by every connection of a run."""

    def __init__(self, path: str | None) -> None:
        self.path = os.path.expanduser(path) if path else None
        self.error: str | None = None
        self._config: paramiko.SSHConfig | None = None
        self._lock = threading.Lock()
        if self.path is None:
            return
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                text = handle.read(4 * 1024 * 1024)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.error = f"{self.path}: cannot read: {exc.strerror or exc}"
            return
        try:
            self._config = paramiko.SSHConfig.from_text(text)
        except Exception as exc:  # paramiko raises several types for bad lines
            self.error = f"{self.path}: {exc}"

    def route(self, target: GuestTarget, settings: SshSettings) -> tuple[Hop, ...]:
        """The hops to `target`, jump hosts first and the guest last."""
        if self.error:
            raise RouteError(self.error)
        if not is_valid_host(target.ssh_host):
            raise RouteError(
                f"{target.ssh_host!r} is not a valid host name; set the domain's ssh_host"
            )
        final_port = target.ssh_port if target.ssh_port != _DEFAULT_PORT else None
        final_user = target.ssh_user if target.ssh_user != _DEFAULT_USER else None
        extra = (target.identity_file,) if target.identity_file else ()
        # The target already carries the inventory's user: "root" here means the
        # inventory said nothing (or root), so the config may name another.
        return self._route(
            target.ssh_host, final_user, final_port, extra, settings, (), default_user=_DEFAULT_USER
        )

    def _route(
        self,
        alias: str,
        user: str | None,
        port: int | None,
        identities: Sequence[str],
        settings: SshSettings,
        seen: tuple[str, ...],
        *,
        follow_jumps: bool = True,
        default_user: str | None = None,
    ) -> tuple[Hop, ...]:
        if alias in seen:
            raise RouteError(f"ProxyJump loop: {' -> '.join((*seen, alias))}")
        if len(seen) >= MAX_HOPS:
            raise RouteError(f"more than {MAX_HOPS} ProxyJump hops to {seen[0]}")
        options = self._lookup(alias)
        if options.get("proxycommand"):
            raise RouteError(f"{alias}: ProxyCommand is not supported; use ProxyJump")
        hostname = str(options.get("hostname") or alias)
        if not is_valid_host(hostname):
            raise RouteError(f"{alias}: HostName {hostname!r} is not a valid host name")
        try:
            config_port = int(str(options["port"])) if "port" in options else None
        except ValueError:
            raise RouteError(f"{alias}: Port {options['port']!r} is not a number") from None
        files = [*identities, *_strings(options.get("identityfile"))]
        if settings.identity_file:
            files.append(settings.identity_file)
        hop = Hop(
            alias=alias,
            hostname=hostname,
            port=port or config_port or _DEFAULT_PORT,
            user=user
            or str(options.get("user") or "")
            or default_user
            or settings.user
            or _DEFAULT_USER,
            identity_files=tuple(dict.fromkeys(os.path.expanduser(f) for f in files)),
            identities_only=str(options.get("identitiesonly", "no")).lower() == "yes",
            host_key_alias=str(options["hostkeyalias"]) if "hostkeyalias" in options else None,
        )
        jump = str(options.get("proxyjump") or "none")
        if not follow_jumps or jump.lower() == "none":
            return (hop,)
        hops: tuple[Hop, ...] = ()
        for spec in jump.split(","):
            j_user, j_host, j_port = parse_jump(spec.strip())
            if not hops:
                hops = self._route(j_host, j_user, j_port, (), settings, (*seen, alias))
            else:
                # Later jumps are reached through the earlier ones, as with `ssh -J a,b`.
                later = self._route(
                    j_host, j_user, j_port, (), settings, (*seen, alias), follow_jumps=False
                )
                hops = (*hops, *later)
        return (*hops, hop)

    def _lookup(self, alias: str) -> Mapping[str, Any]:
        if self._config is None:
            return {}
        with self._lock:
            try:
                return self._config.lookup(alias)
            except Exception as exc:  # e.g. CouldNotCanonicalize, a failing Match exec
                raise RouteError(f"{self.path}: {alias}: {exc}") from None


def parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """Split one ProxyJump entry: `[user@]host[:port]`, `[user@][v6]:port` or `ssh://...`."""
    text = spec[len("ssh://") :] if spec.startswith("ssh://") else spec
    user = None
    if "@" in text:
        user, text = text.rsplit("@", 1)
        if not user:
            raise RouteError(f"ProxyJump {spec!r}: empty user")
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise RouteError(f"ProxyJump {spec!r}: unclosed '['")
        if rest:
            if not rest.startswith(":"):
                raise RouteError(f"ProxyJump {spec!r}: expected :port after ']'")
            port = _port(rest[1:], spec)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, spec)
    else:
        host = text
    if not is_valid_host(host):
        raise RouteError(f"ProxyJump {spec!r}: {host!r} is not a valid host name")
    return user, host, port


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise RouteError(f"ProxyJump {spec!r}: bad port {text!r}")
    return int(text)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []
