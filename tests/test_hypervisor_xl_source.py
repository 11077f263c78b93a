"""The xl backend end to end: it shells out to a fake `xl` exactly as to the real one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fake_xl.support import RECORDINGS, copy_recording, use_fake_xl, write_command
from xenaudit.hypervisor.interface import HypervisorError
from xenaudit.hypervisor.xl import XlSource
from xenaudit.inventory.interface import HypervisorSpec

MIB = 1024


@pytest.fixture
def host_a(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    recording = copy_recording("host_a", tmp_path)
    use_fake_xl(monkeypatch, recording)
    monkeypatch.setenv("XENAUDIT_FAKE_XL_LOG", str(tmp_path / "calls.log"))
    return recording


def _spec(recording: Path, **changes: object) -> HypervisorSpec:
    fields: dict[str, object] = {"name": "dom0a", "cfg_dir": str(recording / "etc-xen")}
    fields.update(changes)
    return HypervisorSpec(**fields)  # type: ignore[arg-type]


def _error(source: XlSource) -> HypervisorError:
    with pytest.raises(HypervisorError) as caught:
        source.read()
    return caught.value


def test_reads_a_recorded_dom0(host_a: Path, tmp_path: Path) -> None:
    view = XlSource(_spec(host_a)).read()
    assert view.name == "dom0a" and view.backend == "xl"
    assert {d.name: d.guest_type for d in view.guests} == {
        "web": "pv",
        "db": "pv",
        "pvhguest": "pvh",
        "winhvm": "hvm",
    }
    assert view.dom0 is not None and view.dom0.name == "Domain-0"
    assert view.autoballoon == "off"  # etc-xen/xl.conf says autoballoon="off"
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["info", "list", "list -l"]


def test_raw_holds_every_output_verbatim(host_a: Path) -> None:
    view = XlSource(_spec(host_a)).read()
    assert set(view.raw) == {"xl-info.txt", "xl-list.txt", "xl-list-l.json", "xl.conf"}
    assert view.raw["xl-info.txt"] == (host_a / "info.out").read_text()
    assert view.raw["xl-list.txt"] == (host_a / "list.out").read_text()
    assert view.raw["xl-list-l.json"] == (host_a / "list_l.out").read_text()
    assert view.raw["xl.conf"] == (host_a / "etc-xen" / "xl.conf").read_text()


def test_sxp_output_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_xl(monkeypatch, RECORDINGS / "host_sxp")
    view = XlSource(HypervisorSpec(name="dom0s", cfg_dir=str(tmp_path))).read()
    assert "xl-list-l.sxp" in view.raw and "xl-list-l.json" not in view.raw
    assert {d.name: d.guest_type for d in view.guests} == {"mail": "pv", "legacyhvm": "hvm"}
    assert view.dom0_mem_kib == 1024 * MIB  # dom0_mem=1G
    assert view.autoballoon is None  # no xl.conf in cfg_dir


def test_sxp_stopped_by_a_pvh_domain_is_a_warning_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_xl(monkeypatch, RECORDINGS / "host_sxp_pvh")
    view = XlSource(HypervisorSpec(name="dom0s", cfg_dir=str(tmp_path))).read()
    assert [d.name for d in view.guests] == ["mail", "newpvh", "legacyhvm"]
    assert any("newpvh" in w for w in view.warnings)


def test_corpus_outputs_replayed_through_the_fake(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real `xl list` and `xl info` samples, with an `xl list -l` that describes nobody."""
    recording = tmp_path / "corpus_host"
    recording.mkdir()
    shutil.copy(corpus / "xllist_xen4.9.2_tab_header.txt", recording / "list.out")
    shutil.copy(corpus / "xlinfo_centos6_xen4.4.3.txt", recording / "info.out")
    write_command(recording, "list_l", out="[\n]\n")
    use_fake_xl(monkeypatch, recording)
    view = XlSource(HypervisorSpec(name="lab", cfg_dir=str(tmp_path))).read()
    assert [(d.name, d.current_kib) for d in view.guests] == [("guest-01", 1024 * MIB)]
    assert view.total_memory_kib == 1663 * MIB
    assert view.dom0_mem_kib == 1024 * MIB  # dom0_mem=1024M,max:1024M
    assert any("guest-01" in w for w in view.warnings)


# ------------------------------------------------------------------ failures


def test_xl_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    error = _error(XlSource(HypervisorSpec(name="h1")))
    assert error.host == "h1"
    assert "xl not found on PATH; install xen-utils or set xl_command" in error.message


def test_configured_xl_command_missing(host_a: Path) -> None:
    error = _error(XlSource(_spec(host_a, xl_command=str(host_a / "no-such-xl"))))
    assert "no-such-xl not found" in error.message and "set xl_command" in error.message


def test_non_zero_exit_reports_trimmed_stderr(host_a: Path) -> None:
    stderr = "libxl: error: libxl_domain.c:323:libxl__domain_info: getting domain info list\n" * 40
    write_command(host_a, "list", err=stderr, rc=3)
    error = _error(XlSource(_spec(host_a)))
    assert error.host == "dom0a"
    assert error.source.startswith("xl list (local)")
    assert "exit code 3" in error.message and "getting domain info list" in error.message
    assert len(error.message) < len(stderr)


def test_not_root(host_a: Path) -> None:
    write_command(
        host_a,
        "info",
        err=(
            "xencall: error: Could not obtain handle on privileged command interface: "
            "Permission denied\nlibxl: error: libxl.c:102:libxl_ctx_alloc: cannot open libxc "
            "handle: Permission denied\ncannot init xl context\n"
        ),
        rc=1,
    )
    assert "xl needs root" in _error(XlSource(_spec(host_a))).message


def test_not_a_xen_host(host_a: Path) -> None:
    write_command(host_a, "info", err="Can't find hypervisor information in sysfs!\n", rc=1)
    assert "not running on Xen" in _error(XlSource(_spec(host_a))).message


@pytest.mark.parametrize(
    ("key", "garbage", "source"),
    [
        ("info", "Segmentation fault (core dumped)\n", "xl info"),
        ("list", "Name ID Mem\nweb three 512 2 -b---- 1.0\n", "xl list"),
        ("list_l", '[{"domid": 3, "config": {"c_info": ', "xl list -l"),
    ],
)
def test_garbage_output_names_the_command(
    host_a: Path, key: str, garbage: str, source: str
) -> None:
    write_command(host_a, key, out=garbage)
    error = _error(XlSource(_spec(host_a)))
    assert error.source.startswith(f"{source} (local)")
    assert error.host == "dom0a"


def test_hanging_xl_is_killed_at_the_timeout(host_a: Path) -> None:
    write_command(host_a, "list_l", out="[]\n", hang_s=3600)
    # Long enough for the commands that answer (the fake xl is a Python script).
    error = _error(XlSource(_spec(host_a), command_timeout_s=4.0))
    assert error.source.startswith("xl list -l")
    assert "timed out after 4 s" in error.message


def test_runaway_output_is_capped(host_a: Path) -> None:
    error = _error(XlSource(_spec(host_a), max_bytes=100))
    assert "more than 100 bytes" in error.message


@pytest.mark.skipif(shutil.which("xl") is None, reason="xen-utils not installed")
def test_real_xl_off_xen_fails_clearly(tmp_path: Path) -> None:
    if Path("/sys/hypervisor/type").is_file():
        pytest.skip("this machine runs on a hypervisor; the real xl may work")
    error = _error(XlSource(HypervisorSpec(name="here", cfg_dir=str(tmp_path))))
    assert error.host == "here"
    assert error.source.startswith("xl info (local)")
    assert error.message  # xl's own words, e.g. "not running on Xen (...)"
