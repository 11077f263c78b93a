"""GFP allocation flags: split the names a kernel printed, or decode a bare hex mask.

Kernels since 4.6 print the mask with its symbolic names, e.g.
``mode:0x2080020(GFP_ATOMIC)``; older kernels print only the hex number, and
the meaning of each bit moved several times (``0x20`` is ``__GFP_HIGH``, i.e.
GFP_ATOMIC, on every kernel, but ``0x10`` was ``__GFP_WAIT`` before 4.4 and
``__GFP_RECLAIMABLE`` after). So decoding needs to know the era of the kernel
that printed the mask; the tables below follow include/linux/gfp.h (and
include/linux/gfp_types.h in 6.x) as released, one table per bit layout.

A decoded mask is reported the way ``show_gfp_flags`` would print it
(composite names such as GFP_KERNEL first, greedily, largest first) **and then
every individual bit that was set**, so ``0x20`` before 4.4 decodes to
``["GFP_ATOMIC", "__GFP_HIGH"]``. Listing the bits as well keeps questions such
as "could this allocation sleep?" answerable without knowing the composites.
Bits unknown to the era's table are listed as hex, e.g. ``"0x4000000"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

#: Bit layouts, oldest first. Boundaries are the releases that reshuffled bits.
ERAS: tuple[str, ...] = ("pre-4.4", "4.4", "4.10", "4.16", "4.20", "6.3")

#: Used when nothing in the log tells the kernel version. A mask printed without
#: names comes from a kernel older than 4.6 (names appeared in 4.6), and of those
#: only 4.4 and 4.5 used the newer layout, so the old layout is the best guess.
DEFAULT_ERA = "pre-4.4"


def _bits(pairs: Iterable[tuple[str, int]]) -> dict[int, str]:
    return {value: name for name, value in pairs}


# Zone and placement bits kept their values in every era.
_LOW = (
    ("__GFP_DMA", 0x01),
    ("__GFP_HIGHMEM", 0x02),
    ("__GFP_DMA32", 0x04),
    ("__GFP_MOVABLE", 0x08),
)

_BITS: dict[str, dict[int, str]] = {
    # 2.6.x .. 4.3. __GFP_MEMALLOC appeared in 3.6, __GFP_KMEMCG lived in
    # 3.8..3.14, __GFP_NO_KSWAPD/__GFP_OTHER_NODE/__GFP_WRITE arrived in 2.6.3x-3.x;
    # a bit absent from an older kernel is simply never set by it.
    "pre-4.4": _bits(
        (
            *_LOW,
            ("__GFP_WAIT", 0x10),
            ("__GFP_HIGH", 0x20),
            ("__GFP_IO", 0x40),
            ("__GFP_FS", 0x80),
            ("__GFP_COLD", 0x100),
            ("__GFP_NOWARN", 0x200),
            ("__GFP_REPEAT", 0x400),
            ("__GFP_NOFAIL", 0x800),
            ("__GFP_NORETRY", 0x1000),
            ("__GFP_MEMALLOC", 0x2000),
            ("__GFP_COMP", 0x4000),
            ("__GFP_ZERO", 0x8000),
            ("__GFP_NOMEMALLOC", 0x10000),
            ("__GFP_HARDWALL", 0x20000),
            ("__GFP_THISNODE", 0x40000),
            ("__GFP_RECLAIMABLE", 0x80000),
            ("__GFP_KMEMCG", 0x100000),
            ("__GFP_NOTRACK", 0x200000),
            ("__GFP_NO_KSWAPD", 0x400000),
            ("__GFP_OTHER_NODE", 0x800000),
            ("__GFP_WRITE", 0x1000000),
        )
    ),
    # 4.4 .. 4.9: __GFP_WAIT split into direct/kswapd reclaim, __GFP_ATOMIC added
    # where __GFP_RECLAIMABLE was, which moved to 0x10 (checked against the 4.4
    # series' gfp.h diffs). 0x100000 is __GFP_NOACCOUNT in 4.4 and __GFP_ACCOUNT
    # from 4.5; the later name is used (it never decides atomic or opportunistic).
    "4.4": _bits(
        (
            *_LOW,
            ("__GFP_RECLAIMABLE", 0x10),
            ("__GFP_HIGH", 0x20),
            ("__GFP_IO", 0x40),
            ("__GFP_FS", 0x80),
            ("__GFP_COLD", 0x100),
            ("__GFP_NOWARN", 0x200),
            ("__GFP_REPEAT", 0x400),
            ("__GFP_NOFAIL", 0x800),
            ("__GFP_NORETRY", 0x1000),
            ("__GFP_MEMALLOC", 0x2000),
            ("__GFP_COMP", 0x4000),
            ("__GFP_ZERO", 0x8000),
            ("__GFP_NOMEMALLOC", 0x10000),
            ("__GFP_HARDWALL", 0x20000),
            ("__GFP_THISNODE", 0x40000),
            ("__GFP_ATOMIC", 0x80000),
            ("__GFP_ACCOUNT", 0x100000),
            ("__GFP_NOTRACK", 0x200000),
            ("__GFP_DIRECT_RECLAIM", 0x400000),
            ("__GFP_OTHER_NODE", 0x800000),
            ("__GFP_WRITE", 0x1000000),
            ("__GFP_KSWAPD_RECLAIM", 0x2000000),
        )
    ),
    # 4.10 .. 4.15: __GFP_OTHER_NODE gone, __GFP_REPEAT renamed __GFP_RETRY_MAYFAIL
    # (4.13), __GFP_NOLOCKDEP added (4.12). Ubuntu 4.15 prints
    # GFP_KERNEL_ACCOUNT as 0x15000c0, which is this layout.
    "4.10": _bits(
        (
            *_LOW,
            ("__GFP_RECLAIMABLE", 0x10),
            ("__GFP_HIGH", 0x20),
            ("__GFP_IO", 0x40),
            ("__GFP_FS", 0x80),
            ("__GFP_COLD", 0x100),
            ("__GFP_NOWARN", 0x200),
            ("__GFP_RETRY_MAYFAIL", 0x400),
            ("__GFP_NOFAIL", 0x800),
            ("__GFP_NORETRY", 0x1000),
            ("__GFP_MEMALLOC", 0x2000),
            ("__GFP_COMP", 0x4000),
            ("__GFP_ZERO", 0x8000),
            ("__GFP_NOMEMALLOC", 0x10000),
            ("__GFP_HARDWALL", 0x20000),
            ("__GFP_THISNODE", 0x40000),
            ("__GFP_ATOMIC", 0x80000),
            ("__GFP_ACCOUNT", 0x100000),
            ("__GFP_NOTRACK", 0x200000),
            ("__GFP_DIRECT_RECLAIM", 0x400000),
            ("__GFP_WRITE", 0x800000),
            ("__GFP_KSWAPD_RECLAIM", 0x1000000),
            ("__GFP_NOLOCKDEP", 0x2000000),
        )
    ),
    # 4.18 .. 4.19: the bits that __GFP_COLD and __GFP_OTHER_NODE left were reused,
    # __GFP_WRITE moved down to 0x100 and the reclaim bits followed (4.18.0 prints
    # GFP_HIGHUSER_MOVABLE as 0x6200ca). 4.15 .. 4.17 kept the 4.10 positions. The
    # key keeps its historical name "4.16" so stored reports stay comparable.
    "4.16": _bits(
        (
            *_LOW,
            ("__GFP_RECLAIMABLE", 0x10),
            ("__GFP_HIGH", 0x20),
            ("__GFP_IO", 0x40),
            ("__GFP_FS", 0x80),
            ("__GFP_WRITE", 0x100),
            ("__GFP_NOWARN", 0x200),
            ("__GFP_RETRY_MAYFAIL", 0x400),
            ("__GFP_NOFAIL", 0x800),
            ("__GFP_NORETRY", 0x1000),
            ("__GFP_MEMALLOC", 0x2000),
            ("__GFP_COMP", 0x4000),
            ("__GFP_ZERO", 0x8000),
            ("__GFP_NOMEMALLOC", 0x10000),
            ("__GFP_HARDWALL", 0x20000),
            ("__GFP_THISNODE", 0x40000),
            ("__GFP_ATOMIC", 0x80000),
            ("__GFP_ACCOUNT", 0x100000),
            ("__GFP_DIRECT_RECLAIM", 0x200000),
            ("__GFP_KSWAPD_RECLAIM", 0x400000),
            ("__GFP_NOLOCKDEP", 0x800000),
        )
    ),
    # 4.20/5.x .. 6.2: reordered so that GFP_KERNEL and GFP_ATOMIC sit in the low
    # bits (boundary approximate: 4.19 still prints 0x6200ca, 5.4 prints GFP_KERNEL
    # as 0xcc0).
    "4.20": _bits(
        (
            *_LOW,
            ("__GFP_RECLAIMABLE", 0x10),
            ("__GFP_HIGH", 0x20),
            ("__GFP_IO", 0x40),
            ("__GFP_FS", 0x80),
            ("__GFP_ZERO", 0x100),
            ("__GFP_ATOMIC", 0x200),
            ("__GFP_DIRECT_RECLAIM", 0x400),
            ("__GFP_KSWAPD_RECLAIM", 0x800),
            ("__GFP_WRITE", 0x1000),
            ("__GFP_NOWARN", 0x2000),
            ("__GFP_RETRY_MAYFAIL", 0x4000),
            ("__GFP_NOFAIL", 0x8000),
            ("__GFP_NORETRY", 0x10000),
            ("__GFP_MEMALLOC", 0x20000),
            ("__GFP_COMP", 0x40000),
            ("__GFP_NOMEMALLOC", 0x80000),
            ("__GFP_HARDWALL", 0x100000),
            ("__GFP_THISNODE", 0x200000),
            ("__GFP_ACCOUNT", 0x400000),
            ("__GFP_NOLOCKDEP", 0x800000),
        )
    ),
    # 6.3+: __GFP_ATOMIC removed (0x200 unused), KASAN tag bits above.
    "6.3": _bits(
        (
            *_LOW,
            ("__GFP_RECLAIMABLE", 0x10),
            ("__GFP_HIGH", 0x20),
            ("__GFP_IO", 0x40),
            ("__GFP_FS", 0x80),
            ("__GFP_ZERO", 0x100),
            ("__GFP_DIRECT_RECLAIM", 0x400),
            ("__GFP_KSWAPD_RECLAIM", 0x800),
            ("__GFP_WRITE", 0x1000),
            ("__GFP_NOWARN", 0x2000),
            ("__GFP_RETRY_MAYFAIL", 0x4000),
            ("__GFP_NOFAIL", 0x8000),
            ("__GFP_NORETRY", 0x10000),
            ("__GFP_MEMALLOC", 0x20000),
            ("__GFP_COMP", 0x40000),
            ("__GFP_NOMEMALLOC", 0x80000),
            ("__GFP_HARDWALL", 0x100000),
            ("__GFP_THISNODE", 0x200000),
            ("__GFP_ACCOUNT", 0x400000),
            ("__GFP_ZEROTAGS", 0x800000),
            ("__GFP_SKIP_ZERO", 0x1000000),
            ("__GFP_SKIP_KASAN", 0x2000000),
            ("__GFP_NOLOCKDEP", 0x4000000),
        )
    ),
}

# Composite names as sets of component bits, per era family.
_OLD_KERNEL = ("__GFP_WAIT", "__GFP_IO", "__GFP_FS")
_OLD_USER = (*_OLD_KERNEL, "__GFP_HARDWALL")
_OLD_COMPOSITES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "GFP_TRANSHUGE",
        (
            *_OLD_USER,
            "__GFP_HIGHMEM",
            "__GFP_MOVABLE",
            "__GFP_COMP",
            "__GFP_NOMEMALLOC",
            "__GFP_NORETRY",
            "__GFP_NOWARN",
            "__GFP_NO_KSWAPD",
        ),
    ),
    ("GFP_HIGHUSER_MOVABLE", (*_OLD_USER, "__GFP_HIGHMEM", "__GFP_MOVABLE")),
    ("GFP_HIGHUSER", (*_OLD_USER, "__GFP_HIGHMEM")),
    ("GFP_USER", _OLD_USER),
    ("GFP_TEMPORARY", (*_OLD_KERNEL, "__GFP_RECLAIMABLE")),
    ("GFP_KERNEL", _OLD_KERNEL),
    ("GFP_NOFS", ("__GFP_WAIT", "__GFP_IO")),
    ("GFP_ATOMIC", ("__GFP_HIGH",)),
    ("GFP_NOIO", ("__GFP_WAIT",)),
)

_RECLAIM = ("__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM")
_NEW_KERNEL = (*_RECLAIM, "__GFP_IO", "__GFP_FS")
_NEW_USER = (*_NEW_KERNEL, "__GFP_HARDWALL")
_NEW_HIGHUSER_MOVABLE = (*_NEW_USER, "__GFP_HIGHMEM", "__GFP_MOVABLE")
# Transparent huge pages: movable user memory, compound, no reserves, quiet, and
# (the light variant) no reclaim at all.
_THP_LIGHT = (
    "__GFP_IO",
    "__GFP_FS",
    "__GFP_HARDWALL",
    "__GFP_HIGHMEM",
    "__GFP_MOVABLE",
    "__GFP_COMP",
    "__GFP_NOMEMALLOC",
    "__GFP_NOWARN",
)


def _new_composites(
    atomic: tuple[str, ...], nowait: tuple[str, ...], temporary: bool
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    comps: list[tuple[str, tuple[str, ...]]] = [
        ("GFP_TRANSHUGE", (*_THP_LIGHT, "__GFP_DIRECT_RECLAIM")),
        ("GFP_TRANSHUGE_LIGHT", _THP_LIGHT),
        ("GFP_HIGHUSER_MOVABLE", _NEW_HIGHUSER_MOVABLE),
        ("GFP_HIGHUSER", (*_NEW_USER, "__GFP_HIGHMEM")),
        ("GFP_USER", _NEW_USER),
    ]
    if temporary:
        comps.append(("GFP_TEMPORARY", (*_NEW_KERNEL, "__GFP_RECLAIMABLE")))
    comps += [
        ("GFP_KERNEL_ACCOUNT", (*_NEW_KERNEL, "__GFP_ACCOUNT")),
        ("GFP_KERNEL", _NEW_KERNEL),
        ("GFP_NOFS", (*_RECLAIM, "__GFP_IO")),
        ("GFP_ATOMIC", atomic),
        ("GFP_NOIO", _RECLAIM),
        ("GFP_NOWAIT", nowait),
    ]
    return tuple(comps)


_ATOMIC_4X = ("__GFP_HIGH", "__GFP_ATOMIC", "__GFP_KSWAPD_RECLAIM")
_COMPOSITES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "pre-4.4": _OLD_COMPOSITES,
    "4.4": _new_composites(_ATOMIC_4X, ("__GFP_KSWAPD_RECLAIM",), temporary=True),
    "4.10": _new_composites(_ATOMIC_4X, ("__GFP_KSWAPD_RECLAIM",), temporary=True),
    "4.16": _new_composites(_ATOMIC_4X, ("__GFP_KSWAPD_RECLAIM",), temporary=False),
    "4.20": _new_composites(_ATOMIC_4X, ("__GFP_KSWAPD_RECLAIM",), temporary=False),
    "6.3": _new_composites(
        ("__GFP_HIGH", "__GFP_KSWAPD_RECLAIM"),
        ("__GFP_KSWAPD_RECLAIM", "__GFP_NOWARN"),
        temporary=False,
    ),
}


class _Table:
    __slots__ = ("bits", "composites")

    def __init__(self, bits: Mapping[int, str], composites: tuple[tuple[str, int], ...]) -> None:
        self.bits = bits
        #: (name, mask) sorted so that composites with more bits are tried first.
        self.composites = composites


def _build_table(era: str) -> _Table:
    bits = _BITS[era]
    by_name = {name: value for value, name in bits.items()}
    comps: list[tuple[str, int]] = []
    for name, parts in _COMPOSITES[era]:
        mask = 0
        for part in parts:
            mask |= by_name[part]
        comps.append((name, mask))
    # Stable sort: most bits first, the declaration order breaks ties.
    comps.sort(key=lambda item: -bin(item[1]).count("1"))
    return _Table(bits=bits, composites=tuple(comps))


#: Tables by era, built when an era is first decoded.
_TABLES: dict[str, _Table] = {}


def _table(era: str) -> _Table:
    table = _TABLES.get(era)
    if table is None:
        table = _TABLES[era] = _build_table(era)
    return table


def era_for_version(major: int, minor: int) -> str:
    """The bit layout used by kernel release major.minor."""
    version = (major, minor)
    if version < (4, 4):
        return "pre-4.4"
    if version < (4, 10):
        return "4.4"
    if version < (4, 18):
        return "4.10"
    if version < (4, 20):
        return "4.16"
    if version < (6, 3):
        return "4.20"
    return "6.3"


_VERSION_RE = re.compile(r"(\d+)\.(\d+)")


def era_for_release(release: str | None) -> str | None:
    """Era for a release string such as "3.18.18+40-ph" or "Linux 4.15.0-213"; None if unknown."""
    if not release:
        return None
    match = _VERSION_RE.search(release)
    if match is None:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    if not 2 <= major <= 99:
        return None
    return era_for_version(major, minor)


def parse_mask(text: str) -> int | None:
    """The integer value of a printed mask such as "0x20"; None when it is not hex."""
    try:
        return int(text, 16)
    except ValueError:
        return None


def decode_mask(mask: int, era: str = DEFAULT_ERA) -> tuple[str, ...]:
    """Composite names (greedy, largest first) followed by every set bit's own name."""
    table = _table(era if era in _BITS else DEFAULT_ERA)
    names: list[str] = []
    rest = mask
    for name, comp in table.composites:
        if comp and rest & comp == comp:
            names.append(name)
            rest &= ~comp
    bit = 1
    while bit <= mask:
        if mask & bit:
            names.append(table.bits.get(bit, hex(bit)))
        bit <<= 1
    return tuple(names)


def split_printed(names: str) -> tuple[str, ...]:
    """Names as printed inside the parentheses, e.g. "GFP_KERNEL|__GFP_COMP"."""
    return tuple(part.strip() for part in names.split("|") if part.strip())


#: Flags that let an allocation sleep to reclaim memory itself, by era family.
_DIRECT_RECLAIM = frozenset({"__GFP_WAIT", "__GFP_DIRECT_RECLAIM", "__GFP_RECLAIM"})
#: Composite names that include direct reclaim (pre-4.4 __GFP_WAIT or later
#: __GFP_DIRECT_RECLAIM).
_RECLAIMING_COMPOSITES = frozenset(
    {
        "GFP_KERNEL",
        "GFP_KERNEL_ACCOUNT",
        "GFP_USER",
        "GFP_HIGHUSER",
        "GFP_HIGHUSER_MOVABLE",
        "GFP_NOIO",
        "GFP_NOFS",
        "GFP_TEMPORARY",
        "GFP_TRANSHUGE",
    }
)
#: Flags that give access to reserves below the watermarks (atomic requests).
_RESERVE = frozenset({"__GFP_HIGH", "__GFP_ATOMIC", "__GFP_MEMALLOC", "GFP_ATOMIC"})
#: Requests that the kernel lets fail rather than try hard: they fall back or retry
#: later by design (transparent huge pages, readahead, opportunistic caches).
_MAY_FAIL = frozenset({"__GFP_NORETRY", "GFP_NOWAIT", "GFP_TRANSHUGE_LIGHT"})


def can_direct_reclaim(flags: Iterable[str]) -> bool:
    """Whether the request could sleep to reclaim memory itself."""
    names = set(flags)
    return bool(names & _DIRECT_RECLAIM or names & _RECLAIMING_COMPOSITES)


def is_opportunistic(flags: Iterable[str], mask: str | None = None) -> bool:
    """True for a request that was allowed to fail by design.

    That is __GFP_NORETRY (give up after one light reclaim attempt), GFP_NOWAIT
    (no direct reclaim, and unlike GFP_ATOMIC no access to the reserves), or
    transparent huge pages without reclaim. A failure of such a request is
    normal behaviour under any load: it is worth reporting, not sizing on.
    ``flags`` are printed or decoded names; ``mask`` is the printed hex, used to
    spot a decoded pre-4.4 GFP_NOWAIT, which is the value 0 (no bits at all).
    """
    names = set(flags)
    if names & _MAY_FAIL:
        return True
    if not names:
        value = parse_mask(mask) if mask else None
        # Only zone bits (or nothing): no __GFP_WAIT and no __GFP_HIGH.
        return value is not None and value & ~0x0F == 0
    if can_direct_reclaim(names) or names & _RESERVE:
        return False
    # Neither direct reclaim nor reserves: GFP_NOWAIT written out bit by bit.
    return bool(names & {"__GFP_KSWAPD_RECLAIM"}) or names <= {
        "__GFP_DMA",
        "__GFP_HIGHMEM",
        "__GFP_DMA32",
        "__GFP_MOVABLE",
        "__GFP_NOWARN",
        "__GFP_COMP",
        "__GFP_ZERO",
        "__GFP_NOMEMALLOC",
        "__GFP_HARDWALL",
        "__GFP_THISNODE",
        "__GFP_ACCOUNT",
        "__GFP_RECLAIMABLE",
        "__GFP_COLD",
        "__GFP_NOTRACK",
    }
