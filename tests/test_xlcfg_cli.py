"""``xenaudit cfg show|set|lint`` through `main` and through `add_parser`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_xlcfg_parse import REPO_ROOT
from xenaudit.xlcfg import parse
from xenaudit.xlcfg.cli import add_parser, main, show_json, show_value

needs_patch = pytest.mark.skipif(shutil.which("patch") is None, reason="patch(1) not installed")


@pytest.fixture()
def windows(tmp_path: Path, corpus: Path) -> Path:
    target = tmp_path / "etc" / "xen" / "windows.cfg"
    target.parent.mkdir(parents=True)
    shutil.copyfile(corpus / "xlcfg_babrakov_windows.cfg", target)
    return target


@pytest.fixture()
def broken(tmp_path: Path) -> Path:
    target = tmp_path / "broken.cfg"
    target.write_bytes(b"name = 'b'\r\nmemory = 512\r\n")  # CRLF: xl refuses it
    return target


def test_show_json(windows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cfg", "show", str(windows), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # read by eye from the file; memory is quoted there, and xl reads it as the number 1024
    assert out == {
        "builder": "hvm",
        "name": "windows",
        "memory": 1024,
        "vcpus": 2,
        "vif": [""],
        "disk": ["phy:/dev/vg/windows,hda,w", "file:/mnt/xen/iso/win.iso,hdc:cdrom,r"],
        "vnc": 1,
        "boot": "cd",
    }
    assert list(out) == ["builder", "name", "memory", "vcpus", "vif", "disk", "vnc", "boot"]


def test_show_json_numbers_lists_and_plus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "n.cfg"
    f.write_bytes(b"memory = 0x200\nvcpus = 010\ncpus = [ 1, '2' ]\nextra = 'a'\nextra += 'b'\n")
    assert main(["show", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "memory": 512,
        "vcpus": 8,
        "cpus": [1, "2"],
        "extra": "ab",
    }


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.integers() | st.text() | st.sampled_from(["caf\udce9", 'a"b', "\\", "\x7f", "\n"]),
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=8,
    )
)
def test_show_writes_values_as_json_does(value: object) -> None:
    assert show_value(value) == json.dumps(value, ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text() | st.sampled_from(["caf\udce9", 'a"b', "\\", "\n"]),
        st.recursive(
            st.integers() | st.text() | st.sampled_from(["caf\udce9", 'a"b', "\\", "\n"]),
            lambda inner: st.lists(inner, max_size=4),
            max_leaves=8,
        ),
        max_size=5,
    )
)
def test_show_json_writes_settings_as_json_does(values: dict[str, object]) -> None:
    assert show_json(values) == json.dumps(values, indent=2, ensure_ascii=False)  # type: ignore[arg-type]


def test_show_plain(windows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cfg", "show", str(windows)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "memory = 1024" in lines and "vcpus = 2" in lines and len(lines) == 8
    # Strings xl reads as strings keep their quotes.
    assert 'name = "windows"' in lines


def test_show_keeps_what_xl_cannot_read_as_a_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "odd.cfg"
    f.write_bytes(b'name = "007"\nmemory = "512M"\nmaxmem = "0x400"\n')
    assert main(["cfg", "show", str(f), "--json"]) == 0
    # name is a string to xl; "512M" is not a number (xl ignores it); 0x400 is 1024.
    assert json.loads(capsys.readouterr().out) == {"name": "007", "memory": "512M", "maxmem": 1024}


@needs_patch
def test_set_prints_a_diff_that_patch_applies_from_root(
    windows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = windows.read_bytes()
    assert main(["cfg", "set", str(windows), "memory=2048", "maxmem=4096"]) == 0
    diff = capsys.readouterr().out
    real = os.path.realpath(windows).lstrip("/")
    assert diff.startswith(f"--- a/{real}\n+++ b/{real}\n")
    assert '-memory = "1024"\n+memory = "2048"\n+maxmem = "4096"\n' in diff
    assert windows.read_bytes() == original  # without --write nothing is written
    done = subprocess.run(
        ["patch", "-p1", "--batch"], cwd="/", input=diff.encode(), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cfg = parse(windows.read_bytes())
    assert (cfg.memory_mib, cfg.maxmem_mib) == (2048, 4096)
    assert cfg.get_string("memory") == "2048"


def backups(cfg: Path) -> list[Path]:
    return sorted(cfg.parent.glob(f"{cfg.name}.xenaudit-*.bak"))


def test_set_write_keeps_bak_mode_and_owner(
    windows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = windows.read_bytes()
    os.chmod(windows, 0o640)
    before = os.stat(windows)
    assert main(["cfg", "set", str(windows), "memory=768", "--write"]) == 0
    assert capsys.readouterr().out  # the diff is printed as well
    after = os.stat(windows)
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino  # replaced by rename, not rewritten in place
    (backup,) = backups(windows)
    assert backup.read_bytes() == original
    assert stat.S_IMODE(backup.stat().st_mode) == 0o640
    assert windows.read_bytes() == original.replace(b'memory = "1024"', b'memory = "768"')
    leftovers = [p.name for p in windows.parent.iterdir()]
    assert sorted(leftovers) == ["windows.cfg", backup.name]


def test_each_write_keeps_its_own_backup_and_never_writes_through_a_link(
    tmp_path: Path, windows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = windows.read_bytes()
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched\n")
    # A link planted where the old scheme kept its one FILE.bak.
    Path(str(windows) + ".bak").symlink_to(victim)
    assert main(["cfg", "set", str(windows), "memory=768", "--write"]) == 0
    assert main(["cfg", "set", str(windows), "memory=1536", "--write"]) == 0
    capsys.readouterr()
    assert victim.read_bytes() == b"untouched\n"
    first, second = backups(windows)
    assert {first.read_bytes(), second.read_bytes()} == {
        original,
        original.replace(b'memory = "1024"', b'memory = "768"'),
    }


def test_set_through_a_symlink_edits_the_target(
    tmp_path: Path, windows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "link.cfg"
    link.symlink_to(windows)
    assert main(["cfg", "set", str(link), "vcpus=4", "--write"]) == 0
    assert f"a/{str(windows).lstrip('/')}" in capsys.readouterr().out
    assert link.is_symlink()
    assert parse(windows.read_bytes()).get_long("vcpus") == 4


@pytest.mark.parametrize(
    ("arg", "line"),
    [
        ('name="new"', b'name = "new"'),
        ("name='new'", b"name = 'new'"),
        ("vcpus=0x4", b"vcpus = 0x4"),
        ("disk=[ 'a', 'b' ]", b"disk = [ 'a', 'b' ]"),
        ("memory=-1", b'memory = "-1"'),
    ],
)
def test_set_value_forms(
    windows: Path, capsys: pytest.CaptureFixture[str], arg: str, line: bytes
) -> None:
    assert main(["cfg", "set", str(windows), arg, "--write"]) == 0
    capsys.readouterr()
    assert line + b"\n" in windows.read_bytes()


@pytest.mark.parametrize("arg", ["name=new", "memory", "memory=[1", "Memory=1", "memory=1 2"])
def test_set_refuses_bad_values(
    windows: Path, capsys: pytest.CaptureFixture[str], arg: str
) -> None:
    original = windows.read_bytes()
    assert main(["cfg", "set", str(windows), arg, "--write"]) == 2
    assert capsys.readouterr().err
    assert windows.read_bytes() == original
    assert not backups(windows)


def test_set_no_change_prints_nothing(windows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cfg", "set", str(windows), "memory=1024"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("command", [["show"], ["show", "--json"], ["set", "memory=1"], ["lint"]])
def test_unparsable_file_exits_2_and_is_not_written(
    broken: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    original = broken.read_bytes()
    args = ["cfg", command[0], str(broken), *command[1:]]
    if command[0] == "set":
        args.append("--write")
    assert main(args) == 2
    captured = capsys.readouterr()
    assert f"{broken}:1:" in captured.err and "lexical error" in captured.err
    assert captured.out == ""
    assert broken.read_bytes() == original
    assert not backups(broken)


def test_lint_exit_codes(corpus: Path, broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = corpus / "xlcfg_xen_xlexample.pvlinux"
    krs = corpus / "xlcfg_babrakov_krs23.ru.cfg"
    assert main(["cfg", "lint", str(clean)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["cfg", "lint", str(clean), str(krs)]) == 1
    out = capsys.readouterr().out
    expected = "warning: unknown key `home': not an xl.cfg option, xl ignores it [unknown-key]"
    assert out == f"{krs}:21:1: {expected}\n"
    assert main(["cfg", "lint", str(krs), str(broken)]) == 2
    captured = capsys.readouterr()
    assert "home" in captured.out and str(broken) in captured.err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cfg", "show", str(tmp_path / "nope.cfg")]) == 2
    assert "nope.cfg" in capsys.readouterr().err


def test_add_parser_plugs_into_a_main_cli(
    windows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="xenaudit")
    sub = parser.add_subparsers(dest="command")
    returned = add_parser(sub)
    assert isinstance(returned, argparse.ArgumentParser)
    args = parser.parse_args(["cfg", "show", str(windows), "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "windows"
    with pytest.raises(SystemExit):
        parser.parse_args(["cfg"])  # a subcommand is required


def test_module_entry_point(windows: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "xenaudit.xlcfg.cli", "cfg", "show", str(windows), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["memory"] == 1024
