"""Shut-off domains of an xl host: which files in /etc/xen are domains nobody runs."""

from __future__ import annotations

from pathlib import Path

from tests.fake_xl.support import RECORDINGS
from xenaudit.analysis.interface import ConfigFacts
from xenaudit.hypervisor.cfgfind import CfgIndex
from xenaudit.hypervisor.cfgonly import cfg_only_names, shutoff_domain

DEBIAN_EXAMPLES = RECORDINGS / "realxen_4.17" / "etc-xen"


def _cfg(path: Path, name: str, memory: int = 512) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'name = "{name}"\nmemory = {memory}\n')


def test_only_named_cfgs_not_listed_by_xl_are_shut_off(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "xen"
    _cfg(etc / "web.cfg", "web")
    _cfg(etc / "parked.cfg", "parked")
    _cfg(etc / "renamed.cfg", "db01")  # the name inside counts, not the file name
    _cfg(etc / "parked.cfg.bak", "old-parked")
    _cfg(etc / "web.cfg~", "web-edit")
    _cfg(etc / "xlexample.pvlinux", "example.pvlinux")  # Debian ships these
    _cfg(etc / "notes.txt", "notes")
    (etc / "xl.conf").write_text('autoballoon = "off"\n')
    _cfg(tmp_path / "srv" / "lab.cfg", "lab")
    (etc / "auto").mkdir()
    (etc / "auto" / "lab").symlink_to("/srv/lab.cfg")  # absolute: resolved under root
    index = CfgIndex(tmp_path / "etc" / "xen", root=tmp_path)
    names = cfg_only_names(index, {"Domain-0", "web"})
    assert names == ["db01", "lab", "parked"]


def test_debian_example_files_are_not_domains() -> None:
    assert sorted(p.name for p in DEBIAN_EXAMPLES.glob("xlexample.*"))
    names = cfg_only_names(CfgIndex(DEBIAN_EXAMPLES), set())
    assert not [n for n in names if n.startswith("example")]
    assert "parked" in names


def test_a_file_that_does_not_parse_is_no_domain(tmp_path: Path) -> None:
    (tmp_path / "broken.cfg").write_text('name = "broken\nmemory = \n')
    (tmp_path / "binary.cfg").write_bytes(b"name = 'x'\0")
    assert cfg_only_names(CfgIndex(tmp_path), set()) == []


def test_shutoff_domain_takes_xl_defaults_from_the_cfg() -> None:
    domain = shutoff_domain("parked", ConfigFacts("/etc/xen/parked.cfg", 384, None, "pv"))
    assert (domain.state, domain.domid, domain.guest_type) == ("shutoff", None, "pv")
    assert domain.target_kib == domain.max_kib == 384 * 1024
    unknown = shutoff_domain("x", ConfigFacts(None, None, None, None, error="no cfg"))
    assert unknown.target_kib is None and unknown.max_kib is None
