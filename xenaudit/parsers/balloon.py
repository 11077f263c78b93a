"""The Xen balloon driver's sysfs view (/sys/devices/system/xen_memory/xen_memory0)."""

from __future__ import annotations

from xenaudit.parsers._text import MAX_KIB, bounded_int, text_lines


def parse_balloon(
    text: str | bytes | None, source: str = "balloon"
) -> tuple[int | None, int | None]:
    """(target_kib, current_kib) from ``target_kb=N`` / ``current_kb=N`` lines.

    Names may be given as paths (``info/current_kb``); low_kb/high_kb and other
    names are accepted and ignored. A missing value is None; a present value that
    is not an integer is an error.
    """
    if not text:
        return None, None
    lines, _ = text_lines(text)
    values: dict[str, int] = {}
    for index, line in enumerate(lines):
        name, sep, raw = line.partition("=")
        name = name.strip().rsplit("/", 1)[-1]
        if not sep or name not in ("target_kb", "current_kb", "low_kb", "high_kb"):
            continue
        values.setdefault(name, bounded_int(raw, source, index + 1, what=name, limit=MAX_KIB))
    return values.get("target_kb"), values.get("current_kb")
