"""Hostile Dom0 text: the hypervisor-side parsers raise nothing but RawParseError.

Real lines from the corpus (xm, xentop, xenstore-ls, hypervisor logs) mixed
with fragments of their formats and junk; guests write into xenstore and the
console, so all of it can be hostile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import corpus_dir
from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.signals import build_signals
from xenaudit.hypervisor.sxp import read_sxp
from xenaudit.hypervisor.xendmesg_parse import parse_xen_dmesg
from xenaudit.hypervisor.xenstore_parse import (
    parse_xenstore_ls,
    parse_xenstore_read,
    unsanitise,
    xenstore_domains,
)
from xenaudit.hypervisor.xentop_parse import parse_xentop
from xenaudit.hypervisor.xm_parse import build_xm_view, parse_xm_list, parse_xm_list_long

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PREFIXES = ("xm", "xentop", "xenstore", "xendmesg")
REAL = [
    line
    for sample in sorted(corpus_dir().iterdir())
    if sample.name.startswith(PREFIXES)
    for line in sample.read_text(errors="replace").splitlines()
]
PIECES = [
    "(domain",
    "(",
    ")",
    "'",
    '"',
    ' = "',
    "\\",
    "\\x4",
    "/local/domain/",
    "12",
    ":",
    "   (n0,r1)",
    "      NAME  STATE",
    "no limit",
    "(XEN) ",
    "Dom7 out of PoD memory! (tot=",
    "Domain 7 (vcpu#0) crashed on cpu#1:",
    "\x00",
    "\ufffd",
]
line = st.one_of(
    st.sampled_from(REAL), st.text(max_size=80), st.lists(st.sampled_from(PIECES)).map("".join)
)
mixture = st.lists(line, max_size=50).map("\n".join)


def _only_raw_parse_errors(parse: Callable[[str], object], text: str) -> None:
    with contextlib.suppress(RawParseError):
        parse(text)


@pytest.mark.parametrize(
    "parse",
    [
        parse_xentop,
        parse_xenstore_ls,
        lambda t: xenstore_domains(parse_xenstore_ls(t, "/local/domain")),
        parse_xm_list,
        parse_xm_list_long,
        read_sxp,
        lambda t: build_xm_view("h", {"xm-info.txt": t, "xm-list.txt": t, "xm-list-l.sxp": t}),
    ],
)
@FUZZ
@given(text=mixture)
def test_parsers_raise_only_their_error(parse: Callable[[str], object], text: str) -> None:
    _only_raw_parse_errors(parse, text)


@FUZZ
@given(mixture)
def test_log_and_reads_never_raise(text: str) -> None:
    log = parse_xen_dmesg(text)
    assert all(1 <= event.line <= log.lines_read for event in log.events)
    listing = parse_xenstore_read(text)
    assert all(not path.endswith("/") for path in listing.values)
    unsanitise(text)


@FUZZ
@given(mixture, mixture, mixture)
def test_signals_of_any_raw_text_build_or_warn(store: str, top: str, log: str) -> None:
    signals, warnings = build_signals(
        {"xenstore-ls.txt": store, "xentop.txt": top, "xen-dmesg.txt": log}, "xl dmesg"
    )
    assert signals is not None and "xl dmesg" in signals.sources
    for domain in signals.xenstore.values():
        for kib in (domain.target_kib, domain.agent_free_kib, domain.static_max_kib):
            assert kib is None or 0 <= kib <= 2**40
    assert all(isinstance(w, str) for w in warnings)
