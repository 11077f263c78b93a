"""Give large freed blocks back to the system at once (glibc).

An audit reads each guest's kernel log (megabytes) and lets it go once parsed.
glibc raises its mmap threshold every time such a block is freed, so the next
logs land on the heap, where freed memory is not returned: a few hostile 8 MiB
guests would keep Dom0's memory high for the rest of the run. Fixing the
threshold keeps every block above it in its own mapping, returned when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: glibc's M_MMAP_THRESHOLD parameter number for mallopt(3).
_M_MMAP_THRESHOLD = -3
#: Blocks from this size up get their own mapping (glibc's default before it adapts).
THRESHOLD_BYTES = 1 << 20


def keep_large_blocks_returnable() -> bool:
    """Fix glibc's mmap threshold; False where there is no glibc mallopt (musl, others)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES))
