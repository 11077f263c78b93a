"""Mirroring a Dom0's cfg folder: exact bytes, links kept inside, nothing escapes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenaudit.cfgfiles import load_config
from xenaudit.hypervisor.cfgmirror import MARK, MirrorError, _write_mirror, mirror_cfg_dir
from xenaudit.hypervisor.runner import LocalRunner
from xenaudit.inventory.interface import DomainOverride, HypervisorSpec


@pytest.fixture
def remote_etc(tmp_path: Path) -> Path:
    """A Dom0's cfg folder: latin-1 bytes, an auto/ link, a big image, a hostile link."""
    etc = tmp_path / "dom0" / "etc" / "xen"
    (etc / "auto").mkdir(parents=True)
    (etc / "web.cfg").write_bytes(b'name = "web"\n# caf\xe9\nmemory = 512\n')
    (etc / "db.cfg").write_bytes(b'name = "db"\nmemory = 2048\n')
    (etc / "auto" / "web.cfg").symlink_to("../web.cfg")
    (etc / "auto" / "evil").symlink_to("../../../../../../etc/shadow")
    (etc / "guest.img").write_bytes(b"\0" * (1024 * 1024 + 1))
    return etc


def test_mirror_copies_bytes_and_links(remote_etc: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    warnings = mirror_cfg_dir(LocalRunner(), str(remote_etc), mirror)
    copy = mirror / str(remote_etc).lstrip("/")
    assert (copy / "web.cfg").read_bytes() == (remote_etc / "web.cfg").read_bytes()
    assert (copy / "db.cfg").read_bytes() == b'name = "db"\nmemory = 2048\n'
    assert os.readlink(copy / "auto" / "web.cfg") == "../web.cfg"
    assert not (copy / "auto" / "evil").exists() and not (copy / "auto" / "evil").is_symlink()
    assert any("leaves the cfg folder" in w for w in warnings)
    assert not (copy / "guest.img").exists()


def test_mirrored_cfg_is_found_and_named_by_its_remote_path(
    remote_etc: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    mirror_cfg_dir(LocalRunner(), str(remote_etc), mirror)
    spec = HypervisorSpec(name="dom0b", ssh_host="dom0b", cfg_dir=str(remote_etc))
    loaded = load_config("web", spec, DomainOverride("web"), mirror)
    assert loaded.facts.error is None
    assert loaded.facts.memory_mib == 512
    assert loaded.facts.path == str(remote_etc / "web.cfg")
    assert loaded.data == (remote_etc / "web.cfg").read_bytes()


@pytest.mark.parametrize(
    "remote",
    ["/etc/passwd", "/etc/xen/../shadow", "relative/x.cfg", "/etc/xen/a\x00b", "/etc/xenx/a"],
)
def test_paths_outside_the_folder_are_refused(tmp_path: Path, remote: str) -> None:
    output = f"{MARK} F {remote}\nbmFtZSA9ICJ4Igo=\n"
    warnings = _write_mirror(output, tmp_path, ["/etc/xen"])
    assert warnings and "not mirrored" in warnings[0]
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_garbled_base64_is_a_warning(tmp_path: Path) -> None:
    warnings = _write_mirror(f"{MARK} F /etc/xen/a.cfg\n%%%not base64\n", tmp_path, ["/etc/xen"])
    assert warnings == ["/etc/xen/a.cfg: garbled while reading it, not mirrored"]


def test_relative_cfg_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MirrorError, match="absolute"):
        mirror_cfg_dir(LocalRunner(), "etc/xen", tmp_path)
