"""/proc/buddyinfo and the fragmentation figures derived from it."""

from __future__ import annotations

import pytest

from xenaudit.parsers.buddyinfo import (
    free_kib_at_least_order,
    parse_buddyinfo,
    unusable_free_index,
)
from xenaudit.parsers.interface import BuddyZone, ParseError


def test_numa_two_nodes(corpus) -> None:
    buddy = parse_buddyinfo((corpus / "buddyinfo_numa_2nodes_alitech.txt").read_text())
    assert [(z.node, z.zone) for z in buddy.zones] == [
        (0, "DMA"),
        (0, "DMA32"),
        (0, "Normal"),
        (1, "Normal"),
    ]
    assert buddy.zones[0].free_blocks == (1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 3)
    assert buddy.zones[1].free_blocks == (502, 158, 60, 29, 44, 53, 18, 9, 14, 9, 114)
    assert buddy.zones[2].free_blocks == (3563, 708, 3528, 2924, 6275, 850, 2202, 576, 6, 0, 0)
    assert buddy.zones[3].free_blocks == (120, 257, 136, 925, 2815, 2690, 1723, 1036, 4, 5, 0)
    assert buddy.page_size_kib == 4


def test_raspberry_pi_single_zone_irregular_spacing(corpus) -> None:
    buddy = parse_buddyinfo((corpus / "buddyinfo_rpi_single_zone.txt").read_text())
    (zone,) = buddy.zones
    assert (zone.node, zone.zone) == (0, "Normal")
    assert zone.free_blocks == (82, 32, 11, 6, 5, 3, 3, 3, 4, 4, 160)


def test_free_kib_at_least_order(corpus) -> None:
    buddy = parse_buddyinfo((corpus / "buddyinfo_rpi_single_zone.txt").read_text())
    zone = buddy.zones[0]
    # Order 10 blocks are 4 MiB: 160 of them.
    assert free_kib_at_least_order(zone, 10) == 160 * 4096
    assert free_kib_at_least_order(zone, 9) == 160 * 4096 + 4 * 2048
    total = sum(n * (4 << k) for k, n in enumerate(zone.free_blocks))
    assert free_kib_at_least_order(buddy, 0) == total
    assert free_kib_at_least_order(buddy, 11) == 0
    # Summed over zones for a Buddyinfo.
    numa = parse_buddyinfo((corpus / "buddyinfo_numa_2nodes_alitech.txt").read_text())
    assert free_kib_at_least_order(numa, 10) == (3 + 114 + 0 + 0) * 4096
    assert free_kib_at_least_order(numa, 10) == sum(
        free_kib_at_least_order(z, 10) for z in numa.zones
    )


def test_unusable_free_index_matches_the_kernel_definition() -> None:
    zone = BuddyZone(0, "Normal", (8, 2, 0, 1))  # pages: 8 + 4 + 0 + 8 = 20
    assert unusable_free_index(zone, 0) == 0.0
    assert unusable_free_index(zone, 1) == pytest.approx(8 / 20)
    assert unusable_free_index(zone, 2) == pytest.approx(12 / 20)
    assert unusable_free_index(zone, 3) == pytest.approx(12 / 20)
    assert unusable_free_index(zone, 4) == 1.0
    # Like debugfs extfrag/unusable_index: no free memory at all reads as 1 (all unusable).
    assert unusable_free_index(BuddyZone(0, "DMA", (0, 0, 0)), 0) == 1.0


def test_unusable_free_index_pools_zones(corpus) -> None:
    numa = parse_buddyinfo((corpus / "buddyinfo_numa_2nodes_alitech.txt").read_text())
    free = sum(n << k for z in numa.zones for k, n in enumerate(z.free_blocks))
    suitable = sum(n << k for z in numa.zones for k, n in enumerate(z.free_blocks) if k >= 9)
    assert unusable_free_index(numa, 9) == pytest.approx((free - suitable) / free)
    assert 0.0 < unusable_free_index(numa, 9) < 1.0


def test_truncated_last_line_and_trailing_spaces() -> None:
    text = (
        "Node 0, zone      DMA      1      2      1      0      1      1      1      0 \n"
        "Node 0, zone    DMA32   8311   4102    301"
    )
    buddy = parse_buddyinfo(text)
    assert [z.zone for z in buddy.zones] == ["DMA"]
    assert buddy.zones[0].free_blocks == (1, 2, 1, 0, 1, 1, 1, 0)


@pytest.mark.parametrize(
    "text", ["", "Node 0, zone DMA\n", "Node zero, zone DMA 1 2\nNode 0, zone DMA 1\n"]
)
def test_not_a_buddyinfo(text: str) -> None:
    with pytest.raises(ParseError):
        parse_buddyinfo(text)
