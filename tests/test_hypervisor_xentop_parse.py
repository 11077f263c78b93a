"""`xentop -b` as the hypervisor's account of what each domain holds: real samples, then edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_xl.support import RECORDINGS
from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.xentop_parse import parse_xentop

HEADER = (
    "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS "
    "NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID"
)


def _row(name: str, state: str, mem: int, maxmem: str = "1049600") -> str:
    return (
        f"{name:>10} {state}          7    0.0 {mem:>10}    6.3 {maxmem:>10}       6.3     2"
        "    1      113       34    2        0     2495     1077     112010      31608    0"
    )


def test_xl_top_with_banner(corpus: Path) -> None:
    reading = parse_xentop((corpus / "xentop_xen4.9.2_batch.txt").read_text())
    assert reading.xen_version == "4.9.2" and reading.iterations == 1
    assert reading.total_kib == 16734804 and reading.free_kib == 12060
    assert reading.skipped_lines == 0
    dom0, guest = reading.domains
    assert (dom0.name, dom0.maxmem_kib) == ("Domain-0", None)
    assert (guest.name, guest.mem_kib, guest.maxmem_kib, guest.vcpus) == (
        "guest-01",
        1048576,
        1049600,
        2,
    )


def test_xm_top_of_xen_4_1(corpus: Path) -> None:
    reading = parse_xentop((corpus / "xentop_xmtop_xen4.1.2_ubuntuforums.txt").read_text())
    assert reading.xen_version == "4.1.2"
    assert reading.match("virtual1").mem_kib == 31457280  # type: ignore[union-attr]


def test_table_without_banner_or_final_newline(corpus: Path) -> None:
    reading = parse_xentop((corpus / "xentop_oracle_exadata_noheader_banner.txt").read_text())
    assert [r.name for r in reading.domains] == ["c2214-vkge", "Domain-0"]
    assert reading.domains[0].mem_kib == 754978808


def test_repeated_headers_are_one_iteration_and_cut_names_clash(corpus: Path) -> None:
    reading = parse_xentop(
        (corpus / "xentop_oracle_ovm_repeat_header_truncated_names.txt").read_text()
    )
    assert reading.iterations == 1 and len(reading.domains) == 3
    # Two domains share the first ten characters: neither can be told apart.
    assert reading.match("scas22dv0507m.us.oracle.com") is None
    assert reading.match("scas22dv0508m.us.oracle.com") is None
    assert reading.match("Domain-0").mem_kib == 9165992  # type: ignore[union-attr]


def test_a_cut_name_matches_when_no_other_row_shares_it() -> None:
    text = "\n".join([HEADER, _row("scas22dv05", "--b---", 4096)])
    assert parse_xentop(text).match("scas22dv0507m.us.oracle.com").mem_kib == 4096  # type: ignore[union-attr]
    assert parse_xentop(text).match("other") is None


def test_the_last_iteration_wins() -> None:
    dom0 = _row("Domain-0", "-----r", 2097152, "no limit")
    first = [HEADER, dom0, _row("guest", "--b---", 1000)]
    text = "\n".join([*first, HEADER, dom0, _row("guest", "--b---", 2000)])
    reading = parse_xentop(text)
    assert reading.iterations == 2 and [r.mem_kib for r in reading.domains] == [2097152, 2000]


def test_repeated_headers_over_two_iterations_split_at_domain_0() -> None:
    dom0 = _row("Domain-0", "-----r", 2097152, "no limit")
    rows = [dom0, _row("guest", "--b---", 1000), dom0, _row("guest", "--b---", 2000)]
    text = "\n".join(line for row in rows for line in (HEADER, row))
    reading = parse_xentop(text)
    assert reading.iterations == 2 and reading.match("guest").mem_kib == 2000  # type: ignore[union-attr]


def test_recorded_two_iteration_runs() -> None:
    for host in ("host_xm", "host_signals"):
        reading = parse_xentop((RECORDINGS / host / "xentop.out").read_text())
        assert reading.iterations == 2, host
        assert len({r.name for r in reading.domains}) == len(reading.domains)


def test_full_names_and_names_with_spaces() -> None:
    text = "\n".join(
        [
            HEADER,
            _row("a very long domain name", "-----r", 512, "no limit").replace(
                "no limit       6.3", "no limit       n/a"
            ),
        ]
    )
    (row,) = parse_xentop(text).domains
    assert (
        row.name == "a very long domain name" and row.maxmem_kib is None and row.state == "-----r"
    )


def test_lines_that_are_not_rows_are_skipped() -> None:
    text = "\n".join(
        [
            HEADER,
            _row("guest", "--b---", 1000),
            "VCPUs(sec):   0:         11s",
            "Net0 RX:     1234bytes       10pkts        0err        0drop  TX: 0bytes",
            "guest --b--- lots of garbage",
            _row("super", "--b---", 1).replace("         1    6.3", "        1²    6.3"),
        ]
    )
    reading = parse_xentop(text)
    assert [r.name for r in reading.domains] == ["guest"] and reading.skipped_lines == 4


@pytest.mark.parametrize("text", ["", "Error: no xen\n", "xentop - 10:00:00   Xen 4.17\n"])
def test_no_table_at_all_is_an_error(text: str) -> None:
    with pytest.raises(RawParseError, match="NAME/STATE"):
        parse_xentop(text)
