"""Choosing a source for each Dom0, and reading many Dom0s without one stopping the rest."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xenaudit.hypervisor.interface import HostView, HypervisorError, HypervisorSource
from xenaudit.hypervisor.snapshot import SnapshotSource
from xenaudit.inventory.interface import HypervisorSpec, SshSettings
from xenaudit.snapshots import HOST_META, HYPERVISOR_DIR, safe_name

#: Dom0s read at the same time; each read is mostly waiting on xl or SSH.
MAX_PARALLEL_HOSTS = 8


def snapshot_directory(spec: HypervisorSpec) -> Path:
    """The host's own snapshot folder: snapshot_dir itself, or the host's
    folder inside a run's snapshots root when that is what it points at."""
    assert spec.snapshot_dir
    given = Path(spec.snapshot_dir)
    nested = given / HYPERVISOR_DIR / safe_name(spec.name)
    if not (given / HOST_META).is_file() and (nested / HOST_META).is_file():
        return nested
    return given


def make_source(spec: HypervisorSpec, ssh: SshSettings, signals: bool = False) -> HypervisorSource:
    """The source for one Dom0; `signals`: also read xenstore, xentop and the hypervisor log."""
    if spec.backend == "xl":
        from xenaudit.hypervisor.xl import XlSource

        return XlSource(spec, ssh, signals=signals)
    if spec.backend == "xm":
        from xenaudit.hypervisor.xm import XmSource

        return XmSource(spec, ssh, signals=signals)
    if spec.backend == "libvirt":
        from xenaudit.hypervisor.libvirt import LibvirtSource

        return LibvirtSource(spec, ssh, timeout_s=max(ssh.guest_timeout_s, 1.0))
    if spec.backend == "snapshot":
        if not spec.snapshot_dir:
            raise HypervisorError(spec.name, "snapshot", "no snapshot_dir set for this host")
        return SnapshotSource(snapshot_directory(spec), name=spec.name)
    raise HypervisorError(spec.name, "inventory", f"unknown backend {spec.backend!r}")


def _read_one(
    spec: HypervisorSpec, ssh: SshSettings, signals: bool
) -> tuple[HostView | None, str | None]:
    try:
        return make_source(spec, ssh, signals).read(), None
    except HypervisorError as exc:
        return None, str(exc)
    except Exception as exc:  # a bug reading one host must not hide the others
        return None, f"{spec.name}: {spec.backend}: unexpected {type(exc).__name__}: {exc}"


def read_hosts(
    specs: Sequence[HypervisorSpec],
    ssh: SshSettings,
    signal_hosts: Collection[str] = (),
) -> list[tuple[HypervisorSpec, HostView | None, str | None]]:
    """(spec, view, error) per host, in the order given; exactly one of view/error is set.

    Hosts named in `signal_hosts` also have their hypervisor-side signals read.
    """
    if not specs:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_HOSTS, len(specs))) as pool:
        results = list(
            pool.map(lambda spec: _read_one(spec, ssh, spec.name in signal_hosts), specs)
        )
    return [(spec, view, error) for spec, (view, error) in zip(specs, results, strict=True)]
