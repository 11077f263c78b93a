"""/proc/slabinfo: corpus samples, denied reads and damaged text."""

from __future__ import annotations

import pytest

from xenaudit.parsers.interface import ParseError
from xenaudit.parsers.slabinfo import parse_slabinfo


def test_head_3_single_cache(corpus) -> None:
    slab = parse_slabinfo((corpus / "slabinfo_head3_nf_conntrack_expect.txt").read_text())
    assert (slab.state, slab.version) == ("ok", "2.1")
    (cache,) = slab.caches
    assert cache.name == "nf_conntrack_expect"
    assert (cache.active_objs, cache.num_objs, cache.objsize_bytes) == (0, 0, 232)
    assert (cache.objperslab, cache.pagesperslab, cache.num_slabs) == (35, 2, 0)
    assert cache.size_kib == 0


def test_truncated_header_and_blank_line(corpus) -> None:
    slab = parse_slabinfo((corpus / "slabinfo_korean_blog_task_struct.txt").read_text())
    assert (slab.state, slab.version) == ("ok", "2.1")
    # Sizes (num_objs * objsize): task_struct 128*3776 = 472 KiB, signal_cache
    # 180*1088 = 191 KiB, sighand_cache 105*2112 = 216 KiB, mm_struct 120*1088 = 127 KiB,
    # files_cache 92*704 = 63 KiB, cred_jar 231*192 = 43 KiB, vm_area_struct 80*200 = 15 KiB.
    assert [c.name for c in slab.caches] == [
        "task_struct",
        "sighand_cache",
        "signal_cache",
        "mm_struct",
        "files_cache",
        "cred_jar",
        "vm_area_struct",
    ]
    top = slab.top(1)[0]
    assert (top.name, top.size_kib, top.num_slabs, top.objperslab) == ("task_struct", 472, 16, 8)
    assert slab.total_kib == 472 + 216 + 191 + 127 + 63 + 43 + 15


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("cat: /proc/slabinfo: Permission denied\n", "denied"),
        ("cat: /proc/slabinfo: Operation not permitted", "denied"),
        ("", "missing"),
        (None, "missing"),
        ("cat: /proc/slabinfo: No such file or directory\n", "missing"),
    ],
)
def test_unreadable_slabinfo_is_a_state_not_an_error(text: str | None, state: str) -> None:
    slab = parse_slabinfo(text)
    assert (slab.state, slab.version, slab.caches) == (state, None, ())


def test_cut_last_line_without_slabdata_is_dropped() -> None:
    text = (
        "slabinfo - version: 2.1\n"
        "dentry  30211  30211  192  21  1 : tunables  0  0  0 : slabdata  1439  1439  0\n"
        "kmalloc-8192        2011   2011   8192    4    2 : tun"
    )
    slab = parse_slabinfo(text)
    assert [c.name for c in slab.caches] == ["dentry"]


def test_slabinfo_without_slabdata_section_mid_file() -> None:
    slab = parse_slabinfo("slabinfo - version: 2.1\nfoo 1 2 64 4 1\n")
    assert slab.caches[0].num_slabs is None and slab.caches[0].num_objs == 2


def test_garbage_is_an_error() -> None:
    with pytest.raises(ParseError):
        parse_slabinfo("hello world\nthis is not slabinfo\n")
