"""GFP decoding per kernel era, checked against masks kernels printed with their names."""

from __future__ import annotations

import pytest

from xenaudit.parsers import gfp


@pytest.mark.parametrize(
    ("era", "mask", "composites"),
    [
        # pre-4.4: GFP_ATOMIC was __GFP_HIGH alone, GFP_KERNEL = WAIT|IO|FS.
        ("pre-4.4", 0x20, ["GFP_ATOMIC"]),
        ("pre-4.4", 0xD0, ["GFP_KERNEL"]),
        ("pre-4.4", 0x201DA, ["GFP_HIGHUSER_MOVABLE"]),
        ("pre-4.4", 0x10, ["GFP_NOIO"]),
        # The rest: masks printed together with their names by real kernels.
        ("4.4", 0x2080020, ["GFP_ATOMIC"]),  # "mode:0x2080020(GFP_ATOMIC)" (4.6 commit log)
        ("4.4", 0x24201CA, ["GFP_HIGHUSER_MOVABLE"]),  # GFP_HIGHUSER_MOVABLE|__GFP_COLD
        ("4.4", 0x2084020, ["GFP_ATOMIC"]),  # corpus 4.9.56: GFP_ATOMIC|__GFP_COMP
        ("4.10", 0x15000C0, ["GFP_KERNEL_ACCOUNT"]),  # corpus 4.15.0-108
        ("4.10", 0x14040C0, ["GFP_KERNEL"]),  # GFP_KERNEL|__GFP_COMP on 4.15
        ("4.16", 0x6000C0, ["GFP_KERNEL"]),
        ("4.16", 0x6200CA, ["GFP_HIGHUSER_MOVABLE"]),
        ("4.20", 0x40DC0, ["GFP_KERNEL"]),  # corpus 5.4.19: GFP_KERNEL|__GFP_COMP|__GFP_ZERO
        ("4.20", 0x100CCA, ["GFP_HIGHUSER_MOVABLE"]),  # 5.4 OOM reports
        ("4.20", 0xA20, ["GFP_ATOMIC"]),
        ("4.20", 0xCD0, ["GFP_KERNEL"]),  # GFP_KERNEL|__GFP_RECLAIMABLE on 6.1
        ("6.3", 0xDC0, ["GFP_KERNEL"]),  # corpus 6.9: GFP_KERNEL|__GFP_ZERO
        ("6.3", 0x820, ["GFP_ATOMIC"]),
        ("6.3", 0xCC0, ["GFP_KERNEL"]),
    ],
)
def test_composites_match_what_kernels_printed(era: str, mask: int, composites: list[str]) -> None:
    names = gfp.decode_mask(mask, era)
    assert [n for n in names if n.startswith("GFP_")] == composites


@pytest.mark.parametrize(
    ("era", "mask", "bits"),
    [
        ("pre-4.4", 0x8020, {"__GFP_HIGH", "__GFP_ZERO"}),
        ("pre-4.4", 0x204010, {"__GFP_WAIT", "__GFP_COMP", "__GFP_NOTRACK"}),
        ("4.4", 0x2084020, {"__GFP_HIGH", "__GFP_ATOMIC", "__GFP_COMP", "__GFP_KSWAPD_RECLAIM"}),
        ("4.10", 0x15000C0, {"__GFP_ACCOUNT", "__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM"}),
        ("4.20", 0x40DC0, {"__GFP_COMP", "__GFP_ZERO", "__GFP_IO", "__GFP_FS"}),
        ("6.3", 0xDC0, {"__GFP_ZERO", "__GFP_DIRECT_RECLAIM"}),
    ],
)
def test_every_set_bit_is_listed_after_the_composites(era: str, mask: int, bits: set) -> None:
    names = gfp.decode_mask(mask, era)
    assert bits <= set(names)
    singles = [n for n in names if not n.startswith("GFP_")]
    assert len(singles) == bin(mask).count("1")


def test_same_mask_differs_between_eras() -> None:
    # 0x10 was __GFP_WAIT (can sleep) before 4.4 and __GFP_RECLAIMABLE after.
    assert "__GFP_WAIT" in gfp.decode_mask(0x10, "pre-4.4")
    assert gfp.decode_mask(0x10, "4.4") == ("__GFP_RECLAIMABLE",)


def test_unknown_bits_are_shown_in_hex() -> None:
    assert gfp.decode_mask(0x40000000, "6.3") == ("0x40000000",)
    assert gfp.decode_mask(0, "pre-4.4") == ()


def test_unknown_era_falls_back_to_the_default_table() -> None:
    assert gfp.decode_mask(0x20, "3.x-typo") == gfp.decode_mask(0x20, gfp.DEFAULT_ERA)


@pytest.mark.parametrize(
    ("release", "era"),
    [
        ("2.6.32-573.7.1.el6.x86_64", "pre-4.4"),
        ("3.18.18+40-ph", "pre-4.4"),
        ("4.3.3-coreos-r2", "pre-4.4"),
        ("4.4.0-21-generic", "4.4"),
        ("4.9.56", "4.4"),
        ("4.15.0-108-generic", "4.10"),
        ("4.19.0-25-amd64", "4.16"),
        ("5.4.19-100.fc30.x86_64", "4.20"),
        ("6.2.0", "4.20"),
        ("6.9.0-rc7-g4157e5c9501e-dirty", "6.3"),
        ("Linux version 4.4.0-21-generic", "4.4"),
        ("", None),
        (None, None),
        ("no version here", None),
        ("0.1", None),
    ],
)
def test_era_for_release(release: str | None, era: str | None) -> None:
    assert gfp.era_for_release(release) == era


def test_mask_parsing_and_printed_names() -> None:
    assert gfp.parse_mask("0x2080020") == 0x2080020
    assert gfp.parse_mask("zz") is None
    assert gfp.split_printed("GFP_KERNEL|__GFP_COMP| __GFP_ZERO") == (
        "GFP_KERNEL",
        "__GFP_COMP",
        "__GFP_ZERO",
    )
    assert gfp.split_printed("") == ()
