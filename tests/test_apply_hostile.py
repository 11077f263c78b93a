"""A hostile or edited report folder must not make apply write anywhere it should not."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.test_apply_support import (
    Guest,
    declare_name,
    install_cfg,
    make_report,
    memory_diff,
    run_apply,
)

PASSWD = b"root:x:0:0:root:/root:/bin/bash\n"


@pytest.fixture
def scratch(tmp_path: Path, corpus: Path) -> tuple[Path, Path, bytes]:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_bytes(PASSWD)
    data = (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes()
    return root, tmp_path / "report", declare_name(data, "web")


def nothing_written(root: Path) -> None:
    assert (root / "etc/passwd").read_bytes() == PASSWD
    assert not list(root.rglob("*.bak"))
    assert not list(root.rglob("*.tmp"))


@pytest.mark.parametrize(
    "patch",
    ["patches/../../../etc/passwd", "../web.cfg.diff", "/etc/passwd", "patches/sub/web.cfg.diff"],
)
def test_patch_path_escaping_the_report_folder_is_refused(
    scratch: tuple[Path, Path, bytes], patch: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    make_report(report, root, [Guest("web", data, 768, 768, patch=patch)])
    (report / "web.cfg.diff").write_bytes(memory_diff("/etc/xen/web.cfg", data, 768, 768))

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "patches/NAME.cfg.diff" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == data
    nothing_written(root)


def test_patch_that_is_a_symlink_is_refused(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    outside = report.parent / "elsewhere.diff"
    outside.write_bytes(memory_diff("/etc/xen/web.cfg", data, 768, 768))
    make_report(report, root, [Guest("web", data, 768, 768, patch="patches/web.cfg.diff")])
    (report / "patches/web.cfg.diff").symlink_to(outside)

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "not a regular file" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == data
    nothing_written(root)


def test_diff_headers_naming_another_file_are_refused(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    diff = memory_diff("/etc/xen/web.cfg", data, 768, 768)
    diff = diff.replace(b"a/etc/xen/web.cfg", b"a/etc/passwd").replace(
        b"b/etc/xen/web.cfg", b"b/etc/passwd"
    )
    make_report(report, root, [Guest("web", data, 768, 768, diff=diff)])

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "its headers name" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == data
    nothing_written(root)


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/etc/evil.cfg", "outside the cfg directories"),
        ("/etc/xen/../evil.cfg", "not a normalised path"),
        ("etc/xen/../../etc/evil.cfg", "not an absolute path"),
    ],
)
def test_cfg_path_outside_the_cfg_dir_is_refused(
    scratch: tuple[Path, Path, bytes], path: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    (root / "etc/xen").mkdir()
    # A real cfg with the hash the report gives and a diff made for its very
    # path, so that only the path check stands in the way.
    target = install_cfg(root, "/etc/evil.cfg", data)
    diff = memory_diff("/" + path.lstrip("/"), data, 768, 768)
    make_report(report, root, [Guest("web", data, 768, 768, path=path, diff=diff)], install=False)

    assert run_apply(report, "--root", root, "--yes") == 1
    assert why in capsys.readouterr().out
    assert target.read_bytes() == data
    nothing_written(root)


def test_cfg_path_that_is_a_symlink_is_refused(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    real = install_cfg(root, "/etc/xen/real.cfg", data)
    (root / "etc/xen/web.cfg").symlink_to(real)
    (root / "etc/xen/pw.cfg").symlink_to(root / "etc/passwd")
    guests = [
        Guest("web", data, 768, 768),
        Guest("pw", data, 768, 768),
    ]
    make_report(report, root, guests, install=False)

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "is a symlink" in capsys.readouterr().out
    assert real.read_bytes() == data
    assert (root / "etc/xen/web.cfg").is_symlink()
    nothing_written(root)


def test_cfg_behind_a_symlinked_directory_is_refused(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    elsewhere = root / "srv/cfgs"
    install_cfg(root, "/srv/cfgs/web.cfg", data)
    (root / "etc/xen").symlink_to(elsewhere)
    make_report(report, root, [Guest("web", data, 768, 768)], install=False)

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "symlinked directory" in capsys.readouterr().out
    assert (elsewhere / "web.cfg").read_bytes() == data
    nothing_written(root)


def test_executable_file_in_the_cfg_dir_is_refused(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    make_report(report, root, [Guest("web", data, 768, 768)])
    (root / "etc/xen/web.cfg").chmod(0o755)

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "is executable" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == data
    nothing_written(root)


def test_diff_that_slips_in_another_setting_is_refused(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    diff = memory_diff("/etc/xen/web.cfg", data, 768, 768)
    # One more added line, with the hunk header's counts kept consistent.
    evil = diff.replace(b"+memory = 768\n", b'+memory = 768\n+bootloader = "/tmp/x"\n')
    evil = evil.replace(b"+27,7 @@", b"+27,8 @@")
    make_report(report, root, [Guest("web", data, 768, 768, diff=evil)])

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "more than memory, maxmem and comments" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == data
    nothing_written(root)


def test_diff_with_a_second_file_is_refused(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    diff = memory_diff("/etc/xen/web.cfg", data, 768, 768)
    second = b"--- a/etc/passwd\n+++ b/etc/passwd\n@@ -1 +1 @@\n-root:x\n+toor:x\n"
    make_report(report, root, [Guest("web", data, 768, 768, diff=diff + second)])

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "more than one file" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == data
    nothing_written(root)


def test_diff_whose_context_does_not_match_is_refused(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    diff = memory_diff("/etc/xen/web.cfg", data, 768, 768)
    edited = diff.replace(b" # Initial memory allocation (MB)", b" # Initial memory (MB)")
    assert edited != diff
    make_report(report, root, [Guest("web", data, 768, 768, diff=edited)])

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "does not match the file" in capsys.readouterr().out
    assert (root / "etc/xen/web.cfg").read_bytes() == data
    nothing_written(root)


def test_duplicate_keys_in_report_json_are_refused(scratch: tuple[Path, Path, bytes]) -> None:
    root, report, data = scratch
    make_report(report, root, [Guest("web", data, 768, 768)])
    text = (report / "report.json").read_text()
    text = text.replace('"schema_version": 1,', '"schema_version": 1, "domains": [],', 1)
    (report / "report.json").write_text(text)

    assert run_apply(report, "--root", root, "--yes") == 2
    assert (root / "etc/xen/web.cfg").read_bytes() == data


@pytest.mark.parametrize(
    ("key", "value"),
    [("memory_mib", True), ("memory_mib", 0), ("memory_mib", 2**40), ("maxmem_mib", 100)],
)
def test_nonsense_recommendations_are_refused(
    scratch: tuple[Path, Path, bytes], key: str, value: object
) -> None:
    root, report, data = scratch
    document = make_report(report, root, [Guest("web", data, 768, 768)])
    document["domains"][0]["recommendation"][key] = value
    (report / "report.json").write_text(json.dumps(document))

    assert run_apply(report, "--root", root, "--yes") == 1
    assert (root / "etc/xen/web.cfg").read_bytes() == data


def test_other_cfg_dirs_only_when_given(scratch: tuple[Path, Path, bytes]) -> None:
    root, report, data = scratch
    make_report(report, root, [Guest("web", data, 768, 768, path="/srv/xen/web.cfg")])

    assert run_apply(report, "--root", root, "--yes") == 1
    assert (root / "srv/xen/web.cfg").read_bytes() == data
    assert run_apply(report, "--root", root, "--yes", "--cfg-dir", "/srv/xen") == 0
    assert (root / "srv/xen/web.cfg").read_bytes() != data


def test_terminal_escapes_from_the_report_are_shown_harmless(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    document = make_report(report, root, [Guest("web", data, 768, 768)])
    document["domains"][0]["recommendation"]["reasons"] = ["\x1b]0;pwned\x07\x1b[2Jhidden\u202e"]
    (report / "report.json").write_text(json.dumps(document))

    assert run_apply(report, "--root", root, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned\\x07" in out


def test_hard_linked_cfg_is_refused(
    scratch: tuple[Path, Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    root, report, data = scratch
    make_report(report, root, [Guest("web", data, 768, 768)])
    os.link(root / "etc/xen/web.cfg", root / "etc/xen/web-copy.cfg")

    assert run_apply(report, "--root", root, "--yes") == 1
    assert "hard links" in capsys.readouterr().out
    assert (root / "etc/xen/web-copy.cfg").read_bytes() == data
