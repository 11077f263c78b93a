"""Hyperscan only where the CPU can run it: elsewhere it dies with SIGILL, not an error.

The real-Xen suite's Dom0 runs on QEMU's qemu64 CPU (SSE3, no SSSE3); there the
Hyperscan wheel killed `xenaudit audit` with "Illegal instruction" in compile.
"""

from __future__ import annotations

from tests.fake_xl.support import RECORDINGS
from xenaudit.parsers.markers import cpu_can_run_hyperscan

QEMU64 = (RECORDINGS / "realxen_4.17" / "dom0-cpuinfo.out").read_text()
MODERN = "processor\t: 0\nflags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 popcnt avx avx2\n"


def test_the_real_qemu64_dom0_gets_the_fallback() -> None:
    assert "ssse3" not in QEMU64
    assert not cpu_can_run_hyperscan(QEMU64, "x86_64")


def test_a_cpu_with_the_flags_uses_hyperscan() -> None:
    assert cpu_can_run_hyperscan(MODERN, "x86_64")
    assert not cpu_can_run_hyperscan(MODERN.replace(" popcnt", ""), "x86_64")


def test_unknown_x86_cpu_is_not_trusted_but_other_architectures_are() -> None:
    assert not cpu_can_run_hyperscan(None, "x86_64")
    assert not cpu_can_run_hyperscan("processor\t: 0\n", "x86_64")
    assert cpu_can_run_hyperscan(None, "aarch64")
