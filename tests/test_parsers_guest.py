"""parse_guest: every section parsed, problems collected per section, never an exception."""

from __future__ import annotations

import pytest

from xenaudit.parsers import guest as guest_module
from xenaudit.parsers.guest import kernel_release_of, parse_guest
from xenaudit.parsers.interface import PageAllocFailure

SECTIONS = {
    "meminfo": "MemTotal:  1015000 kB\nMemFree:  40000 kB\nMemAvailable:  90000 kB\n",
    "buddyinfo": "Node 0, zone    DMA32   8311   4102    301      0      0 \n",
    "vmstat": "nr_free_pages 10000\nallocstall 5\n",
    "psi_memory": "some avg10=0.40 avg60=0.31 avg300=0.22 total=4120331\n",
    "slabinfo": "slabinfo - version: 2.1\ndentry 30211 30211 192 21 1 : tunables 0 0 0 : "
    "slabdata 1439 1439 0\n",
    "sysvm": "min_free_kbytes=4009\nswappiness=60\n",
    "ps": "    PID COMMAND           RSS    VSZ\n   1811 memcached       402331 1120331\n",
    "kernlog": "[    0.52] xen:balloon: Initialising balloon driver\n"
    "[40213.55] memcached: page allocation failure: order:4, mode:0x2084020\n",
    "balloon": "target_kb=1048576\ncurrent_kb=1004524\n",
    "uname": "Linux cache-node 4.4.0-21-generic #37-Ubuntu SMP Mon Apr 18 18:33:37 UTC 2016 "
    "x86_64 GNU/Linux\n",
}


def test_all_sections() -> None:
    facts = parse_guest(SECTIONS, {name: "ok" for name in SECTIONS}, "cache-node")
    assert facts.errors == ()
    assert facts.meminfo is not None and facts.meminfo.mem_available_kib == 90000
    assert facts.buddyinfo is not None and facts.buddyinfo.zones[0].zone == "DMA32"
    assert facts.vmstat is not None and facts.vmstat.get("allocstall") == 5
    assert facts.psi is not None and facts.psi.full is None
    assert facts.slabinfo is not None and facts.slabinfo.caches[0].name == "dentry"
    assert facts.sysvm is not None and facts.sysvm.get_int("min_free_kbytes") == 4009
    assert [p.comm for p in facts.processes] == ["memcached"]
    assert (facts.balloon_target_kib, facts.balloon_current_kib) == (1048576, 1004524)
    assert facts.kernlog is not None
    assert [e.kind for e in facts.kernlog.events] == ["balloon", "page_alloc_failure"]
    failure = facts.kernlog.events[1]
    assert isinstance(failure, PageAllocFailure)
    # The hex-only mask is decoded with the guest's kernel release from uname.
    assert failure.gfp_era == "4.4"
    assert "__GFP_KSWAPD_RECLAIM" in failure.gfp_flags


def test_bad_sections_become_errors_and_the_rest_still_parses() -> None:
    sections = dict(SECTIONS, meminfo="garbage\n", ps="  PID COMMAND RSS VSZ\nnot a row\n")
    facts = parse_guest(sections, None, "db-primary")
    assert facts.meminfo is None
    assert facts.processes == ()
    assert facts.errors == (
        "db-primary: meminfo: no 'MemTotal: N kB' line",
        "db-primary: ps: line 2: expected 'PID COMMAND RSS VSZ': 'not a row'",
    )
    assert facts.vmstat is not None and facts.kernlog is not None


def test_section_status_missing_and_denied() -> None:
    status = {"slabinfo": "denied", "kernlog": "denied", "psi_memory": "missing", "meminfo": "ok"}
    sections = dict(
        SECTIONS,
        slabinfo="cat: /proc/slabinfo: Permission denied\n",
        kernlog="dmesg: read kernel buffer failed: Operation not permitted\n",
        psi_memory="",
    )
    facts = parse_guest(sections, status, "web")
    assert facts.slabinfo is not None and facts.slabinfo.state == "denied"
    assert facts.kernlog is None
    assert facts.psi is None
    assert facts.errors == ()


def test_absent_sections_are_none() -> None:
    facts = parse_guest({"meminfo": SECTIONS["meminfo"]})
    assert facts.meminfo is not None
    assert (facts.buddyinfo, facts.kernlog, facts.balloon_target_kib) == (None, None, None)
    assert facts.processes == ()


def test_unexpected_parser_failure_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(guest_module, "parse_vmstat", broken)
    facts = parse_guest(SECTIONS, None, "mail")
    assert facts.errors == ("mail: vmstat: unexpected RuntimeError: boom",)
    assert facts.vmstat is None and facts.meminfo is not None


@pytest.mark.parametrize(
    ("uname", "release"),
    [
        ("4.15.0-213-generic\n", "4.15.0-213-generic"),
        ("Linux host 5.10.0-21-amd64 #1 SMP Debian 5.10.162-1 x86_64 GNU/Linux", "5.10.0-21-amd64"),
        ("", None),
        (None, None),
        ("uname: command not found", None),
    ],
)
def test_kernel_release_of(uname: str | None, release: str | None) -> None:
    assert kernel_release_of(uname) == release


def test_buddy_lists_use_the_guest_page_size() -> None:
    buddy = "Node 0, zone   Normal      4      2      1\n"
    four = parse_guest({"buddyinfo": buddy, "uname": "6.1.0-18-amd64\n4096\n"})
    sixty_four = parse_guest({"buddyinfo": buddy, "uname": "6.1.0-18-arm64\n65536\n"})
    old_probe = parse_guest({"buddyinfo": buddy, "uname": "6.1.0-18-amd64\n"})
    assert four.buddyinfo is not None and four.buddyinfo.page_size_kib == 4
    assert sixty_four.buddyinfo is not None and sixty_four.buddyinfo.page_size_kib == 64
    assert old_probe.buddyinfo is not None and old_probe.buddyinfo.page_size_kib == 4
    hostile = parse_guest({"buddyinfo": buddy, "uname": "6.1\n12345\n"})
    assert hostile.buddyinfo is not None and hostile.buddyinfo.page_size_kib == 4
