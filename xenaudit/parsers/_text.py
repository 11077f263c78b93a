"""Small helpers shared by the /proc parsers."""

from __future__ import annotations


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
