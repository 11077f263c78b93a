"""Small helpers that keep counted words and lists of names readable everywhere."""

from __future__ import annotations

from collections.abc import Iterable


def plural(count: int, word: str, many: str | None = None) -> str:
    """ "1 event", "2 events", "0 events"; `many` for irregular plurals."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def fold_repeats(names: Iterable[str]) -> str:
    """Names joined with repeats folded in first-seen order: "postgres ×4, systemd-journal".

    Top-process lists of a database guest are mostly one name; listing it four
    times hides the one process that differs.
    """
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in counts.items())
