"""The one error every pure parser of this stage raises, and how they quote and count.

Everything these parsers read is hostile text, so a bad line is quoted
escaped and shortened, and a number must be plain ASCII digits.
"""

from __future__ import annotations


class RawParseError(Exception):
    """Recorded output that does not parse. `source` names the command or file; the
    message says where in it and what was expected."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


def snippet(text: str, limit: int = 80) -> str:
    """A hostile line, escaped and shortened, fit to quote in an error."""
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def is_count(text: str) -> bool:
    """Plain ASCII digits (str.isdigit also takes '²', which int() refuses)."""
    return text.isascii() and text.isdigit()
