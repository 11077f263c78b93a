"""/proc/slabinfo (format 2.x), which needs root: "denied" is a state, not an error."""

from __future__ import annotations

import re

from xenaudit.parsers._text import MAX_COUNTER, text_lines
from xenaudit.parsers.interface import ParseError, SlabCache, Slabinfo

_VERSION_RE = re.compile(r"\s*slabinfo\s*-\s*version:\s*(?P<version>\S+)")
_DENIED = ("permission denied", "operation not permitted")
_MISSING = ("no such file",)


def parse_slabinfo(text: str | bytes | None, source: str = "slabinfo") -> Slabinfo:
    """Caches sorted by size (num_objs * objsize), largest first.

    Empty text or "No such file" gives state "missing"; "Permission denied"
    (non-root readers) gives state "denied". A truncated header is fine; data
    lines are "name active num objsize objperslab pagesperslab : tunables ... :
    slabdata active_slabs num_slabs sharedavail", the slabdata part optional.
    """
    if not text:
        return Slabinfo(state="missing", version=None)
    lines, ended = text_lines(text)
    lowered = "\n".join(lines[:3]).lower()
    version: str | None = None
    caches: list[SlabCache] = []
    bad: list[int] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _VERSION_RE.match(line)
        if match is not None:
            version = match["version"]
            continue
        cache = _cache(line)
        if cache is not None and _implausible(cache):
            raise ParseError(
                source, f"cache {cache.name[:40]!r} has numbers beyond 64 bits", index + 1
            )
        if cache is None:
            if not (index == len(lines) - 1 and not ended):
                bad.append(index + 1)
            continue
        if index == len(lines) - 1 and not ended and cache.num_slabs is None:
            continue
        caches.append(cache)
    if not caches and version is None:
        if any(word in lowered for word in _DENIED):
            return Slabinfo(state="denied", version=None)
        if any(word in lowered for word in _MISSING):
            return Slabinfo(state="missing", version=None)
        raise ParseError(
            source, "neither a slabinfo header nor cache lines", bad[0] if bad else None
        )
    caches.sort(key=lambda c: (-c.size_kib, c.name))
    return Slabinfo(state="ok", version=version, caches=tuple(caches))


def _implausible(cache: SlabCache) -> bool:
    numbers = (
        cache.active_objs,
        cache.num_objs,
        cache.objsize_bytes,
        cache.objperslab,
        cache.pagesperslab,
        cache.num_slabs or 0,
    )
    return any(abs(n) > MAX_COUNTER for n in numbers) or cache.size_kib > MAX_COUNTER


def _cache(line: str) -> SlabCache | None:
    parts = line.split(":")
    head = parts[0].split()
    if len(head) < 6:
        return None
    if any(len(v) > 40 for v in head[-5:]):
        return None
    try:
        numbers = [int(v) for v in head[-5:]]
    except ValueError:
        return None
    num_slabs: int | None = None
    for part in parts[1:]:
        words = part.split()
        if words and words[0] == "slabdata" and len(words) >= 3:
            try:
                num_slabs = int(words[2])
            except ValueError:
                num_slabs = None
    return SlabCache(
        name=" ".join(head[:-5]),
        active_objs=numbers[0],
        num_objs=numbers[1],
        objsize_bytes=numbers[2],
        objperslab=numbers[3],
        pagesperslab=numbers[4],
        num_slabs=num_slabs,
    )
