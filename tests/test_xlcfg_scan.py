"""The statement scanner (one regular-expression match per statement) and the
token-by-token parser read every file the same way.

`parse` uses the scanner whenever it can and falls back to the tokens for the
rest, so the scanner may refuse a file, but whatever it accepts must come out
exactly as the full parser builds it: the same keys, operators, values and
offsets of every part.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import corpus_dir
from tests.test_xlcfg_fuzz import SEEDS, config, near_valid
from tests.test_xlcfg_parse import CASES, CORPUS
from xenaudit.xlcfg import CfgSyntaxError, parse
from xenaudit.xlcfg.lexer import tokenize
from xenaudit.xlcfg.syntax import (
    Assignment,
    parse_statements,
    scan_statements,
    statement_from_match,
)


def _full(src: str) -> list[Assignment] | None:
    try:
        return parse_statements(src, tokenize(src), "t.cfg")
    except CfgSyntaxError:
        return None


def _assert_scanner_agrees(data: bytes) -> bool:
    """True when the scanner accepted `data` (and then agreed with the parser)."""
    src = data.decode("latin-1")
    scanned = scan_statements(src)
    if scanned is None:
        return False
    raw, matches = scanned
    full = _full(src)
    assert full is not None, f"scanner accepts what the parser refuses: {data!r}"
    assert [statement_from_match(src, m) for m in matches] == full, data
    assert raw == [(a.key, a.op, src[a.value.start : a.value.end]) for a in full], data
    return True


@pytest.mark.parametrize("name", CORPUS)
def test_real_files_take_the_scanner(name: str) -> None:
    data = (corpus_dir() / name).read_bytes()
    assert _assert_scanner_agrees(data)


@pytest.mark.parametrize(("data", "accepted", "why"), CASES)
def test_accept_reject_table(data: bytes, accepted: bool, why: str) -> None:
    if _assert_scanner_agrees(data) and not accepted:
        # only a list joined to a string is left to parse()'s own check
        with pytest.raises(CfgSyntaxError, match="can't add"):
            parse(data)


@pytest.mark.parametrize(
    "data",
    [
        b"a = [ 'x', # it's a comment with a quote\n 2 ]\n",
        b"a = 'x' # comment\nb = \"y\";c=3;\n\n;\n",
        b"disk = [\n  'a',\n  'b',\n]\n",
        b"a = 1",
        b"a = 1 ;  ",
        b"cmdline = 'a \\'quoted\\' word\\tand \\\\'\n",
    ],
)
def test_scanner_reads_common_shapes(data: bytes) -> None:
    assert _assert_scanner_agrees(data)


@pytest.mark.parametrize(
    "data",
    [
        b"a = [[1], [2]]\n",  # nested lists
        b"a = ['\\n']\n",  # escapes inside a list
        b"a = 1 %",  # a stray last byte
        b"a = 1\n#",
        b"a = 'x\\q'\n",  # a bad escape
        b"a = 1\n#\x00\n",  # a NUL byte, even in a comment
    ],
)
def test_scanner_leaves_the_rare_shapes_to_the_parser(data: bytes) -> None:
    src = data.decode("latin-1")
    assert scan_statements(src) is None
    try:
        cfg = parse(data)
    except CfgSyntaxError:
        return
    assert cfg.statements == _full(src)


@settings(max_examples=300, deadline=None)
@given(config)
def test_generated_configs(data: bytes) -> None:
    _assert_scanner_agrees(data)


# Only valid pieces, so that most files reach the scanner's every branch.
_string_part = st.sampled_from(
    [b"a", b" ", b"#", b";", b"[", b"]", b",", b"\\n", b"\\'", b'\\"', b"\\012", b"\xc3\xa9"]
)
_atom = st.one_of(
    st.sampled_from([b"1", b"0x1f", b"010", b"1abc", b"99999999999999999999"]),
    st.builds(lambda parts: b"'" + b"".join(parts) + b"\"'", st.lists(_string_part)),
    st.builds(lambda parts: b'"' + b"".join(parts) + b"'\"", st.lists(_string_part)),
)
_gap = st.sampled_from([b"", b" ", b"\t", b"\n", b"\n# it's ; [ ] 'x\n", b" #\n"])
_list = st.builds(
    lambda gaps, items, trailing: (
        b"["
        + gaps[0]
        + b",".join(item + gap for item, gap in zip(items, gaps[1:], strict=False))
        + trailing
        + b"]"
    ),
    st.lists(_gap, min_size=6, max_size=6),
    st.lists(_atom, max_size=5),
    st.sampled_from([b"", b",", b", \n"]),
)
_valid_statement = st.builds(
    lambda lead, key, op, value, end: lead + key + op + value + end,
    st.sampled_from([b"", b" ", b";", b"\n", b"# c\n", b"\t;\n"]),
    st.sampled_from([b"memory", b"a", b"b.c", b"x_1"]),
    st.sampled_from([b"=", b" = ", b"\t=", b"+="]),
    st.one_of(_atom, _list),
    st.sampled_from([b"\n", b";", b" # note ' [\n", b" ;", b"\t\n"]),
)


@settings(max_examples=300, deadline=None)
@given(st.builds(b"".join, st.lists(_valid_statement, max_size=6)), st.sampled_from([b"", b"a=1"]))
def test_generated_valid_configs(body: bytes, last: bytes) -> None:
    data = body + last
    assert _assert_scanner_agrees(data) or "[" in data.decode("latin-1")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid())
def test_mutated_corpus(data: bytes) -> None:
    _assert_scanner_agrees(data)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=80) | st.builds(bytes.__add__, st.sampled_from(SEEDS), st.binary(max_size=8))
)
def test_arbitrary_bytes(data: bytes) -> None:
    _assert_scanner_agrees(data)


@settings(max_examples=200, deadline=None)
@given(st.one_of(config, near_valid()))
def test_parse_gives_the_parser_statements(data: bytes) -> None:
    src = data.decode("latin-1")
    try:
        cfg = parse(data)
    except CfgSyntaxError:
        assert _full(src) is None or "+=" in src
        return
    assert cfg.statements == _full(src)
    assert "".join(t.text for t in cfg.tokens) == src
