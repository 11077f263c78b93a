"""Choosing sources and reading several Dom0s, one of which cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_xl.support import copy_recording, use_fake_xl
from xenaudit.hypervisor.factory import make_source, read_hosts
from xenaudit.hypervisor.interface import HypervisorError
from xenaudit.hypervisor.libvirt import LibvirtSource
from xenaudit.hypervisor.snapshot import SnapshotSource, save_host_snapshot
from xenaudit.hypervisor.xl import XlSource
from xenaudit.inventory.interface import HypervisorSpec, SshSettings
from xenaudit.snapshots import HYPERVISOR_DIR, safe_name

SSH = SshSettings()
FLEET = Path(__file__).resolve().parent / "libvirt_nodes" / "xen_fleet.xml"


@pytest.fixture
def recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    recorded = copy_recording("host_a", tmp_path)
    use_fake_xl(monkeypatch, recorded)
    return recorded


def test_make_source_by_backend(tmp_path: Path) -> None:
    assert isinstance(make_source(HypervisorSpec(name="a"), SSH), XlSource)
    libvirt_spec = HypervisorSpec(name="b", backend="libvirt", uri=f"test://{FLEET}")
    assert isinstance(make_source(libvirt_spec, SSH), LibvirtSource)
    snapshot_spec = HypervisorSpec(name="c", backend="snapshot", snapshot_dir=str(tmp_path))
    assert isinstance(make_source(snapshot_spec, SSH), SnapshotSource)
    with pytest.raises(HypervisorError, match="snapshot_dir"):
        make_source(HypervisorSpec(name="d", backend="snapshot"), SSH)


def test_one_bad_host_among_two(recording: Path) -> None:
    good = HypervisorSpec(name="dom0a", cfg_dir=str(recording / "etc-xen"))
    bad = HypervisorSpec(name="dom0b", xl_command=str(recording / "missing-xl"))
    results = read_hosts([bad, good], SSH)
    assert [spec.name for spec, _, _ in results] == ["dom0b", "dom0a"]
    (_, bad_view, bad_error), (_, good_view, good_error) = results
    assert bad_view is None and bad_error is not None
    assert bad_error.startswith("dom0b: ") and "set xl_command" in bad_error
    assert good_error is None and good_view is not None
    assert [d.name for d in good_view.guests] == ["web", "db", "pvhguest", "winhvm"]


def test_every_backend_in_one_run(recording: Path, tmp_path: Path) -> None:
    pytest.importorskip("libvirt")
    xl_spec = HypervisorSpec(name="dom0a", cfg_dir=str(recording / "etc-xen"))
    view = XlSource(xl_spec).read()
    # A run's snapshots folder, as the lead's pipeline lays it out.
    snapshots = tmp_path / "snapshots"
    save_host_snapshot(
        view, snapshots / HYPERVISOR_DIR / safe_name("dom0a"), "2024-03-05T02:00:00Z"
    )
    specs = [
        xl_spec,
        HypervisorSpec(name="lv", backend="libvirt", uri=f"test://{FLEET}"),
        HypervisorSpec(name="dom0a", backend="snapshot", snapshot_dir=str(snapshots)),
    ]
    results = read_hosts(specs, SSH)
    assert [error for _, _, error in results] == [None, None, None]
    views = [v for _, v, _ in results]
    assert views[2] == views[0]  # the replay of the live read
    assert views[1] is not None and views[1].backend == "libvirt"


def test_unknown_backend_is_an_error_string_not_a_crash() -> None:
    spec = HypervisorSpec(name="odd", backend="vmware")  # type: ignore[arg-type]
    ((_, view, error),) = read_hosts([spec], SSH)
    assert view is None and error is not None and "vmware" in error


def test_no_hosts() -> None:
    assert read_hosts([], SSH) == []
