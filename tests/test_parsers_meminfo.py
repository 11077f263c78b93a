"""/proc/meminfo: corpus samples and damaged text."""

from __future__ import annotations

import pytest

from xenaudit.parsers.interface import ParseError
from xenaudit.parsers.meminfo import parse_meminfo


def test_2_6_32_era_without_mem_available(corpus) -> None:
    info = parse_meminfo((corpus / "meminfo_2.6.32_era_no_MemAvailable_64GB.txt").read_text())
    assert info.mem_total_kib == 66059108
    assert info.get("MemFree") == 2639988
    assert info.get("Buffers") == 236368
    assert info.get("Cached") == 59396644
    assert info.get("Unevictable") == 1048576
    assert info.get("Shmem") == 32744
    assert info.get("SReclaimable") == 646764
    assert info.get("VmallocTotal") == 34359738367
    assert info.get("HugePages_Total") == 0
    assert info.get("Hugepagesize") == 2048
    assert info.get("DirectMap1G") == 65011712
    assert len(info.fields_kib) == 43
    # Pre-3.14: no MemAvailable, so it is estimated as free + buffers + cache - shmem.
    assert info.get("MemAvailable") is None
    assert info.mem_available_estimated
    assert info.mem_available_kib == 2639988 + 236368 + 59396644 - 32744


def test_4_x_with_shmem_huge_pages_and_cma(corpus) -> None:
    info = parse_meminfo((corpus / "meminfo_4.x_ShmemHugePages_CmaTotal.txt").read_text())
    assert info.mem_total_kib == 4015896
    assert info.mem_available_kib == 1438720
    assert not info.mem_available_estimated
    assert info.get("SwapTotal") == 1046524
    assert info.get("SwapFree") == 884732
    assert info.get("Committed_AS") == 5754120
    assert info.get("ShmemHugePages") == 0
    assert info.get("CmaTotal") == 0
    assert info.get("DirectMap2M") == 3977216
    assert len(info.fields_kib) == 48


def test_6_x_subset_with_zswap_and_huge_page_counts(corpus) -> None:
    info = parse_meminfo((corpus / "meminfo_6.x_rust_fixture_zswap_subset.txt").read_text())
    assert info.mem_total_kib == 65083032
    assert info.get("Zswap") == 4
    assert info.get("Zswapped") == 8
    assert info.get("Percpu") == 30720
    # HugePages_* are counts, not kB.
    assert (info.get("HugePages_Total"), info.get("HugePages_Free")) == (2, 1)
    assert info.get("Buffers") is None
    # No MemAvailable, Buffers or Cached in this subset: the estimate is MemFree.
    assert info.mem_available_kib == 43608388
    assert len(info.fields_kib) == 29


def test_truncated_last_line_is_dropped_not_misread() -> None:
    text = "MemTotal:  1000 kB\nMemFree:    500 kB\nCached:     12"
    info = parse_meminfo(text)
    assert info.get("Cached") is None
    assert info.get("MemFree") == 500
    complete = parse_meminfo("MemTotal:  1000 kB\nHugePages_Total: 3")
    assert complete.get("HugePages_Total") == 3


def test_blank_lines_crlf_and_junk_are_tolerated() -> None:
    info = parse_meminfo("\r\nMemTotal:  1000 kB\r\n\r\nsome junk\r\nMemFree:  10 kB\r\n")
    assert (info.mem_total_kib, info.get("MemFree")) == (1000, 10)


def test_bytes_input() -> None:
    assert parse_meminfo(b"MemTotal: 2048 kB\n").mem_total_kib == 2048


@pytest.mark.parametrize("text", ["", "cat: /proc/meminfo: No such file or directory\n", "\x00"])
def test_not_a_meminfo(text: str) -> None:
    with pytest.raises(ParseError) as excinfo:
        parse_meminfo(text)
    assert excinfo.value.source == "meminfo"
