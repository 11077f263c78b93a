"""Reading a large file: in blocks (without paying the kernel for fresh pages each
time), and by several processes only when it is large enough to be worth them."""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up of small scans)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

#: Below this much per worker process, starting processes costs more than it saves.
MIN_REGION = 24 << 20


def read_blocks(stream: Any, size: int) -> Iterator[bytes | bytearray]:
    """Blocks of a binary stream read into one reused buffer.

    A fresh block per read would make the kernel hand out and zero new pages for
    every block, which costs as much as scanning it. The consumer must be done
    with a block before asking for the next (ChunkScan copies what it carries).
    """
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        yield from iter(lambda: stream.read(size), b"")
        return
    buffer = bytearray(_buffer_size(stream, size))
    while True:
        n = readinto(buffer)
        if not n:
            return
        yield buffer if n == size else buffer[:n]


def _buffer_size(stream: Any, size: int) -> int:
    """``size``, or less for a smaller regular file: a small log should not pay for
    zeroing megabytes it never fills (a file that grows meanwhile takes more reads)."""
    import os
    import stat

    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return size
    if not stat.S_ISREG(info.st_mode):
        return size
    return max(1 << 16, min(size, info.st_size + 1))
