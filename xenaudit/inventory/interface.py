"""The inventory: what an admin tells xenaudit about their fleet.

Everything here is plain frozen data, so each later stage can be handed only
the part it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xenaudit.errors import SourcedError

HostKeyPolicy = Literal["strict", "accept-new"]
Backend = Literal["xl", "xm", "libvirt", "snapshot"]
#: How a domain is judged: from a login to the guest, or from Dom0 alone.
CollectMode = Literal["ssh", "hypervisor"]


class InventoryError(SourcedError):
    """A bad inventory. The message names the file, the key and what was expected."""

    @property
    def path(self) -> str:
        return self.subject

    @property
    def key(self) -> str:
        return self.source


@dataclass(frozen=True)
class SshSettings:
    user: str = "root"
    port: int = 22
    identity_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    #: xenaudit's own known_hosts, where `accept-new` records first-seen keys.
    own_known_hosts: str = "/var/lib/xenaudit/known_hosts"
    host_key_policy: HostKeyPolicy = "strict"
    ssh_config: str | None = "~/.ssh/config"
    allow_password: bool = False
    connect_timeout_s: float = 10.0
    #: Wall-clock limit for one guest, handshake to last byte.
    guest_timeout_s: float = 60.0
    #: Wall-clock limit for the whole collection.
    deadline_s: float = 900.0
    concurrency: int = 16
    max_bytes_per_guest: int = 16 * 1024 * 1024
    kernlog_max_bytes: int = 8 * 1024 * 1024
    #: Events of each kind kept per guest from the start and from the end of its
    #: kernel log; counts stay exact, only the quoted examples are capped.
    kernlog_keep_events: int = 10
    use_sudo: bool = True
    retries: int = 2


@dataclass(frozen=True)
class HypervisorSpec:
    """One Dom0 to read."""

    name: str
    backend: Backend = "xl"
    #: libvirt URI (`xen:///system`, `xen+ssh://root@dom0b/system`, `test:///…`).
    uri: str | None = None
    #: For `xl` on another Dom0: run the commands over SSH on this host.
    ssh_host: str | None = None
    ssh_port: int = 22
    ssh_user: str | None = None
    #: Where this host's cfg files live (as seen from where xenaudit runs).
    cfg_dir: str = "/etc/xen"
    xl_command: str = "xl"
    #: The xm binary, for `backend = "xm"` (xend Dom0s, Xen 4.4 and older).
    xm_command: str = "xm"
    #: Default for this Dom0's domains: "ssh" (log in) or "hypervisor" (Dom0 alone).
    collect: CollectMode | None = None
    #: Memory Xen itself keeps beyond Dom0 and the guests, in MiB.
    xen_reserve_mib: int = 256
    #: Replay: a directory holding this host's saved hypervisor outputs.
    snapshot_dir: str | None = None


@dataclass(frozen=True)
class DomainOverride:
    """Per-domain settings; every field is optional."""

    name: str
    ssh_host: str | None = None
    ssh_port: int | None = None
    ssh_user: str | None = None
    identity_file: str | None = None
    cfg_path: str | None = None
    skip: bool = False
    #: Member of an HA cluster: only then may panic_on_oom be advised.
    ha_cluster: bool = False
    #: The guest's balloon driver is known to work (needed before HVM maxmem > memory).
    balloon_driver: bool | None = None
    min_memory_mib: int | None = None
    #: "hypervisor": judge this domain from Dom0 alone (no login), "ssh": log in.
    collect: CollectMode | None = None


@dataclass(frozen=True)
class Thresholds:
    margin: float = 0.20
    step_mib: int = 64
    floor_mib: int = 256
    #: Extra maxmem above memory for guests that can balloon, as a fraction.
    maxmem_headroom: float = 0.25
    decrease_min_nights: int = 7
    #: A decrease must save at least this fraction of the current memory.
    decrease_min_fraction: float = 0.15
    available_warning_pct: float = 15.0
    available_critical_pct: float = 5.0
    psi_some_avg60_warning: float = 5.0
    psi_full_avg60_critical: float = 5.0
    swap_used_warning_pct: float = 25.0
    oom_bump_mib: int = 100
    #: An OOM kill or failure storm stays unresolved (its recommendation kept)
    #: until memory is raised, the guest restarts with a new size, or this many
    #: nights pass without a new one.
    resolve_quiet_nights: int = 7


@dataclass(frozen=True)
class Inventory:
    path: str
    hypervisors: tuple[HypervisorSpec, ...]
    ssh: SshSettings = field(default_factory=SshSettings)
    #: How a guest's SSH host is derived from its domain name, e.g. "{name}.example.org".
    ssh_host_template: str = "{name}"
    domains: Mapping[str, DomainOverride] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    state_dir: str = "/var/lib/xenaudit"
    #: Replay every guest from this snapshots folder instead of SSH.
    guest_snapshot_dir: str | None = None
    #: How domains are judged unless their Dom0 or their own table says otherwise.
    collect: CollectMode = "ssh"

    def override(self, domain: str, host: str | None = None) -> DomainOverride:
        """The override for a domain; `host/name` keys win over plain names."""
        if host is not None and f"{host}/{domain}" in self.domains:
            return self.domains[f"{host}/{domain}"]
        return self.domains.get(domain, DomainOverride(name=domain))

    def collect_mode(self, domain: str, host: str) -> CollectMode:
        """The domain's own setting, else its Dom0's, else the inventory's."""
        own = self.override(domain, host).collect
        if own is not None:
            return own
        spec = next((h for h in self.hypervisors if h.name == host), None)
        if spec is not None and spec.collect is not None:
            return spec.collect
        return self.collect

    def reads_signals(self, host: str) -> bool:
        """Whether any domain on `host` may be judged from Dom0 alone, so its signals are read."""
        spec = next((h for h in self.hypervisors if h.name == host), None)
        if self.collect == "hypervisor" or (spec is not None and spec.collect == "hypervisor"):
            return True
        for key, override in self.domains.items():
            if override.collect != "hypervisor":
                continue
            if "/" not in key or key.split("/", 1)[0] == host:
                return True
        return False

    def base_dir(self) -> Path:
        return Path(self.path).resolve().parent
