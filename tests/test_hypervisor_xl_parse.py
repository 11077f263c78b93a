"""Pure parsing of xl's outputs: the real corpus samples and the recorded hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fake_xl.support import RECORDINGS
from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.xentop_parse import parse_xentop
from xenaudit.hypervisor.xl_parse import (
    LIBXL_MAXMEM_CONSTANT_KIB,
    NO_LIMIT_KIB,
    RAW_INFO,
    RAW_LIST,
    RAW_LIST_LONG_JSON,
    RAW_LIST_LONG_SXP,
    RAW_XL_CONF,
    build_xl_view,
    dom0_mem_kib,
    effective_autoballoon,
    parse_xl_info,
    parse_xl_list,
    parse_xl_list_long_json,
    parse_xl_list_long_sxp,
    state_from_flags,
    xen_size_to_kib,
)

GIB = 1024 * 1024  # in KiB
MIB = 1024  # in KiB


def _list(rows: list[tuple[str, int, int, int, str]]) -> str:
    """`xl list` as xl_info.c prints it (TABs in the header)."""
    lines = ["Name                                        ID   Mem VCPUs\tState\tTime(s)"]
    for name, domid, mem, vcpus, flags in rows:
        lines.append(f"{name:<40} {domid:5d} {mem:5d} {vcpus:5d}     {flags}  {1.5:8.1f}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ corpus: xl list


def test_corpus_xl_list_with_tab_header(corpus: Path) -> None:
    text = (corpus / "xllist_xen4.9.2_tab_header.txt").read_text()
    assert "\t" in text.splitlines()[0]
    rows = parse_xl_list(text)
    assert [(r.name, r.domid, r.mem_mib, r.vcpus, r.state) for r in rows] == [
        ("Domain-0", 0, 15084, 8, "running"),
        ("guest-01", 4, 1024, 2, "blocked"),
    ]


def test_corpus_xl_list_dom0_only(corpus: Path) -> None:
    rows = parse_xl_list((corpus / "xllist_zynqmp_xen4.17_dom0only.txt").read_text())
    assert len(rows) == 1
    assert rows[0].domid == 0 and rows[0].mem_mib == 1500 and rows[0].flags == "r-----"


# ------------------------------------------------------------------ corpus: xl info


@pytest.mark.parametrize(
    ("sample", "total_mib", "free_mib", "dom0_kib", "version"),
    [
        # dom0_mem=1024M,max:1024M
        ("xlinfo_centos6_xen4.4.3.txt", 1663, 617, 1024 * MIB, "4.4.3-12.el6"),
        # dom0_mem=512M
        ("xlinfo_raspi4_xen4.15.1_aarch64.txt", 1972, 1173, 512 * MIB, "4.15.1"),
        # dom0_mem=1500M
        ("xlinfo_zynqmp_xen4.17_aarch64.txt", 4095, 2529, 1500 * MIB, "4.17.0"),
    ],
)
def test_corpus_xl_info(
    corpus: Path, sample: str, total_mib: int, free_mib: int, dom0_kib: int, version: str
) -> None:
    info = parse_xl_info((corpus / sample).read_text())
    assert info.mib_as_kib("total_memory") == total_mib * MIB
    assert info.mib_as_kib("free_memory") == free_mib * MIB
    assert info.mib_as_kib("outstanding_claims") == 0
    assert info.integer("free_cpus") == 0
    assert info.xen_version == version
    total = info.mib_as_kib("total_memory")
    assert dom0_mem_kib(info.fields["xen_commandline"], total) == dom0_kib


def test_corpus_xl_info_empty_values_do_not_confuse_the_reader(corpus: Path) -> None:
    info = parse_xl_info((corpus / "xlinfo_zynqmp_xen4.17_aarch64.txt").read_text())
    assert info.fields["cc_compile_domain"] == ""
    assert info.fields["xen_caps"] == "xen-3.0-aarch64 xen-3.0-armv7l"


def test_xen_version_is_composed_when_the_line_is_missing(corpus: Path) -> None:
    text = (corpus / "xlinfo_centos6_xen4.4.3.txt").read_text()
    without = "\n".join(line for line in text.splitlines() if not line.startswith("xen_version"))
    assert parse_xl_info(without).xen_version == "4.4.3-12.el6"


# ------------------------------------------------------------------ corpus: xentop


def test_corpus_xentop_shows_libxl_maxmem_constant(corpus: Path) -> None:
    """xentop's MAXMEM is the hypervisor's limit: the configured max plus 1 MiB."""
    reading = parse_xentop((corpus / "xentop_xen4.9.2_batch.txt").read_text())
    rows = {r.name: r for r in reading.domains}
    assert rows["Domain-0"].maxmem_kib is None  # "no limit"
    guest = rows["guest-01"]
    assert guest.maxmem_kib is not None
    assert guest.maxmem_kib - guest.mem_kib == LIBXL_MAXMEM_CONSTANT_KIB
    # The same lab's `xl list` shows guest-01 with the same memory, in MiB.
    listed = {
        r.name: r for r in parse_xl_list((corpus / "xllist_xen4.9.2_tab_header.txt").read_text())
    }
    assert listed["guest-01"].mem_mib * MIB == guest.mem_kib


def test_corpus_xentop_without_banner_or_final_newline(corpus: Path) -> None:
    text = (corpus / "xentop_oracle_exadata_noheader_banner.txt").read_text()
    assert not text.endswith("\n")
    rows = parse_xentop(text).domains
    assert [r.name for r in rows] == ["c2214-vkge", "Domain-0"]
    assert rows[0].vcpus == 92 and rows[0].maxmem_kib == 754978816


# ------------------------------------------------------------------ xl list details


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        ("r-----", "running"),
        ("-b----", "blocked"),
        ("--p---", "paused"),
        ("-bp---", "paused"),
        ("---s--", "shutdown"),
        ("---sr-", "shutdown"),  # shut down for a reboot
        ("---sc-", "crashed"),
        ("-----d", "dying"),
        ("---scd", "dying"),
        ("------", "running"),  # runnable, waiting for a CPU
    ],
)
def test_state_flags(flags: str, state: str) -> None:
    assert state_from_flags(flags) == state


def test_names_with_spaces_and_long_names() -> None:
    long_name = "a-very-long-domain-name-that-overflows-the-column"
    rows = parse_xl_list(
        _list([("my guest", 3, 256, 1, "-b----"), (long_name, 12, 4096, 4, "r-----")])
    )
    assert [(r.name, r.domid, r.mem_mib) for r in rows] == [
        ("my guest", 3, 256),
        (long_name, 12, 4096),
    ]


def test_garbage_line_is_reported_with_its_number() -> None:
    text = _list([("web", 3, 512, 2, "-b----")]) + "\x1b[31mrm -rf /\n"
    with pytest.raises(RawParseError) as caught:
        parse_xl_list(text)
    assert caught.value.source == "xl list"
    assert "line 3" in caught.value.message
    assert "\x1b" not in caught.value.message  # quoted safely


@pytest.mark.parametrize("text", ["", "hello world\n", "<html>502 Bad Gateway</html>\n"])
def test_not_an_xl_list(text: str) -> None:
    with pytest.raises(RawParseError, match="xl list"):
        parse_xl_list(text)


def test_xl_info_without_total_memory_is_refused() -> None:
    with pytest.raises(RawParseError, match="total_memory"):
        parse_xl_info("host : x\nrelease : 6.1\n")
    with pytest.raises(RawParseError, match="whole number"):
        parse_xl_info("total_memory : lots\n")


# ------------------------------------------------------------------ xl list -l


def test_recorded_json_has_each_guest_type() -> None:
    details = parse_xl_list_long_json((RECORDINGS / "host_a" / "list_l.out").read_text())
    by_name = {d.name: d for d in details}
    assert {n: d.guest_type for n, d in by_name.items()} == {
        "Domain-0": "pv",
        "web": "pv",
        "db": "pv",
        "pvhguest": "pvh",
        "winhvm": "hvm",
    }
    source = json.loads((RECORDINGS / "host_a" / "list_l.out").read_text())
    for entry in source:
        detail = next(d for d in details if d.domid == entry["domid"])
        assert detail.target_kib == entry["config"]["b_info"]["target_memkb"]
        assert detail.max_kib == entry["config"]["b_info"]["max_memkb"]


def test_json_type_from_keyed_union_and_old_pvh_flag() -> None:
    text = json.dumps(
        [
            {"domid": 3, "config": {"c_info": {"name": "a"}, "b_info": {"type.hvm": {}}}},
            {
                "domid": 4,
                "config": {"c_info": {"name": "b", "type": "pv", "pvh": "True"}, "b_info": {}},
            },
        ]
    )
    assert [d.guest_type for d in parse_xl_list_long_json(text)] == ["hvm", "pvh"]


def test_json_before_xen_4_5_printed_one_object_per_domain() -> None:
    one = {"domid": 1, "config": {"c_info": {"type": "pv", "name": "a"}, "b_info": {}}}
    two = {"domid": 2, "config": {"c_info": {"type": "hvm", "name": "b"}, "b_info": {}}}
    details = parse_xl_list_long_json(json.dumps(one, indent=4) + "\n" + json.dumps(two) + "\n")
    assert [(d.domid, d.guest_type) for d in details] == [(1, "pv"), (2, "hvm")]


def test_uncapped_dom0_max_reads_as_no_limit() -> None:
    text = json.dumps(
        [{"domid": 0, "config": {"c_info": {"type": "pv"}, "b_info": {"max_memkb": NO_LIMIT_KIB}}}]
    )
    assert parse_xl_list_long_json(text)[0].max_kib is None


@pytest.mark.parametrize("text", ['[{"domid": 1,', "[1, 2]", '{"domid": 1}'])
def test_json_that_is_not_xl_list_long(text: str) -> None:
    with pytest.raises(RawParseError) as caught:
        parse_xl_list_long_json(text)
    assert caught.value.source == "xl list -l"


def test_json_syntax_error_says_where() -> None:
    with pytest.raises(RawParseError, match=r"line 2 column \d+"):
        parse_xl_list_long_json('[\n  {"domid": 1,, }\n]')


def test_recorded_sxp_types_and_memory() -> None:
    details = parse_xl_list_long_sxp((RECORDINGS / "host_sxp" / "list_l.out").read_text())
    assert [(d.name, d.domid, d.guest_type) for d in details] == [
        ("Domain-0", 0, "pv"),
        ("mail", 7, "pv"),
        ("legacyhvm", 9, "hvm"),
    ]
    assert details[1].target_kib == 512 * MIB and details[1].max_kib == 512 * MIB


def test_sxp_stopped_at_a_pvh_domain_keeps_the_complete_blocks() -> None:
    text = (RECORDINGS / "host_sxp_pvh" / "list_l.out").read_text()
    assert text.count("(domain") == 3
    assert [d.name for d in parse_xl_list_long_sxp(text)] == ["Domain-0", "mail"]


def test_sxp_garbage_is_refused() -> None:
    with pytest.raises(RawParseError, match="line 1"):
        parse_xl_list_long_sxp("Segmentation fault\n")


# ------------------------------------------------------------------ dom0_mem


@pytest.mark.parametrize(
    ("size", "kib"),
    [
        ("512", 512),
        ("512k", 512),
        ("2048M", 2048 * MIB),
        ("1G", GIB),
        ("1t", 1024 * GIB),
        ("4096B", 4),
        ("0x400", 1024),
        ("010", 8),
    ],
)
def test_xen_sizes_default_to_kib(size: str, kib: int) -> None:
    assert xen_size_to_kib(size) == kib


@pytest.mark.parametrize(
    ("commandline", "total_kib", "expected"),
    [
        ("dom0_mem=2048M,max:2048M", 16 * GIB, 2 * GIB),
        ("console=com1 dom0_mem=1G", 16 * GIB, GIB),
        # Only a ceiling: all memory less min(1/16, 128 MiB), then capped.
        ("dom0_mem=max:2G", 16 * GIB, 2 * GIB),
        ("dom0_mem=max:2G", GIB, GIB - GIB // 16),
        # Negative sizes are taken from the host's memory.
        ("dom0_mem=-1G", 8 * GIB, 7 * GIB),
        # The documentation's example: 1G+25% of a 256 GB host is 65 GB.
        ("dom0_mem=1G+25%", 256 * GIB, 65 * GIB),
        # The last dom0_mem= wins.
        ("dom0_mem=512M dom0_mem=768M", 16 * GIB, 768 * MIB),
        ("dom0_mem=4G,max:2G", 16 * GIB, 2 * GIB),
        ("dom0_mem=1G,min:2G", 16 * GIB, 2 * GIB),
        ("console=vga", 16 * GIB, None),
        ("dom0_mem=lots", 16 * GIB, None),
        ("dom0_mem=-1G", None, None),
    ],
)
def test_dom0_mem(commandline: str, total_kib: int | None, expected: int | None) -> None:
    assert dom0_mem_kib(commandline, total_kib) == expected


def test_autoballoon_auto_follows_dom0_mem() -> None:
    assert effective_autoballoon("auto", dom0_mem_set=True) is False
    assert effective_autoballoon("auto", dom0_mem_set=False) is True
    assert effective_autoballoon("on", dom0_mem_set=True) is True
    assert effective_autoballoon(None, dom0_mem_set=True) is None


# ------------------------------------------------------------------ the whole view


def _raw(recording: str) -> dict[str, str]:
    base = RECORDINGS / recording
    long_text = (base / "list_l.out").read_text()
    long_name = RAW_LIST_LONG_SXP if long_text.startswith("(domain") else RAW_LIST_LONG_JSON
    return {
        RAW_INFO: (base / "info.out").read_text(),
        RAW_LIST: (base / "list.out").read_text(),
        long_name: long_text,
    }


def test_view_of_recorded_host() -> None:
    raw = _raw("host_a") | {RAW_XL_CONF: 'autoballoon = "0"\n'}
    view = build_xl_view("dom0a", raw)
    assert view.backend == "xl" and view.name == "dom0a"
    assert view.dom0 is not None and view.dom0.domid == 0
    assert [d.name for d in view.guests] == ["web", "db", "pvhguest", "winhvm"]
    assert view.total_memory_kib == 16255 * MIB
    assert view.dom0_mem_kib == 2048 * MIB  # dom0_mem=2048M,max:2048M
    assert view.autoballoon == "off"
    assert view.warnings == ()
    web = next(d for d in view.guests if d.name == "web")
    assert (web.current_kib, web.target_kib, web.max_kib) == (512 * MIB, 512 * MIB, 768 * MIB)


@pytest.mark.parametrize(
    ("conf", "expected"),
    [("autoballoon=1\n", "on"), ("# defaults only\n", "auto"), ('autoballoon="maybe"\n', "auto")],
)
def test_view_autoballoon_as_xl_resolves_it(conf: str, expected: str) -> None:
    assert build_xl_view("h", _raw("host_a") | {RAW_XL_CONF: conf}).autoballoon == expected


def test_view_without_xl_conf_leaves_autoballoon_unknown() -> None:
    assert build_xl_view("h", _raw("host_a")).autoballoon is None


def test_view_warns_about_domains_xl_list_long_skipped() -> None:
    view = build_xl_view("h", _raw("host_sxp_pvh"))
    assert len(view.warnings) == 1
    assert "'newpvh'" in view.warnings[0] and "'legacyhvm'" in view.warnings[0]
    newpvh = next(d for d in view.guests if d.name == "newpvh")
    assert newpvh.guest_type is None and newpvh.target_kib is None
    assert newpvh.current_kib == 1024 * MIB  # still known from `xl list`


def test_view_of_a_domain_seen_only_by_xl_list_long() -> None:
    raw = _raw("host_a")
    raw[RAW_LIST] = _list([("Domain-0", 0, 2048, 4, "r-----")])
    view = build_xl_view("h", raw)
    late = {d.name: d for d in view.guests}
    assert late["web"].state == "unknown" and late["web"].target_kib == 512 * MIB
