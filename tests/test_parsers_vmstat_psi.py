"""/proc/vmstat and /proc/pressure/memory."""

from __future__ import annotations

import pytest

from xenaudit.parsers.interface import ParseError, Psi, PsiLine
from xenaudit.parsers.psi import parse_psi
from xenaudit.parsers.vmstat import parse_vmstat


def test_vmstat_3_x_section(corpus) -> None:
    stat = parse_vmstat((corpus / "vmstat_3.x_email_section.txt").read_text())
    assert stat.get("nr_free_pages") == 72360
    assert stat.get("nr_anon_transparent_hugepages") == 182
    assert stat.get("pgalloc_dma32") == 100605413
    assert stat.get("pgsteal_direct_normal") == 91155
    assert stat.get("allocstall") == 175
    assert stat.get("compact_pages_moved") == 345293
    assert stat.get("workingset_refault") is None
    assert len(stat.counters) == 75


def test_vmstat_4_x_32bit_highmem(corpus) -> None:
    stat = parse_vmstat((corpus / "vmstat_4.x_32bit_highmem_proot_fake.txt").read_text())
    assert stat.get("nr_free_pages") == 705489
    assert stat.get("nr_alloc_batch") == 0
    assert stat.get("workingset_refault") == 1183
    assert stat.get("pgalloc_high") == 326333
    assert stat.get("pgscan_direct_high") == 25365
    assert stat.get("pswpout") == 2562
    assert stat.get("unevictable_pgs_rescued") == 0
    assert stat.get("pgalloc_dma32") is None
    assert len(stat.counters) == 84  # one counter per line of the file


def test_vmstat_cut_last_line_is_dropped() -> None:
    stat = parse_vmstat("nr_free_pages 10\npgfault 12345\ncompact_stall 12")
    assert stat.get("compact_stall") is None
    assert stat.get("pgfault") == 12345
    assert parse_vmstat("nr_free_pages 10").get("nr_free_pages") == 10


def test_vmstat_rejects_text_without_counters() -> None:
    with pytest.raises(ParseError):
        parse_vmstat("Permission denied\n")


def test_psi_stalling_sample(corpus) -> None:
    psi = parse_psi((corpus / "psi_memory_stalling.txt").read_text())
    assert psi.some == PsiLine(avg10=90.80, avg60=71.12, avg300=30.44, total_us=262148711)
    assert psi.full == PsiLine(avg10=64.20, avg60=52.01, avg300=22.13, total_us=201773115)


def test_psi_without_full_line() -> None:
    psi = parse_psi("some avg10=0.00 avg60=0.10 avg300=0.05 total=123\n")
    assert psi.some is not None and psi.some.total_us == 123
    assert psi.full is None


@pytest.mark.parametrize("text", ["", None, "\n  \n"])
def test_psi_absent(text: str | None) -> None:
    assert parse_psi(text) == Psi(None, None)


def test_psi_cut_last_line_and_garbage() -> None:
    psi = parse_psi("some avg10=1.00 avg60=2.00 avg300=3.00 total=4\nfull avg10=0.5")
    assert psi.some is not None and psi.full is None
    with pytest.raises(ParseError):
        parse_psi("cat: /proc/pressure/memory: No such file or directory\n")
