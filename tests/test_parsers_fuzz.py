"""Hostile input: parsers raise nothing but ParseError, kernel-log parsing nothing at all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import corpus_dir
from xenaudit.parsers.balloon import parse_balloon
from xenaudit.parsers.buddyinfo import parse_buddyinfo, unusable_free_index
from xenaudit.parsers.guest import parse_guest
from xenaudit.parsers.interface import ParseError
from xenaudit.parsers.kernlog import iter_kernlog_chunks, parse_kernlog
from xenaudit.parsers.meminfo import parse_meminfo
from xenaudit.parsers.ps import parse_ps
from xenaudit.parsers.psi import parse_psi
from xenaudit.parsers.slabinfo import parse_slabinfo
from xenaudit.parsers.sysvm import parse_sysvm
from xenaudit.parsers.vmstat import parse_vmstat

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _real_lines() -> list[str]:
    lines: list[str] = []
    for sample in sorted(corpus_dir().glob("*.*")):
        if sample.name == "MANIFEST.tsv":
            continue
        lines.extend(sample.read_text(errors="replace").splitlines())
    return lines


REAL = _real_lines()
PIECES = [
    "[ 1.0] ",
    "Nov 25 10:00:00 host kernel: ",
    "page allocation failure",
    ": order:",
    ", mode:0x",
    "(GFP_ATOMIC|",
    " invoked oom-killer: gfp_mask=",
    "Killed process ",
    "Kill process 1 (x) score 2 or sacrifice child",
    "xen:balloon: ",
    "\x1b[31m",
    "\x00",
    "(",
    ")",
    "\r",
    "\n",
    "\ufffd",
]
junk = st.text(max_size=120)
line = st.one_of(st.sampled_from(REAL), junk, st.lists(st.sampled_from(PIECES)).map("".join))
mixture = st.tuples(
    st.lists(line, max_size=60), st.sampled_from(["\n", "\r\n", "\r", ""]), st.booleans()
).map(lambda t: t[1].join(t[0]) + ("\n" if t[2] else ""))


@FUZZ
@given(st.text())
def test_kernlog_never_raises_on_text(text: str) -> None:
    log = parse_kernlog(text)
    assert log.lines_read >= 0


@FUZZ
@given(st.binary())
def test_kernlog_never_raises_on_bytes(raw: bytes) -> None:
    log = parse_kernlog(raw)
    assert log.lines_read == raw.count(b"\n") + (0 if raw.endswith(b"\n") or not raw else 1)


@FUZZ
@given(mixture)
def test_kernlog_never_raises_on_real_lines_among_junk(text: str) -> None:
    log = parse_kernlog(text)
    for event in log.events:
        assert 1 <= event.line <= max(1, log.lines_read)


@FUZZ
@given(mixture, st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=20))
def test_block_boundaries_do_not_matter(text: str, sizes: list[int]) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    blocks, position = [], 0
    for index in range(10_000):
        size = sizes[index % len(sizes)]
        blocks.append(raw[position : position + size])
        position += size
        if position >= len(raw):
            break
    assert tuple(iter_kernlog_chunks(blocks)) == parse_kernlog(raw).events
    if all(len(piece.encode()) < 4000 for piece in text.split("\n")):
        assert parse_kernlog(raw).events == parse_kernlog(raw.decode("utf-8", "replace")).events


PARSERS: list[Callable[[str], object]] = [
    parse_meminfo,
    parse_buddyinfo,
    parse_vmstat,
    parse_psi,
    parse_slabinfo,
    parse_sysvm,
    parse_ps,
    parse_balloon,
]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@FUZZ
@given(text=mixture)
def test_section_parsers_raise_only_parse_error(parser, text: str) -> None:
    try:
        parser(text)
    except ParseError as exc:
        assert str(exc).startswith(exc.source)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.sampled_from(["DMA", "DMA32", "Normal"]),
            st.lists(st.integers(0, 10**6), min_size=1, max_size=11),
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(-2, 12),
)
def test_buddyinfo_round_trip_and_index_range(zones, order: int) -> None:
    text = "".join(
        f"Node {n}, zone {z:>8} " + " ".join(f"{c:6d}" for c in counts) + "\n"
        for n, z, counts in zones
    )
    buddy = parse_buddyinfo(text)
    assert [z.free_blocks for z in buddy.zones] == [tuple(c) for _, _, c in zones]
    assert 0.0 <= unusable_free_index(buddy, order) <= 1.0


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            ["meminfo", "buddyinfo", "vmstat", "psi_memory", "slabinfo", "sysvm", "ps", "kernlog",
             "balloon", "uname"]
        ),
        mixture,
    ),
    st.dictionaries(st.text(max_size=10), st.sampled_from(["ok", "missing", "denied", "x"])),
)  # fmt: skip
def test_parse_guest_never_raises(sections: dict[str, str], status: dict[str, str]) -> None:
    facts = parse_guest(sections, status, "fuzz")
    assert all(error.startswith("fuzz: ") for error in facts.errors)


def test_corpus_dir_is_the_fixture(corpus: Path) -> None:
    assert corpus == corpus_dir()
    assert len(REAL) > 500
