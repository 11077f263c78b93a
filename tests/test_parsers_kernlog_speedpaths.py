"""The fast paths give exactly what the thorough ones give.

Marker finding and line counting (StringZilla or the bytes methods), the
common-shape prefix matchers, the dense-log counting and the capped event list
are each checked against the plain path on real lines and on fuzzed mixtures.
Bounded: a few hundred examples each.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_parsers_fuzz import PIECES, REAL, mixture
from xenaudit.parsers import gfp, markers
from xenaudit.parsers.kernlog import (
    EventKeeper,
    ScanSummary,
    iter_kernlog_chunks,
    iter_kernlog_events,
    parse_kernlog,
)
from xenaudit.parsers.kernpatterns import MARKERS_BYTES
from xenaudit.parsers.lineprefix import _strip_full, strip_prefix

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PREFIXES = [
    "[ 1.000000] ",
    "[12345.678901] ",
    "[ 1.0] [    C3] ",
    "[ 1.0] [  T123] ",
    "[309805.658142s][pid:1361,cpu5,kswapd0]",
    "Nov 25 10:00:00 host kernel: ",
    "Nov  5 10:00:00 host kernel: [ 2.5] ",
    "Nov 25 10:00:00 host kernel: <4>[ 2.5] ",
    "Nov 25 10:00:00 host sshd[12]: ",
    "2026-11-25T10:00:00+00:00 host kernel: ",
    "/var/log/kern.log:Nov 25 10:00:00 host kernel: ",
    "<4>[ 1.0] ",
    "[ 1.0] host kernel: ",
    "",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PREFIXES), max_size=3).map("".join), st.sampled_from(REAL))
def test_fast_prefix_matchers_agree_with_the_full_pattern(prefix: str, line: str) -> None:
    text = prefix + line
    assert strip_prefix(text) == _strip_full(text)


def test_fast_prefix_matchers_agree_on_every_corpus_line() -> None:
    for line in REAL:
        assert strip_prefix(line) == _strip_full(line)


@FUZZ
@given(mixture)
def test_both_marker_finders_find_the_same(text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    native = markers.finder()
    assert markers.find_with_bytes(raw, 0, len(raw)) == native(raw, 0, len(raw))
    if len(raw) > 10:
        assert markers.find_with_bytes(raw, 3, len(raw) - 2) == native(raw, 3, len(raw) - 2)


def test_the_finders_agree_across_search_windows() -> None:
    """The SIMD finder searches one window at a time: a marker lying across a window
    edge is found once, and newline counts over any range are those of bytes.count."""
    noise = bytes(b"noise\n" * (3 * markers.WINDOW // 6))
    native, count = markers.finder(), markers.counter()
    edge = markers.WINDOW
    for marker in MARKERS_BYTES:
        for inside in sorted({0, 1, len(marker) // 2, len(marker) - 1, len(marker)}):
            buf = bytearray(noise)
            at = edge - inside  # this many bytes of the marker lie before the edge
            buf[at : at + len(marker)] = marker
            buf[2 * edge - 1 : 2 * edge - 1 + len(marker)] = marker
            raw = bytes(buf)
            expected = markers.find_with_bytes(raw, 0, len(raw))
            assert [hit[0] for hit in expected] == [at, 2 * edge - 1]
            assert native(raw, 0, len(raw)) == expected
            assert native(buf, at + 1, len(raw)) == expected[1:]
            assert markers.find_hits(raw) == expected
    for begin, end in ((7, len(noise) - 5), (edge - 3, 2 * edge + 9), (5, 5)):
        assert count(noise, begin, end) == noise.count(b"\n", begin, end)
        assert markers.count_lines(noise, begin, end) == noise.count(b"\n", begin, end)


def test_the_finder_is_named() -> None:
    assert markers.finder_name() in ("stringzilla", "bytes.find")


storm = st.lists(
    st.one_of(
        st.sampled_from(REAL),
        st.lists(st.sampled_from(PIECES), max_size=6).map("".join),
    ),
    min_size=1,
    max_size=40,
)
# What storming guests print: real report lines, among real noise.
real_storm = st.lists(st.sampled_from(REAL), min_size=1, max_size=40)


@FUZZ
@given(
    st.one_of(real_storm, storm),
    st.integers(min_value=30, max_value=80),
    st.integers(min_value=1, max_value=4),
)
def test_capped_parse_counts_exactly_and_keeps_the_edges(
    block: list[str], repeats: int, keep: int
) -> None:
    """Logs with enough reports take the dense path; counts and kept events must
    match those of a full parse put through the same cap."""
    text = "\n".join(block * repeats) + "\n"
    full = parse_kernlog(text)
    capped = parse_kernlog(text, keep_per_kind=keep)
    assert capped.counts == full.counts
    assert (capped.lines_read, capped.truncated) == (full.lines_read, full.truncated)
    keeper = EventKeeper(keep)
    for event in full.events:
        keeper.add(event)
    assert [(e.kind, e.line) for e in capped.events] == [(e.kind, e.line) for e in keeper.events()]


@FUZZ
@given(st.one_of(mixture, real_storm.map("\n".join), storm.map("\n".join)))
def test_the_block_driver_matches_the_line_by_line_scanner(text: str) -> None:
    """The block driver feeds report lines through the scanner's plain-line shortcut;
    fed one by one, every line takes the general path. Same events, same summary."""
    raw = text.encode("utf-8", "surrogatepass")
    lines = raw.split(b"\n")
    by_line, by_block = ScanSummary(), ScanSummary()
    expected = tuple(
        iter_kernlog_events(
            [line + b"\n" for line in lines[:-1]] + [lines[-1]], summary=by_line
        )
    )
    assert tuple(iter_kernlog_chunks([raw], summary=by_block)) == expected
    assert by_block == by_line


@pytest.mark.parametrize(
    ("release", "era"),
    [("4.15.0-213-generic", "4.10"), ("4.17.19", "4.10"), ("4.18.0-147.el8", "4.16")],
)
def test_gfp_layout_moved_in_4_18(release: str, era: str) -> None:
    """4.15-4.17 print GFP_KERNEL_ACCOUNT as 0x15000c0; 4.18 slid the bits (0x6200ca
    is GFP_HIGHUSER_MOVABLE there)."""
    assert gfp.era_for_release(release) == era


@pytest.mark.parametrize(
    ("flags", "mask", "expected"),
    [
        (("GFP_KERNEL", "__GFP_NORETRY"), None, True),
        (("GFP_NOWAIT",), None, True),
        (("GFP_TRANSHUGE_LIGHT",), None, True),
        (("GFP_ATOMIC",), None, False),
        (("GFP_KERNEL",), None, False),
        (("__GFP_KSWAPD_RECLAIM", "__GFP_NOWARN"), None, True),
        (("__GFP_HIGH",), None, False),
        ((), "0x0", True),
        ((), "0x2", True),
        ((), "0x20", False),
        ((), "", False),
    ],
)
def test_opportunistic_requests(flags: tuple[str, ...], mask: str | None, expected: bool) -> None:
    assert gfp.is_opportunistic(flags, mask) is expected
