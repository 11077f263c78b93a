"""Property tests: on mutated and generated inputs we accept exactly what
libxlutil accepts, read the same values, and our edits stay correct.

Example counts are bounded so the suite stays fast in CI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import corpus_dir
from tests.libxlutil import IsolatedJudge, LibXlutil, Snapshot, available, disagreements
from tests.test_xlcfg_parse import CORPUS, DATA, OWN
from xenaudit.xlcfg import CfgSyntaxError, XlConfig, parse, remove_key, set_value

pytestmark = pytest.mark.skipif(not available(), reason="libxlutil.so not installed")

SEEDS = [(corpus_dir() / n).read_bytes() for n in CORPUS] + [(DATA / n).read_bytes() for n in OWN]

# Characters that matter to the lexer and grammar, plus some that do not.
ALPHABET = [*b"'\"[]#;=+\\\n\t ,.-x0123456789abfgzA%\r", 0xE9]

_lib: LibXlutil | None = None


def lib() -> LibXlutil:
    global _lib
    if _lib is None:
        _lib = LibXlutil()
    return _lib


@pytest.fixture(scope="module")
def isolated() -> Iterator[IsolatedJudge]:
    judge = IsolatedJudge()
    yield judge
    judge.close()


def _ours(data: bytes) -> XlConfig | CfgSyntaxError:
    try:
        return parse(data, "fuzz.cfg")
    except CfgSyntaxError as e:
        return e


def _assert_agree(data: bytes, snap: Snapshot) -> XlConfig | None:
    ours = _ours(data)
    accepted = isinstance(ours, XlConfig)
    assert accepted == snap.ok, f"{data!r}: ours={ours!r} libxlutil={snap.report!r}"
    if isinstance(ours, XlConfig):
        assert ours.to_bytes() == data
        assert disagreements(ours, snap) == []
        return ours
    return None


mutation = st.tuples(
    st.sampled_from(["insert", "delete", "swap", "replace"]),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.sampled_from(ALPHABET),
)


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for op, where, char in draw(st.lists(mutation, min_size=1, max_size=4)):
        pos = int(where * (len(data) + 1))
        if op == "insert" or not data:
            data[pos:pos] = bytes([char])
        else:
            pos = min(pos, len(data) - 1)
            if op == "delete":
                del data[pos]
            elif op == "replace":
                data[pos] = char
            elif pos + 1 < len(data):
                data[pos], data[pos + 1] = data[pos + 1], data[pos]
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data)))
        data = data[start : start + draw(st.integers(0, 120))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid())
def test_mutated_corpus_agrees_with_libxlutil(data: bytes) -> None:
    _assert_agree(data, lib().snapshot(data))


# -- generated from the grammar ------------------------------------------

atom = st.one_of(
    st.sampled_from(
        [b"1", b"512", b"0x1f", b"010", b"08", b"0x", b"1abc", b"99999999999999999999"]
    ),
    st.builds(
        lambda q, parts: q + b"".join(parts) + q,
        st.sampled_from([b"'", b'"']),
        st.lists(
            st.sampled_from(
                [
                    b"a",
                    b" ",
                    b"5",
                    b"-",
                    b"\\n",
                    b"\\t",
                    b"\\'",
                    b'\\"',
                    b"\\\\",
                    b"\\012",
                    b"\\0 1",
                    b"\\1",
                    b"\\x41",
                    b"\xc3\xa9",
                    b"'",
                    b'"',
                    b"#",
                    b"\\q",
                ]
            ),
            max_size=5,
        ),
    ),
)
value = st.recursive(
    atom,
    lambda inner: st.builds(
        lambda open_, items, sep, close: b"[" + open_ + sep.join(items) + close + b"]",
        st.sampled_from([b"", b" ", b"\n", b"\n# c\n"]),
        st.lists(inner, max_size=3),
        st.sampled_from([b",", b", ", b",\n", b" ,\n# c\n", b" "]),
        st.sampled_from([b"", b",", b"\n", b",\n"]),
    ),
    max_leaves=6,
)
statement = st.builds(
    lambda key, op, v, end: key + op + v + end,
    st.sampled_from([b"memory", b"maxmem", b"name", b"a", b"b.c", b"x_1", b"Memory"]),
    st.sampled_from([b"=", b" = ", b"+=", b" += ", b"\t=\t", b"==", b"=\n"]),
    value,
    st.sampled_from([b"\n", b";", b"; ", b" # note\n", b"", b"\r\n", b" %", b"#"]),
)
config = st.builds(b"".join, st.lists(statement, max_size=6))


@settings(max_examples=300, deadline=None)
@given(config)
def test_generated_configs_agree_with_libxlutil(data: bytes) -> None:
    _assert_agree(data, lib().snapshot(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(config, near_valid()), st.integers(0, 10**6), st.data())
def test_edits_of_accepted_inputs_stay_correct(
    data: bytes, number: int, pick: st.DataObject
) -> None:
    snap = lib().snapshot(data)
    assume(snap.ok)
    cfg = parse(data)
    for key in ("memory", "maxmem"):
        new = set_value(cfg, key, number).to_bytes()
        after = lib().snapshot(new)
        assert after.ok, (new, after.report)
        assert after.long[key] == (0, number)
        for other in snap.key_order():
            if other != key:
                assert after.tree[other] == snap.tree[other]
    if cfg.keys():
        key = pick.draw(st.sampled_from(cfg.keys()))
        new = remove_key(cfg, key).to_bytes()
        after = lib().snapshot(new)
        assert after.ok, (new, after.report)
        assert key not in after.key_order()
        assert {k: v for k, v in snap.tree.items() if k != key} == after.tree


# -- arbitrary bytes --------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_syntax_errors(data: bytes) -> None:
    try:
        cfg = parse(data)
    except CfgSyntaxError:
        return
    assert cfg.to_bytes() == data
    cfg.settings()
    for key in cfg:
        cfg.read_long(key)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_text_raises_only_syntax_errors(text: str) -> None:
    try:
        cfg = parse(text)
    except CfgSyntaxError:
        return
    assert cfg.text == text
    cfg.settings()


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=60) | st.builds(bytes.__add__, st.sampled_from(SEEDS), st.binary(max_size=8))
)
def test_arbitrary_bytes_agree_with_isolated_libxlutil(
    isolated: IsolatedJudge, data: bytes
) -> None:
    _assert_agree(data, isolated.snapshot(data))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([b"'", b'"']),
    st.binary(max_size=6),
    st.binary(max_size=6).filter(lambda b: b"\n" not in b),
)
def test_nul_in_quotes_aborts_libxlutil_and_we_refuse(
    isolated: IsolatedJudge, quote: bytes, before: bytes, after: bytes
) -> None:
    body = (before + b"\0" + after).replace(b"\n", b"").replace(b"\\", b"").replace(quote, b"")
    data = b"a = " + quote + body + quote + b"\n"
    snap = isolated.snapshot(data)
    assert snap.aborted
    with pytest.raises(CfgSyntaxError, match="NUL"):
        parse(data)
