"""Parsing: byte-exact round trip, and the same values as Xen's libxlutil.

Where libxlutil is installed every expectation below is also checked against
it; the expected results in the tables were worked out by reading
libxlu_cfg_l.l / libxlu_cfg_y.y / libxlu_cfg.c, not copied from our output.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tests.conftest import corpus_dir
from tests.libxlutil import LibXlutil, available, disagreements
from xenaudit.xlcfg import CfgSyntaxError, CfgValueError, parse

DATA = Path(__file__).parent / "xlcfg_data"
REPO_ROOT = Path(__file__).resolve().parent.parent

needs_libxlutil = pytest.mark.skipif(not available(), reason="libxlutil.so not installed")


def corpus_names() -> list[str]:
    rows = (line.split("\t") for line in (corpus_dir() / "MANIFEST.tsv").read_text().splitlines())
    return sorted(r[0] for r in rows if len(r) > 1 and r[1] == "xlcfg")


CORPUS = corpus_names()
OWN = sorted(p.name for p in DATA.glob("*.cfg"))


@pytest.fixture(scope="module")
def xlu() -> LibXlutil:
    if not available():
        pytest.skip("libxlutil.so not installed")
    return LibXlutil()


def test_corpus_has_xlcfg_files() -> None:
    assert len(CORPUS) >= 10
    assert all(n.startswith("xlcfg_") for n in CORPUS)


# -- round trip -----------------------------------------------------------


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_round_trip(corpus: Path, name: str) -> None:
    data = (corpus / name).read_bytes()
    cfg = parse(data, name)
    assert cfg.to_bytes() == data
    assert "".join(t.text for t in cfg.tokens).encode("latin-1") == data
    assert parse(cfg.text, name).to_bytes() == data


@pytest.mark.parametrize("name", OWN)
def test_own_files_round_trip(name: str) -> None:
    data = (DATA / name).read_bytes()
    cfg = parse(data, name)
    assert cfg.to_bytes() == data
    assert parse(cfg.text).to_bytes() == data


def test_non_utf8_bytes_survive_as_text() -> None:
    data = (DATA / "latin1.cfg").read_bytes()
    cfg = parse(data)
    assert cfg.get_string("name") == "caf\udce9"  # surrogate escape of byte 0xe9
    assert cfg.text.encode("utf-8", "surrogateescape") == data


# -- agreement with libxlutil ---------------------------------------------


@needs_libxlutil
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_values_match_libxlutil(corpus: Path, xlu: LibXlutil, name: str) -> None:
    data = (corpus / name).read_bytes()
    snap = xlu.snapshot(data, name)
    assert snap.ok, snap.report
    cfg = parse(data, name)
    assert disagreements(cfg, snap) == []
    assert len(cfg.keys()) >= 5


@needs_libxlutil
@pytest.mark.parametrize("name", OWN)
def test_own_files_match_libxlutil(xlu: LibXlutil, name: str) -> None:
    data = (DATA / name).read_bytes()
    snap = xlu.snapshot(data, name)
    assert snap.ok, snap.report
    assert disagreements(parse(data, name), snap) == []


@needs_libxlutil
def test_every_documented_key_absent_agrees(xlu: LibXlutil) -> None:
    """Keys that are not set: libxlutil says ESRCH, we say absent/None."""
    from xenaudit.xlcfg.options import KNOWN_KEYS

    data = (corpus_dir() / "xlcfg_babrakov_windows.cfg").read_bytes()
    cfg = parse(data)
    snap = xlu.snapshot(data)
    for key in sorted(KNOWN_KEYS - set(snap.key_order())):
        assert cfg.read_long(key).problem == "absent"
        assert cfg.get_string(key) is None and cfg.get_list(key) is None


# -- accept / reject ------------------------------------------------------

# (input, accepted?, why) -- each reason points at the rule in Xen's sources.
CASES: list[tuple[bytes, bool, str]] = [
    (b"", True, "empty file"),
    (b"a=1", True, "last statement needs no newline (file: stmts assignment)"),
    (b"a=1\n\n;;\n", True, "empty statements"),
    (b"a = 1 ; b = 'x'\n", True, "';' ends a statement"),
    (b"a=1 b=2\n", False, "two statements need a separator"),
    (b"a=\n1\n", False, "the value must be on the line of '='"),
    (b"A=1\n", False, "IDENT is [a-z][._0-9a-z]*: no capitals"),
    (b"_a=1\n", False, "IDENT cannot start with '_'"),
    (b"a.b_9=1\n", True, "dots, digits and '_' after the first letter"),
    (b"a=1\r\n", False, "\\r is not blank: CRLF files are rejected"),
    (b"# c\r\n", True, "...but a comment may contain \\r"),
    (b"a=1\n#", True, "lone '#' as last byte: flex never reports it"),
    (b"a=1\n#x", False, "comment without newline: '#x' is a lexical error"),
    (b"a=1 %", True, "any stray last byte is never reported"),
    (b"a=1 %%", False, "two stray bytes are"),
    (b"a=1 %\n", False, "a stray byte before a newline is"),
    (b"a=%", False, "stray last byte dropped, then a value is missing"),
    (b"a=0x1F\n", False, "NUMBER is [0-9][0-9a-fx]*: upper case hex does not lex"),
    (b"a=0x1f\n", True, "lower case hex"),
    (b"a=1.5\n", False, "'.' is not part of a NUMBER"),
    (b"a=-1\n", False, "no negative NUMBER tokens"),
    (b"a=1abc\n", True, "NUMBER may hold letters a-f (read later by strtol)"),
    (b"a=1g\n", False, "NUMBER '1' then IDENT 'g'"),
    (b"a='x\n", False, "unterminated string"),
    (b"a='x\\\n'\n", False, "no backslash-newline in strings"),
    (b"a='\\q'\n", False, "unknown escape"),
    (b"a='\\x41'\n", False, "\\x escapes are always refused (dequote bug)"),
    (b"a='\\012'\n", True, "\\0 + two more digits: accepted (and dropped)"),
    (b"a='\\01'\n", False, "\\0 + one digit: strtoul consumed only 1 char"),
    (b"a='\\0 1'\n", True, "strtoul skips a blank: 2 chars consumed"),
    (b'a="it\'s"\n', True, "the other quote needs no escape"),
    (b"a=[]\n", True, "empty list"),
    (b"a=[,]\n", False, "a list cannot start with ','"),
    (b"a=[1,]\n", True, "trailing comma"),
    (b"a=[1,,2]\n", False, "no empty items"),
    (b"a=[\n1\n,\n# c\n2\n,\n]\n", True, "newlines and comments inside lists"),
    (b"a=[[1,2],[3]]\n", True, "nested lists"),
    (b"a=[1 2]\n", False, "items need commas"),
    (b"a+=1\n", True, "+= on an unset key"),
    (b"a=[1]\na+=[2]\n", True, "+= joins lists"),
    (b"a=[1]\na+='2'\n", False, 'can\'t add [list] to "string"'),
    (b"a='1'\na+=[2]\n", False, "...or vice versa"),
    (b"a='1'\na=[2]\na+=[3]\n", True, "+= looks at the value in force"),
    (b"a+ =1\n", False, "'+' alone is a lexical error"),
    (b"a==1\n", False, "'=' '=' is a syntax error"),
    (b"a=1\n+=", False, "+= without a key"),
    (b"a=(1)\n", False, "Python syntax is gone"),
    (b"\xff=1\n", False, "8-bit bytes only in strings and comments"),
    (b"a='\xff'\n", True, "8-bit bytes in strings are fine"),
]


@pytest.mark.parametrize(("data", "accepted", "why"), CASES)
def test_accept_reject(data: bytes, accepted: bool, why: str) -> None:
    if accepted:
        assert parse(data).to_bytes() == data, why
    else:
        with pytest.raises(CfgSyntaxError):
            parse(data)


@needs_libxlutil
@pytest.mark.parametrize(("data", "accepted", "why"), CASES)
def test_accept_reject_matches_libxlutil(
    xlu: LibXlutil, data: bytes, accepted: bool, why: str
) -> None:
    snap = xlu.snapshot(data)
    assert snap.ok == accepted, f"{why}: {snap.report}"
    if accepted:
        assert disagreements(parse(data), snap) == []


def test_nul_inside_quotes_is_refused() -> None:
    # libxlutil asserts and aborts on it (checked in test_xlcfg_fuzz.py).
    with pytest.raises(CfgSyntaxError, match="NUL"):
        parse(b"a='x\x00y'\n")
    assert parse(b"a=1\n#\x00\n").get_long("a") == 1


# -- error messages -------------------------------------------------------


def test_error_has_file_line_column_and_xl_wording() -> None:
    with pytest.raises(CfgSyntaxError) as info:
        parse(b"name = 'x'\nmemory = 512 mb\n", "/etc/xen/g.cfg")
    e = info.value
    assert isinstance(e, ValueError)
    assert (e.filename, e.line, e.column) == ("/etc/xen/g.cfg", 2, 14)
    assert str(e).startswith("/etc/xen/g.cfg:2:14: config parsing error near `mb': ")
    assert "syntax error, unexpected IDENT" in str(e)


def test_lexical_error_message() -> None:
    with pytest.raises(CfgSyntaxError) as info:
        parse(b"memory = 512\nMaxmem = 1024\n", "g.cfg")
    assert str(info.value) == "g.cfg:2:1: config parsing error near `Maxmem': lexical error"


def test_python_hint() -> None:
    with pytest.raises(CfgSyntaxError, match="Python"):
        parse(b"memory = 512 + 256\n")


def test_escape_error_message_matches_xl() -> None:
    with pytest.raises(CfgSyntaxError) as info:
        parse(b"a = '\\x41'\n", "g.cfg")
    assert "invalid digit after backslash hexnumerical character escape" in str(info.value)
    assert (info.value.line, info.value.column) == (1, 5)


def test_plus_mismatch_message() -> None:
    with pytest.raises(CfgSyntaxError, match="can't add \\[list\\] to"):
        parse(b"disk = ['a']\ndisk += 'b'\n")


# -- values ---------------------------------------------------------------

LONGS: list[tuple[bytes, int | None, str | None]] = [
    (b"memory = 512\n", 512, None),
    (b"memory = '512'\n", 512, None),
    (b'memory = "512"\n', 512, None),
    (b"memory = 0x200\n", 512, None),
    (b"memory = 01000\n", 512, None),
    (b"memory = ' 512'\n", 512, None),  # strtol skips leading blanks
    (b"memory = '+512'\n", 512, None),
    (b"memory = '-512'\n", -512, None),
    (b"memory = '512 '\n", None, "invalid"),  # ...but not trailing ones
    (b"memory = '1G'\n", None, "invalid"),
    (b"memory = 08\n", None, "invalid"),  # octal stops at 8
    (b"memory = 0x\n", None, "invalid"),
    (b"memory = 1e3\n", None, "invalid"),
    (b"memory = ''\n", None, "invalid"),
    (b"memory = [512]\n", None, "list"),
    (b"memory += 512\n", None, "addition"),
    (b"memory = 512\nmemory += 256\n", None, "addition"),
    (b"memory = 9223372036854775807\n", 2**63 - 1, None),
    (b"memory = 9223372036854775808\n", None, "range"),
    (b"memory = '-9223372036854775809'\n", None, "range"),
    (b"memory = '99999999999999999999x'\n", None, "range"),  # errno checked first
    (b"memory = " + b"1" * 5000 + b"\n", None, "range"),  # longer than Python's int() reads
    (b"memory = 0" + b"7" * 5000 + b"\n", None, "range"),
    (b"name = 'x'\n", None, "absent"),
]

_ERRNO = {
    None: 0,
    "absent": errno.ESRCH,
    "invalid": errno.EINVAL,
    "list": errno.EINVAL,
    "addition": errno.EINVAL,
    "range": errno.ERANGE,
}


@pytest.mark.parametrize(("data", "value", "problem"), LONGS)
def test_get_long(data: bytes, value: int | None, problem: str | None) -> None:
    cfg = parse(data)
    read = cfg.read_long("memory")
    assert (read.value, read.problem) == (value, problem)
    assert cfg.get_long("memory") == value
    assert cfg.memory_mib == value


@needs_libxlutil
@pytest.mark.parametrize(("data", "value", "problem"), LONGS)
def test_get_long_matches_libxlutil(
    xlu: LibXlutil, data: bytes, value: int | None, problem: str | None
) -> None:
    assert xlu.get_long(data, "memory") == (_ERRNO[problem], value)


def test_plus_equal_concatenates_strings_not_numbers() -> None:
    cfg = parse((DATA / "plus_memory.cfg").read_bytes())
    assert cfg.get_string("memory") == "512256"
    assert cfg.memory_mib is None
    read = cfg.read_long("memory")
    assert (read.message, read.line) == ("can't use += with numbers for parameter `memory'", 3)


def test_nested_file_values() -> None:
    cfg = parse((DATA / "nested_plus.cfg").read_bytes())
    assert cfg.memory_mib == 1024
    assert cfg.maxmem_mib == 2048
    assert cfg.get_string("extra") == "console=hvc0 quiet"
    assert cfg.get_list("disk") == [
        "phy:/dev/vg/a,xvda,w",
        "phy:/dev/vg/b,xvdb,w",
        "file:/tmp/c.img,xvdc,r",
    ]
    assert cfg.get_list("vnuma") == [
        ["pnode=0", "size=1024", "vcpus=0-1", "vdistances=10,20"],
        ["pnode=1", "size=1024", "vcpus=2-3", "vdistances=20,10"],
    ]
    assert cfg.get_list("cpus") == []
    assert cfg.get_long("vcpus") == 8  # 010 is octal
    assert cfg.get_string("vcpus") == "010"  # text kept as written
    assert cfg.get_string("cmdline") == "a 'quoted' word\tand a \\ backslash"
    assert cfg.get_list("device_model_args") == ["-drop", "x"]  # \012 + "0" dropped
    assert cfg.get_string("serial.0") == "pty"
    assert cfg.get_list("memory") is None and cfg.get_string("disk") is None
    assert cfg.keys()[:4] == ["name", "type", "memory", "maxmem"]


def test_settings_types_for_json() -> None:
    cfg = parse(
        b"a = 0x200\nb = '512'\nc = [ 1, '2', [ 010 ] ]\nd = 08\ne = 5\ne += 6\n"
        b"f = 99999999999999999999\n"
        b"g = " + b"9" * 5000 + b"\n"
    )
    assert cfg.settings() == {
        "a": 512,
        "b": "512",
        "c": [1, "2", [8]],
        "d": "08",  # strtol cannot read it: kept as text
        "e": "56",  # += gives a string
        "f": "99999999999999999999",
        "g": "9" * 5000,
    }


# -- what xl derives ------------------------------------------------------


def test_corpus_memory(corpus: Path) -> None:
    # Read by eye from the files.
    windows = parse((corpus / "xlcfg_babrakov_windows.cfg").read_bytes())
    assert (windows.memory_mib, windows.maxmem_mib) == (1024, 1024)
    assert windows.guest_type == "hvm"
    assert windows.name == "windows"
    noble = parse((corpus / "xlcfg_xentools4.9.2_noble_maxmem.cfg").read_bytes())
    assert (noble.memory_mib, noble.maxmem_mib) == (16384, 65536)
    assert noble.guest_type == "pv"
    pvh = parse((corpus / "xlcfg_xen_xlexample.pvhlinux").read_bytes())
    assert (pvh.guest_type, pvh.memory_mib, pvh.name) == ("pvh", 512, "example.pvhlinux")
    hvm = parse((corpus / "xlcfg_xen_xlexample.hvm").read_bytes())
    assert hvm.guest_type == "pv"  # no type= or builder=: xl's x86 default


def test_maxmem_defaults_to_memory() -> None:
    assert parse(b"memory = 512\n").maxmem_mib == 512
    assert parse(b"memory = 512\nmaxmem = '1G'\n").maxmem_mib == 512
    assert parse(b"name = 'x'\n").maxmem_mib is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "pv"),
        (b"type = 'hvm'", "hvm"),
        (b"type = 'pvh'", "pvh"),
        (b"type = 'pv'", "pv"),
        (b"type = 'h'", "hvm"),  # strncmp over strlen(value): prefixes work
        (b"type = ''", "hvm"),  # ...even the empty one
        (b"type = 'p'", "pv"),
        (b"builder = 'hvm'", "hvm"),
        (b"builder = 'generic'", "pv"),
        (b"builder = 'gen'", "pv"),
        (b"type = 'hvm'\nbuilder = 'hvm'", "hvm"),
        (b"type = ['hvm']", "pv"),  # a list is ignored (with a warning) by xl
    ],
)
def test_guest_type(data: bytes, expected: str) -> None:
    assert parse(data).guest_type == expected


@pytest.mark.parametrize(
    "data", [b"type = 'xen'", b"builder = 'linux'", b"type = 'pv'\nbuilder = 'hvm'"]
)
def test_guest_type_refused_by_xl(data: bytes) -> None:
    with pytest.raises(CfgValueError):
        _ = parse(data).guest_type


def test_package_names_stay_what_they_name() -> None:
    """The package loads its modules lazily; a module must never shadow a public name."""
    import importlib
    import pkgutil
    import types

    import xenaudit.xlcfg as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"xenaudit.xlcfg.{module.name}")
    for name in package.__all__:
        assert not isinstance(getattr(package, name), types.ModuleType), name
    assert package.lint(parse(b"memory = 512\nmaxmem = 256\n"))[0].code == "maxmem-below-memory"
