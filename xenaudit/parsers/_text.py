"""Small helpers shared by the /proc parsers."""

from __future__ import annotations

from xenaudit.parsers.interface import ParseError


def text_lines(text: str | bytes) -> tuple[list[str], bool]:
    """Lines of a section and whether its last line had a terminator.

    Sections come from remote commands and may be cut anywhere; a last line
    without a newline may be partial, which callers treat with suspicion.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    if "\x00" in text:
        text = text.replace("\x00", "")
    ended = text.endswith("\n")
    lines = text.split("\n")
    if ended:
        lines.pop()
    return [line.rstrip("\r") for line in lines], ended or not text


#: Largest counter any consumer takes (SQLite and JSON readers use signed 64 bits);
#: the kernel's own counters are unsigned long and never get near it in practice.
MAX_COUNTER = 2**63 - 1
#: Largest size in KiB a 64-bit kernel can report: 2^64 bytes.
MAX_KIB = 2**54
#: More digits than any 64-bit number has (int() of a huge digit string is also slow).
_MAX_DIGITS = 20


def bounded_int(
    text: str,
    source: str,
    line: int | None = None,
    *,
    limit: int = MAX_COUNTER,
    what: str = "value",
    signed: bool = False,
) -> int:
    """An integer a 64-bit kernel could have printed, or ParseError naming the line.

    A guest is hostile: a number beyond 2^63 would otherwise travel to the
    history store and stop the whole run, and a negative size has no meaning.
    """
    raw = text.strip()
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not digits.isdigit() or not digits.isascii():
        raise ParseError(source, f"{what} is not an integer: {raw[:40]!r}", line)
    if raw.startswith("-") and not signed:
        raise ParseError(source, f"{what} {raw[:40]} is negative", line)
    if len(digits.lstrip("0")) > _MAX_DIGITS:
        raise ParseError(source, f"{what} {raw[:24]}... is implausibly large", line)
    value = int(raw)
    if abs(value) > limit:
        raise ParseError(
            source, f"{what} {value} is beyond what a 64-bit kernel reports (limit {limit})", line
        )
    return value


def bounded_percent(text: str, source: str, line: int | None = None, what: str = "value") -> float:
    """A percentage (PSI averages) between 0 and 100, or ParseError."""
    raw = text.strip()
    if len(raw) > 12:
        raise ParseError(source, f"{what} {raw[:24]} is not a percentage", line)
    value = float(raw)
    if not 0.0 <= value <= 100.0:
        raise ParseError(source, f"{what} {raw} is not a percentage between 0 and 100", line)
    return value
