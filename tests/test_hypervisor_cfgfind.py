"""Finding a domain's cfg in a scratch /etc/xen (the recorded host's own cfg folder)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.fake_xl.support import RECORDINGS
from xenaudit.hypervisor import cfgfind
from xenaudit.hypervisor.cfgfind import (
    CfgIndex,
    find_cfg,
    is_plain_domain_name,
    looks_like_domain_cfg,
)
from xenaudit.inventory.interface import DomainOverride, HypervisorSpec

SPEC = HypervisorSpec(name="dom0a", cfg_dir="/etc/xen")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A scratch / whose etc/xen is the recorded host's cfg folder."""
    (tmp_path / "etc").mkdir()
    shutil.copytree(RECORDINGS / "host_a" / "etc-xen", tmp_path / "etc" / "xen", symlinks=True)
    return tmp_path


def _find(name: str, root: Path, **override: str) -> tuple[Path | None, str | None]:
    return find_cfg(name, SPEC, DomainOverride(name=name, **override), root=root)


def test_conventional_name_dot_cfg(root: Path) -> None:
    assert _find("web", root) == (root / "etc/xen/web.cfg", None)


def test_bare_name_without_extension(root: Path) -> None:
    (root / "etc/xen/mail").write_text('name = "mail"\nmemory = 256\n')
    assert _find("mail", root) == (root / "etc/xen/mail", None)


def test_found_by_name_setting_ignoring_backups_and_auto_links(root: Path) -> None:
    # pvh-guest.cfg declares name = "pvhguest"; "pvh-guest.cfg~" says so too (an editor
    # backup) and auto/pvh-guest.cfg links to it: one real file, no ambiguity.
    path, note = _find("pvhguest", root)
    assert path == root / "etc/xen/pvh-guest.cfg"
    assert note is None


def test_auto_link_with_absolute_target_resolves_under_root(root: Path) -> None:
    templates = root / "srv/xen"
    templates.mkdir(parents=True)
    (templates / "batch.cfg").write_text("name = 'batch'\nmemory = 512\n")
    (root / "etc/xen/auto/batch.cfg").symlink_to("/srv/xen/batch.cfg")
    assert _find("batch", root) == (templates / "batch.cfg", None)


def test_inventory_override_wins(root: Path) -> None:
    custom = root / "srv/web-custom.cfg"
    custom.parent.mkdir()
    custom.write_text("name = 'web'\nmemory = 2048\n")
    assert _find("web", root, cfg_path="/srv/web-custom.cfg") == (custom, None)


def test_relative_override_is_inside_cfg_dir(root: Path) -> None:
    (root / "etc/xen/custom").mkdir()
    (root / "etc/xen/custom/db.cfg").write_text("name = 'db'\n")
    assert _find("db", root, cfg_path="custom/db.cfg") == (root / "etc/xen/custom/db.cfg", None)


def test_override_that_does_not_exist(root: Path) -> None:
    path, note = _find("web", root, cfg_path="/srv/missing.cfg")
    assert path is None
    assert note is not None and "/srv/missing.cfg" in note and "inventory" in note


@pytest.mark.parametrize(
    "hostile",
    ["../../etc/passwd", "../xen/web", "web/../web", ".hidden", "a\x00b", "..", "/etc/shadow"],
)
def test_hostile_names_never_become_paths(root: Path, hostile: str) -> None:
    # Plant files where a naive join would land, each claiming that very name.
    (root / "etc/passwd").write_text(f"name = {hostile!r}\n".replace("\\x00", ""))
    (root / "etc/passwd.cfg").write_text("name = 'x'\n")
    path, note = _find(hostile, root)
    assert path is None
    assert note is not None
    assert not is_plain_domain_name(hostile)


def test_no_cfg_anywhere(root: Path) -> None:
    path, note = _find("ghost", root)
    assert path is None
    assert note is not None and "'ghost'" in note and "/etc/xen" in note


def test_backup_files_alone_do_not_count(root: Path) -> None:
    (root / "etc/xen/ghost.cfg.bak").write_text("name = 'ghost'\n")
    (root / "etc/xen/ghost.cfg.dpkg-old").write_text("name = 'ghost'\n")
    (root / "etc/xen/xl.conf.orig").write_text("name = 'ghost'\n")
    assert _find("ghost", root)[0] is None


def test_two_files_claiming_one_name_are_not_guessed_between(root: Path) -> None:
    (root / "etc/xen/shop-a.cfg").write_text("name = 'shop'\n")
    (root / "etc/xen/shop-b.cfg").write_text("name = 'shop'\n")
    path, note = _find("shop", root)
    assert path is None
    assert note is not None and "shop-a.cfg" in note and "shop-b.cfg" in note and "cfg_path" in note


def test_conventional_file_for_another_domain_is_skipped(root: Path) -> None:
    (root / "etc/xen/api.cfg").write_text("name = 'api-old'\n")
    (root / "etc/xen/api-v2.cfg").write_text("name = 'api'\n")
    path, _ = _find("api", root)
    assert path == root / "etc/xen/api-v2.cfg"
    path, note = _find("api-new", root)
    assert path is None and note is not None and "api-old" not in note


def test_unparseable_conventional_file_is_returned_with_the_error(root: Path) -> None:
    (root / "etc/xen/broken.cfg").write_text("name = 'broken'\nmemory = = 512\n")
    path, note = _find("broken", root)
    assert path == root / "etc/xen/broken.cfg"
    assert note is not None and "does not parse" in note and "broken.cfg" in note


def test_missing_cfg_dir(tmp_path: Path) -> None:
    path, note = _find("web", tmp_path)
    assert path is None and note is not None and "/etc/xen" in note


def test_corpus_cfgs_are_found_by_their_name(corpus: Path, tmp_path: Path) -> None:
    cfg_dir = tmp_path / "etc/xen"
    cfg_dir.mkdir(parents=True)
    for sample in ("xlcfg_babrakov_windows.cfg", "xlcfg_babrakov_krs23.ru.cfg"):
        shutil.copy(corpus / sample, cfg_dir / sample)
    assert _find("windows", tmp_path)[0] == cfg_dir / "xlcfg_babrakov_windows.cfg"
    assert _find("krs23.ru", tmp_path)[0] == cfg_dir / "xlcfg_babrakov_krs23.ru.cfg"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web.cfg", True),
        ("web", True),
        ("windows.hvm", True),
        ("xl.conf", False),
        ("web.cfg~", False),
        ("web.cfg.bak", False),
        ("web.cfg.bak.1", False),
        (".web.cfg.swp", False),
        ("web.cfg.rpmnew", False),
        ("web.cfg.dpkg-dist", False),
        ("xend-config.sxp", False),
        ("domain.xml", False),
    ],
)
def test_which_file_names_can_be_domain_cfgs(name: str, expected: bool) -> None:
    assert looks_like_domain_cfg(name) is expected


# --- one index per run ---------------------------------------------------------------


def unlike_named_cfgs(root: Path, count: int) -> list[str]:
    """`count` cfgs whose file names are not their domains' names (web-3.xl: dom3)."""
    folder = root / "etc" / "xen"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"web-{i}.xl").write_text(f'name = "dom{i}"\nmemory = 512\n')
    return [f"dom{i}" for i in range(count)]


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every cfg file find_cfg reads (the real reader still does the work)."""
    reads: list[Path] = []
    real = cfgfind._declared_name

    def spy(path: Path) -> tuple[str | None, str | None]:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(cfgfind, "_declared_name", spy)
    return reads


def test_a_shared_index_reads_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = unlike_named_cfgs(tmp_path, 30)
    reads = count_reads(monkeypatch)
    index = CfgIndex.for_host(SPEC, tmp_path)
    found = [find_cfg(n, SPEC, DomainOverride(name=n), tmp_path, index)[0] for n in names]
    assert found == [tmp_path / f"etc/xen/web-{i}.xl" for i in range(30)]
    assert len(reads) == 30 == len(set(reads))
    # Without it, each lookup reads the whole folder again.
    reads.clear()
    for name in names[:5]:
        find_cfg(name, SPEC, DomainOverride(name=name), tmp_path)
    assert len(reads) == 5 * 30


def test_indexing_stops_at_the_deadline_and_says_so(tmp_path: Path) -> None:
    unlike_named_cfgs(tmp_path, 3)
    index = CfgIndex.for_host(SPEC, tmp_path, deadline=time.monotonic() - 1)
    path, note = find_cfg("dom1", SPEC, DomainOverride(name="dom1"), tmp_path, index)
    assert path is None
    assert note is not None and "deadline" in note


def test_the_audit_indexes_each_hosts_folder_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_xl.support import use_fake_xl
    from tests.test_e2e_real_parts import xl_recordings
    from xenaudit.audit import AuditOptions, run_audit
    from xenaudit.inventory.toml import load_inventory

    names = unlike_named_cfgs(tmp_path / "root", 20)
    use_fake_xl(
        monkeypatch, xl_recordings(tmp_path / "xl", [(n, i + 1, 512) for i, n in enumerate(names)])
    )
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        '[[hypervisor]]\nname = "dom0a"\nbackend = "xl"\n'
        + "".join(f"[domains.{n}]\nskip = true\n" for n in names)
    )
    reads = count_reads(monkeypatch)
    report = run_audit(
        load_inventory(inventory),
        AuditOptions(
            outdir=tmp_path / "out",
            root=tmp_path / "root",
            state_dir=tmp_path / "state",
            record_history=False,
        ),
    )
    assert all(d.config and d.config.memory_mib == 512 for d in report.domains)
    assert len(reads) == len(names)
