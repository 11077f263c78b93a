"""The libvirt backend against libvirt's own test driver, with Xen domains in node files."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from xenaudit.hypervisor.interface import HostView, HypervisorError
from xenaudit.hypervisor.libvirt import LibvirtSource
from xenaudit.hypervisor.libvirt_parse import RAW_LIBVIRT, build_libvirt_view
from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.snapshot import SnapshotSource, save_host_snapshot
from xenaudit.inventory.interface import HypervisorSpec

requires_libvirt = pytest.mark.skipif(
    importlib.util.find_spec("libvirt") is None, reason="libvirt-python not installed"
)

NODES = Path(__file__).resolve().parent / "libvirt_nodes"
FLEET = NODES / "xen_fleet.xml"
MIB = 1024


def _source(uri: str, name: str = "lv1") -> LibvirtSource:
    return LibvirtSource(HypervisorSpec(name=name, backend="libvirt", uri=uri), timeout_s=20)


@pytest.fixture(scope="module")
def fleet_view() -> HostView:
    pytest.importorskip("libvirt")
    return _source(f"test://{FLEET}").read()


def test_states_types_and_sizes_from_the_node_file(fleet_view: HostView) -> None:
    by_name = {d.name: d for d in fleet_view.domains}
    assert {n: (d.state, d.guest_type) for n, d in by_name.items()} == {
        "web": ("running", "pv"),
        "winhvm": ("running", "hvm"),
        "pvhguest": ("running", "pvh"),
        "batch": ("paused", "pv"),
        "archive": ("shutoff", "pv"),
    }
    # <memory unit='GiB'>4</memory>, <currentMemory unit='MiB'>2048</currentMemory>
    assert (by_name["winhvm"].max_kib, by_name["winhvm"].target_kib) == (4096 * MIB, 2048 * MIB)
    assert by_name["winhvm"].vcpus == 2  # <vcpu current='2'>4</vcpu>
    assert (by_name["web"].max_kib, by_name["web"].target_kib) == (786432, 524288)
    assert by_name["pvhguest"].target_kib == 1024 * MIB  # currentMemory defaults to memory


def test_shut_off_domains_are_listed_without_live_values(fleet_view: HostView) -> None:
    archive = next(d for d in fleet_view.domains if d.name == "archive")
    assert archive.domid is None and archive.current_kib is None
    running = [d for d in fleet_view.domains if d.state != "shutoff"]
    assert all(d.domid is not None and d.domid > 0 for d in running)


def test_host_figures_and_the_test_drivers_zero_free_memory(fleet_view: HostView) -> None:
    assert fleet_view.backend == "libvirt"
    assert fleet_view.total_memory_kib == 16777216  # <memory> of the node, in KiB
    assert fleet_view.free_memory_kib is None
    assert any("test driver" in w for w in fleet_view.warnings)
    assert fleet_view.dom0 is None


def test_raw_is_one_json_record(fleet_view: HostView) -> None:
    assert list(fleet_view.raw) == [RAW_LIBVIRT]
    record = json.loads(fleet_view.raw[RAW_LIBVIRT])
    assert record["uri"] == f"test://{FLEET}"
    assert record["driver"].lower() == "test"
    assert len(record["domains"]) == 5
    assert all("<domain" in d["xml"] for d in record["domains"])


def test_snapshot_round_trip(fleet_view: HostView, tmp_path: Path) -> None:
    save_host_snapshot(fleet_view, tmp_path / "lv1", "2024-03-05T02:00:00Z")
    assert SnapshotSource(tmp_path / "lv1").read() == fleet_view


def test_recipe_node_file_reads_too(fleet_view: HostView) -> None:
    recipe = Path(__file__).resolve().parent / "libvirt_nodes" / "recipe_node.xml"
    view = _source(f"test://{recipe}").read()
    assert {d.name: d.state for d in view.domains} == {
        "g1": "running",
        "g2": "running",
        "g3off": "shutoff",
    }


# ------------------------------------------------------------------ failures


@requires_libvirt
def test_missing_node_file_fails_fast_and_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(HypervisorError) as caught:
        _source("test:///nonexistent/xenaudit/node.xml").read()
    assert caught.value.host == "lv1"
    assert "test:///nonexistent/xenaudit/node.xml" in caught.value.source
    assert "not found" in caught.value.message
    assert capfd.readouterr().err == ""


@requires_libvirt
def test_malformed_node_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<node><domain type='xen'><name>x</name>")
    with pytest.raises(HypervisorError) as caught:
        _source(f"test://{bad}").read()
    assert str(bad) in caught.value.message


@requires_libvirt
def test_unknown_uri_scheme_is_refused() -> None:
    with pytest.raises(HypervisorError) as caught:
        _source("nosuchdriver:///system").read()
    assert caught.value.source == "libvirt nosuchdriver:///system"


@requires_libvirt
@pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client for xen+ssh://")
def test_refused_remote_connection() -> None:
    with pytest.raises(HypervisorError) as caught:
        _source("xen+ssh://127.0.0.1:1/system?no_tty=1").read()
    assert "127.0.0.1" in caught.value.source


def test_without_libvirt_python_the_error_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)
    with pytest.raises(HypervisorError) as caught:
        _source(f"test://{FLEET}").read()
    assert "pip install 'xenaudit[libvirt]'" in caught.value.message
    assert "libvirt-dev" in caught.value.message and "pkg-config" in caught.value.message


# ------------------------------------------------------------------ pure parsing


def _record(domains: list[dict[str, object]], driver: str = "Xen", free: int | None = 0) -> str:
    return json.dumps(
        {
            "uri": "xen:///system",
            "driver": driver,
            "version": 4017003,
            "node_info": ["x86_64", 16255, 8, 3400, 1, 1, 4, 2],
            "free_memory_bytes": free,
            "domains": domains,
        }
    )


def test_a_real_drivers_zero_free_memory_is_kept() -> None:
    view = build_libvirt_view("x", {RAW_LIBVIRT: _record([])})
    assert view.free_memory_kib == 0 and view.warnings == ()
    assert view.xen_version == "4.17.3"  # getVersion(): major * 1e6 + minor * 1e3 + release
    assert view.total_memory_kib == 16255 * MIB


def test_dom0_through_the_xen_driver() -> None:
    xml = (
        "<domain type='xen' id='0'><name>Domain-0</name>"
        "<memory unit='KiB'>2097152</memory><currentMemory unit='KiB'>2097152</currentMemory>"
        "<vcpu>4</vcpu><os><type>xen</type></os></domain>"
    )
    entry = {"id": 0, "xml": xml, "state": [1, 1], "info": [1, 2097152, 2097152, 4, 1]}
    view = build_libvirt_view("x", {RAW_LIBVIRT: _record([entry])})
    assert view.dom0 is not None and view.guests == ()


@pytest.mark.parametrize(
    ("memory", "kib"),
    [
        ("<memory unit='b'>1073741824</memory>", 1048576),
        ("<memory unit='MB'>1000</memory>", 976562),
        ("<memory>2048</memory>", 2048),
    ],
)
def test_libvirt_memory_units(memory: str, kib: int) -> None:
    xml = f"<domain type='xen'><name>u</name>{memory}<os><type>hvm</type></os></domain>"
    entry = {"id": -1, "xml": xml, "state": [5, 0], "info": [5, kib, kib, 1, 0]}
    view = build_libvirt_view("x", {RAW_LIBVIRT: _record([entry])})
    assert view.domains[0].max_kib == kib


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"domains": [{"xml": "<domain"}]}),
        json.dumps({"domains": [{}]}),
        json.dumps([1, 2]),
    ],
)
def test_bad_records_are_refused(text: str) -> None:
    with pytest.raises(RawParseError):
        build_libvirt_view("x", {RAW_LIBVIRT: text})
