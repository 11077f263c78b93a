"""MemAvailable as the kernel defines it, and meminfo reads too damaged to size down on.

Linux 3.14 added MemAvailable ("/proc/meminfo: provide estimated available
memory"): free pages minus the zones' low watermarks, plus the page cache
and reclaimable slab that can go without swapping, each less what must stay
(half of it, or the low watermarks, whichever is smaller). Older kernels do
not print it, so the analysis computes the same estimate from the fields
they do print, with the low watermarks taken as vm.min_free_kbytes × 5/4
(the low watermark is min + min/4 on those kernels) or, without it, from
the kernel's default for the guest's size.

A meminfo without MemTotal, MemFree or the cache fields, or one from a
kernel that prints MemAvailable but did not this time, was cut or mangled on
the way: it may still show that a guest is short, but never that it could
do with less.
"""

from __future__ import annotations

from xenaudit.analysis import minfree
from xenaudit.parsers.interface import Meminfo

#: The first kernel that prints MemAvailable.
MEMAVAILABLE_SINCE = (3, 14)
#: Fields every kernel of the last fifteen years prints; without them the read was cut.
REQUIRED_FIELDS = ("MemTotal", "MemFree", "Buffers", "Cached", "SwapTotal", "SwapFree")


def meminfo_damage(meminfo: Meminfo | None, kernel: tuple[int, int] | None) -> str | None:
    """Why this meminfo must not size anything down, or None when it is whole."""
    if meminfo is None:
        return "no meminfo"
    missing = [name for name in REQUIRED_FIELDS if meminfo.get(name) is None]
    if missing:
        return f"meminfo lacks {', '.join(missing)} (cut or mangled on the way)"
    if meminfo.get("MemAvailable") is None and kernel is not None and kernel >= MEMAVAILABLE_SINCE:
        return (
            f"meminfo has no MemAvailable although Linux {kernel[0]}.{kernel[1]} prints it "
            "(since 3.14): the read was cut or mangled"
        )
    return None


def low_watermarks_kib(meminfo: Meminfo, min_free_kbytes: int | None) -> tuple[int, str]:
    """Sum of the zones' low watermarks, estimated, with where the number came from."""
    total = meminfo.mem_total_kib or 0
    high = meminfo.get("HighTotal") or 0
    if min_free_kbytes and min_free_kbytes > 0:
        base, source = min_free_kbytes, f"vm.min_free_kbytes {min_free_kbytes} kB"
    else:
        base = minfree.kernel_default_kib(max(total - high, 0), (3, 13))
        source = f"the kernel's default min_free_kbytes for this size ({base} kB)"
    return base + base // 4, source


def estimate_available(meminfo: Meminfo, min_free_kbytes: int | None) -> tuple[int | None, str]:
    """MemAvailable as 3.14 would compute it from the fields an older kernel prints.

    Page cache is Active(file) + Inactive(file) where the kernel splits the
    LRU (2.6.28 and later), else Cached + Buffers − Shmem.
    """
    free = meminfo.get("MemFree")
    if free is None:
        return None, "no MemFree to estimate MemAvailable from"
    low, low_source = low_watermarks_kib(meminfo, min_free_kbytes)
    active_file, inactive_file = meminfo.get("Active(file)"), meminfo.get("Inactive(file)")
    if active_file is not None and inactive_file is not None:
        pagecache = active_file + inactive_file
        cache_source = "Active(file) + Inactive(file)"
    else:
        shmem = meminfo.get("Shmem") or 0
        pagecache = max(0, (meminfo.get("Cached") or 0) + (meminfo.get("Buffers") or 0) - shmem)
        cache_source = "Cached + Buffers − Shmem"
    slab = meminfo.get("SReclaimable") or 0
    available = free - low
    available += pagecache - min(pagecache // 2, low)
    available += slab - min(slab // 2, low)
    available = max(0, available)
    note = (
        f"MemAvailable estimated as Linux 3.14 defines it: MemFree {free} − low watermarks "
        f"{low} ({low_source} × 5/4) + page cache {pagecache} ({cache_source}) and "
        f"SReclaimable {slab}, each less what must stay = {available} kB"
    )
    return available, note
