"""Pure parsing of what xend's `xm` prints: real corpus samples first, then the edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_xl.support import RECORDINGS
from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.sxp import child_value, head, read_sxp
from xenaudit.hypervisor.xm_parse import (
    RAW_XEND_CONFIG,
    RAW_XM_INFO,
    RAW_XM_LIST,
    RAW_XM_LIST_LONG,
    build_xm_view,
    parse_xm_list,
    parse_xm_list_long,
    xend_ballooning,
)

MIB = 1024


def test_oracle_vm_list_long_three_domains(corpus: Path) -> None:
    details, warnings = parse_xm_list_long(
        (corpus / "xmlistl_oraclevm3_pv_hvm_dom0.sxp").read_text()
    )
    assert warnings == []
    by_id = {d.domid: d for d in details}
    assert sorted(by_id) == [0, 1, 11]
    assert by_id[1].guest_type == "pv" and by_id[11].guest_type == "hvm"
    # xend prints memory (memory_dynamic_max) and maxmem (memory_static_max) in MiB.
    assert by_id[11].target_kib == 1030 * MIB and by_id[11].max_kib == 1032 * MIB
    assert by_id[1].target_kib == by_id[1].max_kib == 2048 * MIB
    assert by_id[0].name == "Domain-0" and by_id[0].uuid == "00000000-0000-0000-0000-000000000000"
    assert by_id[1].name == "0004fb0000060000236e45007b980aa1"


def test_xen_3_3_list_long_with_empty_atoms(corpus: Path) -> None:
    details, _ = parse_xm_list_long((corpus / "xmlistl_xen3.3.1_centos5_pv_pygrub.sxp").read_text())
    (detail,) = details
    assert (detail.domid, detail.name, detail.guest_type) == (15, "UbuntuPVS810", "pv")
    assert detail.target_kib == detail.max_kib == 4096 * MIB


def test_cut_short_list_long_drops_the_open_domain_and_says_so(corpus: Path) -> None:
    details, warnings = parse_xm_list_long((corpus / "xmlistl_hvm_cut_after_state.sxp").read_text())
    assert details == ()
    assert len(warnings) == 1 and "ends inside a domain" in warnings[0]


def test_sxp_reader_keeps_wrapped_values_and_quotes(corpus: Path) -> None:
    document = read_sxp((corpus / "xmlistl_oraclevm3_pv_hvm_dom0.sxp").read_text())
    first = document.values[0]
    assert head(first) == "domain" and child_value(first, "description") == ""
    devices = [item[1] for item in first[1:] if head(item) == "device"]
    assert [head(d) for d in devices] == ["vif", "vkbd", "console", "vbd", "vfb"]
    vbd = devices[3]
    assert child_value(vbd, "uname").startswith(
        "file:/OVS/Repositories/0004fb0000030000a5c9b5cf920f93e3/"
    )
    image = next(item for item in first[1:] if head(item) == "image")
    notes = next(item for item in image[1][1:] if head(item) == "notes")
    assert child_value(notes, "FEATURES") == "!writable_page_tables|pae_pgdir_above_4gb"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(domain (domid 1)))", "without a matching"),
        ("domain 1", "outside any expression"),
        ("(domain (name 'x)", "never closed"),
        ("(" * 70 + ")" * 70, "nested deeper"),
    ],
)
def test_sxp_reader_refuses_what_is_not_sxp(text: str, message: str) -> None:
    with pytest.raises(RawParseError, match=message):
        read_sxp(text)


def test_hash_is_part_of_a_name_in_list_long_but_a_comment_in_config() -> None:
    assert child_value(read_sxp("(domain (name abcd#43))").values[0], "name") == "abcd#43"
    config = "# comment (not read)\n(enable-dom0-ballooning no) # trailing\n"
    assert [head(v) for v in read_sxp(config, comments=True).values] == ["enable-dom0-ballooning"]


def test_xm_list_real_samples(corpus: Path) -> None:
    rows = parse_xm_list((corpus / "xmlist_two_domains_pv_guest.txt").read_text())
    assert [(r.name, r.domid, r.mem_mib, r.vcpus, r.state) for r in rows] == [
        ("Domain-0", 0, 1024, 24, "running"),
        ("My-PV-VM", 7, 10240, 4, "blocked"),
    ]
    oracle = parse_xm_list((corpus / "xmlist_oracle_exadata_fixture.txt").read_text())
    assert len(oracle) == 8 and oracle[6].name == "abcd#43" and oracle[6].domid == 3
    assert oracle[3].name == "scaqab10client01vm08.us.oracle.com" and oracle[3].domid == 8


def test_xm_list_domain_that_is_not_running_has_no_id() -> None:
    rows = parse_xm_list((RECORDINGS / "host_xm" / "list.out").read_text())
    template = rows[-1]
    assert (template.name, template.domid, template.mem_mib, template.state) == (
        "ovm-template-ol6",
        None,
        1024,
        "shutoff",
    )


def test_xm_list_refuses_a_line_it_does_not_understand() -> None:
    text = "Name ID Mem VCPUs State Time(s)\nweb 3 512 1 -b---- 1.0\n<html>oops</html>\n"
    with pytest.raises(RawParseError, match="line 3"):
        parse_xm_list(text)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("(enable-dom0-ballooning yes)", "on"),
        ("(enable-dom0-ballooning no)\n(dom0-min-mem 196)", "off"),
        ("(dom0-min-mem 196)", "on"),
        ("# xend's default: ballooning only when dom0-min-mem is set\n(dom0-min-mem 0)", "off"),
        ("", "off"),
    ],
)
def test_xend_dom0_ballooning_as_xend_resolves_it(config: str, expected: str) -> None:
    assert xend_ballooning(config) == expected


def _raw(corpus: Path, info: str, listing: str, long: str | None = None) -> dict[str, str]:
    raw = {RAW_XM_INFO: (corpus / info).read_text(), RAW_XM_LIST: (corpus / listing).read_text()}
    if long:
        raw[RAW_XM_LIST_LONG] = (corpus / long).read_text()
    return raw


def test_view_from_xen_3_3_info_without_commandline(corpus: Path) -> None:
    view = build_xm_view(
        "laptop", _raw(corpus, "xminfo_xen3.3.0_ubuntu_i686.txt", "xmlist_two_domains_pv_guest.txt")
    )
    assert view.backend == "xm" and view.xen_version == "3.3.0"
    assert view.total_memory_kib == 2046 * MIB and view.free_memory_kib == 126 * MIB
    assert view.dom0_mem_kib is None
    assert "no `xm list -l` output" in view.warnings[0]
    assert "no xentop output" in view.warnings[1]
    guest = view.guests[0]
    # xm's Mem column is the target, not what the guest holds (unknown without xentop).
    assert guest.target_kib == 10240 * MIB and guest.current_kib is None


def test_view_from_oracle_vm_info_reads_dom0_mem(corpus: Path) -> None:
    view = build_xm_view(
        "ovm", _raw(corpus, "xminfo_oraclevm_xen4.4.4OVM.txt", "xmlist_oracle_exadata_fixture.txt")
    )
    assert view.xen_version == "4.4.4OVM"
    assert view.dom0_mem_kib == 9 * 1024 * MIB
    assert len(view.guests) == 7


def test_partial_info_without_newline_still_gives_the_memory(corpus: Path) -> None:
    view = build_xm_view(
        "exa",
        _raw(
            corpus, "xminfo_oracle_exadata_partial_nonewline.txt", "xmlist_two_domains_pv_guest.txt"
        ),
    )
    assert view.total_memory_kib == 785069 * MIB and view.free_memory_kib == 22336 * MIB


def test_info_that_is_not_xm_info_names_xm() -> None:
    with pytest.raises(RawParseError) as caught:
        build_xm_view("x", {RAW_XM_INFO: "hello\n", RAW_XM_LIST: "Name ID Mem\n"})
    assert caught.value.source == "xm info"


def test_recorded_host_joins_list_long_and_xentop() -> None:
    folder = RECORDINGS / "host_xm"
    raw = {
        RAW_XM_INFO: (folder / "info.out").read_text(),
        RAW_XM_LIST: (folder / "list.out").read_text(),
        RAW_XM_LIST_LONG: (folder / "list_l.out").read_text(),
        "xentop.txt": (folder / "xentop.out").read_text(),
        RAW_XEND_CONFIG: (folder / "etc-xen" / "xend-config.sxp").read_text(),
    }
    view = build_xm_view("ovm", raw)
    by_name = {d.name: d for d in view.domains}
    hvm = by_name["0004fb00000600007c522c7d71072a52"]
    assert (hvm.domid, hvm.guest_type, hvm.max_kib, hvm.current_kib) == (
        11,
        "hvm",
        1032 * MIB,
        1054720,
    )
    assert by_name["Domain-0"].is_dom0 and view.autoballoon == "off"
    assert by_name["ovm-template-ol6"].current_kib is None
    assert view.warnings == ()
