"""vm.min_free_kbytes: the kernel's default per era, and a proposal that scales with the guest."""

from __future__ import annotations

import pytest

from xenaudit.analysis import minfree

MIB = 1024


# The table in the comment above init_per_zone_wmark_min (mm/page_alloc.c).
@pytest.mark.parametrize(
    ("lowmem_mib", "expected_kib"),
    [(16, 512), (64, 1024), (256, 2048), (1024, 4096), (4096, 8192), (16384, 16384)],
)
def test_kernel_default_matches_the_kernels_own_table(lowmem_mib: int, expected_kib: int) -> None:
    assert minfree.kernel_default_kib(lowmem_mib * MIB, (5, 10)) == expected_kib


def test_lower_clamp() -> None:
    assert minfree.kernel_default_kib(100, (4, 19)) == 128


def test_upper_clamp_depends_on_the_kernel() -> None:
    one_tib = 1024 * 1024 * MIB  # sqrt(2**30 × 16) = 131072 kB
    assert minfree.kernel_default_kib(one_tib, (5, 6)) == 65536
    assert minfree.kernel_default_kib(one_tib, (5, 7)) == 131072
    assert minfree.kernel_default_kib(64 * one_tib, (6, 1)) == 262144
    assert minfree.kernel_default_kib(one_tib, (2, 6)) == 65536


@pytest.mark.parametrize("size_mib", [256, 512, 1024, 4096, 16384])
def test_proposal_scales_with_size_and_stays_proportionate(size_mib: int) -> None:
    total = size_mib * MIB
    default = minfree.kernel_default_kib(total, (5, 10))
    got = minfree.suggest(total, default, (5, 10))
    assert got is not None
    assert got.suggested_kib > default
    assert got.suggested_kib <= 0.05 * total
    assert got.suggested_kib >= 0.01 * total
    assert got.suggested_kib % 1024 == 0


def test_bigger_guests_get_bigger_reserves() -> None:
    sizes = [512, 1024, 2048, 8192]
    proposals = []
    for size in sizes:
        total = size * MIB
        got = minfree.suggest(total, minfree.kernel_default_kib(total), (6, 1))
        assert got is not None
        proposals.append(got.suggested_kib)
    assert proposals == sorted(proposals)
    assert proposals[0] < proposals[-1]


def test_512_mib_guest_gets_far_less_than_the_blanket_value() -> None:
    got = minfree.suggest(503 * MIB, None, (4, 19))
    assert got is not None
    assert got.suggested_kib < 65536 / 4
    assert any("65536" in r and "13%" in r for r in got.reasons)
    assert any("assuming the default" in r for r in got.reasons)


def test_already_at_the_ceiling_gets_no_proposal() -> None:
    total = 512 * MIB
    assert minfree.suggest(total, int(total * 0.06), (5, 10)) is None


def test_a_raised_value_is_recognised_and_never_doubled() -> None:
    total = 4096 * MIB
    # 67584 kB is what khugepaged sets for transparent hugepages on such a guest: already
    # above anything the formula-based proposal reaches, so nothing more is proposed.
    assert minfree.suggest(total, 67584, (5, 10)) is None
    # A value raised by hand above the formula (4096 kB for 1 GiB) grows from the formula.
    got = minfree.suggest(1024 * MIB, 5000, (5, 10))
    assert got is not None
    # max(2 × 4096, 1% of 1 GiB = 10486) → 11264, rounded up to 1 MiB; not 2 × 5000 + more.
    assert got.suggested_kib == 11264
    assert any("khugepaged" in r and "not doubled again" in r for r in got.reasons)


def test_never_above_the_kernels_own_bounds() -> None:
    # 64 GiB guest: 1% would be 671 MB; 5% of low memory and 262144 kB bound it.
    got = minfree.suggest(64 * 1024 * MIB, 65536, (5, 10))
    assert got is not None and got.suggested_kib == 262144
    # A 32-bit guest with 3 GiB, 2 GiB of it HighMem: 5% of the 1 GiB of low memory.
    small = minfree.suggest(3 * 1024 * MIB, 3000, (3, 10), high_total_kib=2 * 1024 * MIB)
    assert small is not None and small.suggested_kib <= 0.05 * 1024 * MIB


def test_resize_scales_the_proposal_to_the_new_size() -> None:
    now = minfree.suggest(1000 * MIB, 4000, (5, 10))
    after = minfree.suggest(1000 * MIB, 4000, (5, 10), resized_kib=4000 * MIB)
    assert now is not None and after is not None
    assert after.sized_for_kib == 4000 * MIB
    assert after.suggested_kib > now.suggested_kib
    assert after.kernel_default_kib > now.kernel_default_kib


def test_highmem_is_not_low_memory() -> None:
    total = 3 * 1024 * MIB
    with_high = minfree.suggest(total, None, (3, 10), high_total_kib=2 * 1024 * MIB)
    without = minfree.suggest(total, None, (3, 10))
    assert with_high is not None and without is not None
    assert with_high.kernel_default_kib < without.kernel_default_kib


def test_a_reserve_set_far_below_the_formula_comes_back_at_least_to_the_default() -> None:
    # The real-Xen burst guest: 80 MiB MemTotal, vm.min_free_kbytes = 128 set by hand.
    total = 82060
    default = minfree.kernel_default_kib(total, (6, 1))
    assert default == 1145
    got = minfree.suggest(total, 128, (6, 1))
    assert got is not None
    assert default <= got.suggested_kib <= 0.05 * total
    assert any("far below the formula's 1145 kB" in r for r in got.reasons)
