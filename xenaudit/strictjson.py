"""JSON as read from a folder someone else could have written.

Python's json module accepts two things no JSON writer of ours produces and a
forger could use: a key given twice (the last one silently wins, so a reviewer and
xenaudit can read different values) and the constants NaN and Infinity (which no
size or count may be). Every reader of report or snapshot JSON refuses both.
"""

from __future__ import annotations

import json
from typing import Any


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(text: str) -> Any:
    """The document in `text`; ValueError for bad JSON, a repeated key or NaN/Infinity,
    RecursionError for nesting too deep to decode."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
