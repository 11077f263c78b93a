"""ps output, /proc/sys/vm and the balloon driver's sysfs values."""

from __future__ import annotations

import pytest

from xenaudit.parsers.balloon import parse_balloon
from xenaudit.parsers.interface import ParseError, Process
from xenaudit.parsers.ps import parse_ps
from xenaudit.parsers.sysvm import parse_sysvm

PS = """\
    PID COMMAND           RSS    VSZ
   1811 memcached       402331 1120331
   4242 Web Content     301122 2901220
   4243 Isolated Web Co  20331 2401220
      1 systemd           9120 160331
      2 kthreadd             0      0
"""


def test_ps_with_spaces_in_comm() -> None:
    processes = parse_ps(PS)
    assert processes[0] == Process(pid=1811, comm="memcached", rss_kib=402331, vsz_kib=1120331)
    assert processes[1] == Process(pid=4242, comm="Web Content", rss_kib=301122, vsz_kib=2901220)
    assert processes[2].comm == "Isolated Web Co"
    assert [p.pid for p in processes] == [1811, 4242, 4243, 1, 2]
    assert processes[-1].rss_kib == 0


def test_ps_cut_last_line_and_errors() -> None:
    assert [p.pid for p in parse_ps(PS + "   9999 bash    12")] == [1811, 4242, 4243, 1, 2]
    assert parse_ps("") == ()
    with pytest.raises(ParseError) as excinfo:
        parse_ps("    PID COMMAND RSS VSZ\nerror: unknown option --sort\n")
    assert excinfo.value.line == 2


def test_sysvm_values_keep_tabs_and_spaces() -> None:
    sysvm = parse_sysvm(
        "min_free_kbytes=67584\n"
        "lowmem_reserve_ratio=256\t256\t32\t0\t0\n"
        "/proc/sys/vm/swappiness=60\n"
        "cat: /proc/sys/vm/nr_hugepages_mempolicy: Permission denied\n"
        "stat_refresh=\n"
    )
    assert sysvm.values["lowmem_reserve_ratio"] == "256\t256\t32\t0\t0"
    assert sysvm.get_int("min_free_kbytes") == 67584
    assert sysvm.get_int("swappiness") == 60
    assert sysvm.get_int("lowmem_reserve_ratio") is None
    assert sysvm.values["stat_refresh"] == ""
    assert "cat" not in "".join(sysvm.values)


def test_sysvm_without_any_value_is_an_error() -> None:
    assert parse_sysvm("").values == {}
    with pytest.raises(ParseError):
        parse_sysvm("sh: 1: cannot open /proc/sys/vm\n")


def test_balloon_values() -> None:
    assert parse_balloon("target_kb=1048576\ncurrent_kb=1004524\n") == (1048576, 1004524)
    assert parse_balloon("info/current_kb=512\nlow_kb=0\nhigh_kb=0\ntarget_kb=1024\n") == (
        1024,
        512,
    )
    assert parse_balloon("") == (None, None)
    assert parse_balloon("current_kb=7\n") == (None, 7)
    with pytest.raises(ParseError):
        parse_balloon("target_kb=lots\n")
