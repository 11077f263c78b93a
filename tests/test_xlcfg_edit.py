"""Edits: every result must parse in libxlutil with exactly the intended change.

For each corpus file (and our own files) we set memory, set or insert maxmem,
set a string, remove each key in turn, and edit keys set twice or with ``+=``;
libxlutil then reads both versions and every key but the edited one must read
the same, and no line that does not hold the edited key may change.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.libxlutil import LibXlutil, Snapshot, available
from tests.test_xlcfg_parse import CORPUS, DATA, OWN
from xenaudit.xlcfg import (
    CfgEditError,
    Raw,
    XlConfig,
    parse,
    propose_memory_patch,
    remove_key,
    set_value,
    unified_diff,
)

needs_libxlutil = pytest.mark.skipif(not available(), reason="libxlutil.so not installed")
needs_patch = pytest.mark.skipif(shutil.which("patch") is None, reason="patch(1) not installed")


@pytest.fixture(scope="module")
def xlu() -> LibXlutil:
    if not available():
        pytest.skip("libxlutil.so not installed")
    return LibXlutil()


def _all_files() -> list[tuple[str, str]]:
    return [("corpus", n) for n in CORPUS] + [("own", n) for n in OWN]


def _read(corpus: Path, where: str, name: str) -> bytes:
    return ((corpus if where == "corpus" else DATA) / name).read_bytes()


def _others_unchanged(before: Snapshot, after: Snapshot, key: str) -> None:
    for k in before.key_order():
        if k == key:
            continue
        assert after.tree.get(k) == before.tree[k], k
        assert after.long[k] == before.long[k], k
        assert after.string[k] == before.string[k], k
    assert set(after.key_order()) - {key} == set(before.key_order()) - {key}


def _only_key_lines_changed(before: bytes, after: bytes, key: str) -> None:
    """Every removed or added line is a line that assigns `key`."""
    old = before.decode("latin-1").splitlines()
    new = after.decode("latin-1").splitlines()
    for line in difflib.unified_diff(old, new, lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        assert key in line, f"unrelated line changed: {line!r}"


def _check_set_long(xlu: LibXlutil, before: bytes, cfg: XlConfig, key: str, value: int) -> None:
    after = cfg.to_bytes()
    snap_before, snap_after = xlu.snapshot(before), xlu.snapshot(after)
    assert snap_after.ok, snap_after.report
    assert snap_after.long[key] == (0, value)
    _others_unchanged(snap_before, snap_after, key)
    _only_key_lines_changed(before, after, key)


@needs_libxlutil
@pytest.mark.parametrize(("where", "name"), _all_files())
def test_set_memory_and_maxmem(corpus: Path, xlu: LibXlutil, where: str, name: str) -> None:
    data = _read(corpus, where, name)
    cfg = parse(data, name)
    with_memory = set_value(cfg, "memory", 3072)
    _check_set_long(xlu, data, with_memory, "memory", 3072)
    with_maxmem = set_value(with_memory, "maxmem", 4096)
    _check_set_long(xlu, with_memory.to_bytes(), with_maxmem, "maxmem", 4096)
    if "maxmem" not in cfg and "memory" in cfg:
        # inserted right after the winning memory line
        lines = with_maxmem.to_bytes().decode("latin-1").splitlines()
        memory_line = cfg.position(cfg.assignments("memory")[-1].key_start)[0]
        assert lines[memory_line].lstrip().startswith("maxmem")


@needs_libxlutil
@pytest.mark.parametrize(("where", "name"), _all_files())
def test_set_string(corpus: Path, xlu: LibXlutil, where: str, name: str) -> None:
    data = _read(corpus, where, name)
    new = set_value(parse(data), "name", "renamed \"guest\" \\ 'x'").to_bytes()
    snap = xlu.snapshot(new)
    assert snap.ok, snap.report
    assert snap.string["name"] == (0, b"renamed \"guest\" \\ 'x'")
    _others_unchanged(xlu.snapshot(data), snap, "name")
    _only_key_lines_changed(data, new, "name")


@needs_libxlutil
@pytest.mark.parametrize(("where", "name"), _all_files())
def test_remove_each_key(corpus: Path, xlu: LibXlutil, where: str, name: str) -> None:
    data = _read(corpus, where, name)
    cfg = parse(data)
    before = xlu.snapshot(data)
    for key in cfg:
        new = remove_key(cfg, key).to_bytes()
        after = xlu.snapshot(new)
        assert after.ok, (key, after.report)
        assert key not in after.key_order()
        _others_unchanged(before, after, key)
        assert len(new) < len(data)
        # what is left is the original minus whole statements
        assert new == remove_key(parse(new), key).to_bytes()


@needs_libxlutil
def test_edit_key_set_twice(xlu: LibXlutil) -> None:
    data = (DATA / "nested_plus.cfg").read_bytes()
    new = set_value(parse(data), "memory", 2048).to_bytes()
    _check_set_long(xlu, data, parse(new), "memory", 2048)
    # the shadowed first assignment is untouched, the winning one edited
    assert b"memory = 0x400\n" in new
    assert b"memory = 2048\t# set twice: the last one wins\n" in new


@needs_libxlutil
def test_edit_plus_equal_number(xlu: LibXlutil) -> None:
    data = (DATA / "plus_memory.cfg").read_bytes()
    assert xlu.snapshot(data).long["memory"][0] != 0  # xl ignores memory here
    new = set_value(parse(data), "memory", 1024).to_bytes()
    assert new == b'name = "plus"\nmemory = 512\nmemory = 1024\n'
    assert xlu.snapshot(new).long["memory"] == (0, 1024)


@needs_libxlutil
def test_edit_plus_equal_string_and_list(xlu: LibXlutil) -> None:
    data = (DATA / "nested_plus.cfg").read_bytes()
    cfg = parse(data)
    new = set_value(cfg, "extra", "root=/dev/xvda1").to_bytes()
    snap = xlu.snapshot(new)
    assert snap.string["extra"] == (0, b"root=/dev/xvda1")
    _others_unchanged(xlu.snapshot(data), snap, "extra")
    new = set_value(cfg, "disk", Raw("[ 'phy:/dev/vg/z,xvda,w' ]")).to_bytes()
    snap = xlu.snapshot(new)
    assert snap.tree["disk"] == [b"phy:/dev/vg/z,xvda,w"]
    _others_unchanged(xlu.snapshot(data), snap, "disk")


# -- style ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "value", "after"),
    [
        (b"memory = '512'\n", 768, b"memory = '768'\n"),
        (b'memory = "1024"\n', 1536, b'memory = "1536"\n'),
        (b"memory = 0x200\n", 768, b"memory = 0x300\n"),
        (b"memory = 0x0200\n", 768, b"memory = 0x0300\n"),
        (b"memory = 01000\n", 768, b"memory = 01400\n"),
        (b"memory = '0x200'\n", 768, b"memory = '0x300'\n"),
        (b"memory=512 # MB\n", 768, b"memory=768 # MB\n"),
        (b"memory = 512\n", -1, b'memory = "-1"\n'),
        (b"memory = '1G'\n", 1024, b"memory = '1024'\n"),
        (b"memory = [1]\n", 1024, b"memory = 1024\n"),
        (b"name = 'a'\n", "b'c", b"name = 'b\\'c'\n"),
        (b'name = "a"\n', "line1\nline2", b'name = "line1\\nline2"\n'),
        (b"name = 'a'\n", Raw('"quoted"'), b'name = "quoted"\n'),
    ],
)
def test_replace_keeps_style(before: bytes, value: int | str | Raw, after: bytes) -> None:
    assert set_value(parse(before), before.split(b"=")[0].strip().decode(), value).to_bytes() == (
        after
    )


@pytest.mark.parametrize(
    ("before", "key", "value", "after"),
    [
        # xen-tools alignment and quoting, next to the related key
        (
            b"vcpus       = '4'\nmemory      = '1024'\n\nname        = 'x'\n",
            "maxmem",
            2048,
            b"vcpus       = '4'\nmemory      = '1024'\nmaxmem      = '2048'\n\nname        = 'x'\n",
        ),
        (b"memory=512\nvcpus=2\n", "maxmem", 768, b"memory=512\nmaxmem=768\nvcpus=2\n"),
        (b"memory\t= 512\n", "maxmem", 768, b"memory\t= 512\nmaxmem\t= 768\n"),
        (b"  memory = 0x200 # x\n", "maxmem", 1024, b"  memory = 0x200 # x\n  maxmem = 0x400\n"),
        (b"maxmem = '2048'\n", "memory", 1024, b"memory = '1024'\nmaxmem = '2048'\n"),
        (b"vcpus = 2\n", "maxvcpus", 4, b"vcpus = 2\nmaxvcpus = 4\n"),
        # related key on the last line, without newline: the file still ends without one
        (b"memory = 512", "maxmem", 768, b"memory = 512\nmaxmem = 768"),
        (b"a=1; memory=512; b=2\nc=3\n", "maxmem", 768, b"a=1; memory=512; b=2\nmaxmem=768\nc=3\n"),
        # no related key: at the end, before trailing blank lines, in the file's style
        (b"name = 'x'\n\n\n", "vcpus", 2, b"name = 'x'\nvcpus = 2\n\n\n"),
        (b"name = 'x'", "vcpus", 2, b"name = 'x'\nvcpus = 2"),
        (
            b"vcpus  = '1'\nname   = 'x'\n",
            "uuid",
            "u",
            b"vcpus  = '1'\nname   = 'x'\nuuid   = 'u'\n",
        ),
        (b"", "name", "x", b'name = "x"\n'),
        (b"# only a comment\n", "memory", 64, b"# only a comment\nmemory = 64\n"),
        # a stray last byte must stay last or it turns into an error
        (b"memory = 512 %", "maxmem", 768, b"memory = 512 \nmaxmem = 768%"),
    ],
)
def test_insert_keeps_style(before: bytes, key: str, value: int | str, after: bytes) -> None:
    assert set_value(parse(before), key, value).to_bytes() == after


@pytest.mark.parametrize(
    ("before", "key", "after"),
    [
        (b"name = 'x'\nmemory = 512 # initial\nvcpus = 2\n", "memory", b"name = 'x'\nvcpus = 2\n"),
        (b"a=1; memory=2; b=3\n", "memory", b"a=1; b=3\n"),
        (b"a=1; memory=2\n", "memory", b"a=1;\n"),
        (b"a=1; memory=2 # c\n", "memory", b"a=1; # c\n"),
        (b"a=1\nmemory=2", "memory", b"a=1"),
        (b"# c\nmemory=2", "memory", b"# c\n"),
        (b"memory=1\na=1\nmemory+=2\n", "memory", b"a=1\n"),
        (b"disk = [ 'a',\n  'b' ]\nname='x'\n", "disk", b"name='x'\n"),
        (b"name='x'\n", "memory", b"name='x'\n"),
    ],
)
def test_remove_key(before: bytes, key: str, after: bytes) -> None:
    assert remove_key(parse(before), key).to_bytes() == after


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Memory", 1),
        ("memory", Raw("1 2")),
        ("memory", Raw("1\nname = 'x'")),
        ("memory", Raw("'unterminated")),
        ("memory", Raw("512 # a comment")),
        ("name", "nul\0byte"),
        ("memory", True),
    ],
)
def test_bad_edits_are_refused(key: str, value: object) -> None:
    with pytest.raises(CfgEditError):
        set_value(parse(b"memory = 512\n"), key, value)  # type: ignore[arg-type]


# -- diffs and patch(1) ---------------------------------------------------


def _patch_in_scratch_root(tmp_path: Path, rel: str, old: bytes, diff: str) -> bytes:
    target = tmp_path / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(old)
    done = subprocess.run(
        ["patch", "-p1", "--batch", "--silent"],
        cwd=tmp_path,
        input=diff.encode("utf-8", "surrogateescape"),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return target.read_bytes()


@needs_patch
@pytest.mark.parametrize(("where", "name"), _all_files())
def test_memory_patch_applies_with_patch_p1(
    tmp_path: Path, corpus: Path, where: str, name: str
) -> None:
    data = _read(corpus, where, name)
    path = f"/etc/xen/{name}"
    diff = propose_memory_patch(path, data, 3000, 6000)
    assert diff is not None
    assert diff.startswith(f"--- a/etc/xen/{name}\n+++ b/etc/xen/{name}\n")
    patched = _patch_in_scratch_root(tmp_path, f"etc/xen/{name}", data, diff)
    cfg = parse(patched)
    assert (cfg.memory_mib, cfg.maxmem_mib) == (3000, 6000)
    expected = set_value(set_value(parse(data), "memory", 3000), "maxmem", 6000)
    assert patched == expected.to_bytes()


@needs_patch
def test_patch_handles_missing_final_newline(tmp_path: Path) -> None:
    old = b"name = 'n'\nmemory = 256"
    diff = propose_memory_patch("/etc/xen/n.cfg", old, 512, None)
    assert diff is not None and "\\ No newline at end of file" in diff
    assert _patch_in_scratch_root(tmp_path, "etc/xen/n.cfg", old, diff) == (
        b"name = 'n'\nmemory = 512"
    )


@needs_patch
def test_patch_keeps_non_utf8_and_cr_bytes(tmp_path: Path) -> None:
    old = b"# caf\xe9\r\n# form\x0cfeed\nmemory = 256\n"
    diff = propose_memory_patch("/etc/xen/l.cfg", old, 512, None)
    assert diff is not None
    assert _patch_in_scratch_root(tmp_path, "etc/xen/l.cfg", old, diff) == (
        b"# caf\xe9\r\n# form\x0cfeed\nmemory = 512\n"
    )


def test_unified_diff_headers_and_empty() -> None:
    assert unified_diff("/etc/xen/a.cfg", "x\n", "x\n") == ""
    diff = unified_diff("/etc/xen/a.cfg", "x = 1\n", "x = 2\n")
    assert diff.splitlines()[:2] == ["--- a/etc/xen/a.cfg", "+++ b/etc/xen/a.cfg"]
    assert "-x = 1\n+x = 2\n" in diff


def test_propose_memory_patch_rules(corpus: Path) -> None:
    data = (corpus / "xlcfg_babrakov_windows.cfg").read_bytes()  # memory = "1024", no maxmem
    assert propose_memory_patch("/etc/xen/w.cfg", data, 1024, None) is None
    assert propose_memory_patch("/etc/xen/w.cfg", data, 1024, 1024) is None
    # maxmem equal to the new memory: not added
    diff = propose_memory_patch("/etc/xen/w.cfg", data, 2048, 2048)
    assert diff is not None and "maxmem" not in diff and '+memory = "2048"' in diff
    diff = propose_memory_patch("/etc/xen/w.cfg", data, None, 4096)
    assert diff is not None and '+maxmem = "4096"' in diff and "-memory" not in diff
    with pytest.raises(ValueError, match="maxmem"):
        propose_memory_patch("/etc/xen/w.cfg", data, 2048, 1024)
    noble = (corpus / "xlcfg_xentools4.9.2_noble_maxmem.cfg").read_bytes()  # 16384 / 65536
    with pytest.raises(ValueError, match="maxmem"):
        propose_memory_patch("/etc/xen/n.cfg", noble, 70000, None)
    diff = propose_memory_patch("/etc/xen/n.cfg", noble, 8192, None)
    assert diff is not None
    assert "-memory      = '16384'\n+memory      = '8192'\n" in diff
    hexed = b"memory = 0x200\n"
    assert propose_memory_patch("/etc/xen/h.cfg", hexed, 512, 512) is None


def test_propose_memory_patch_refuses_unparsable() -> None:
    with pytest.raises(ValueError):
        propose_memory_patch("/etc/xen/bad.cfg", b"memory = 512\r\n", 1024, None)


def test_remove_absent_key_is_a_no_op() -> None:
    cfg = parse(b"name = 'x'\n")
    assert remove_key(cfg, "memory") is cfg
