"""A reader for the S-expressions xend prints (`xm list -l`, xend's own config files).

xend pretty-prints nested lists (tools/python/xen/xend/PrettyPrint.py): four
spaces per level, long values wrapped onto their own line, atoms quoted with
'...' or "..." when they are empty or hold special characters (backslash
escapes inside quotes, as in xend's sxp.py parser). Layout therefore carries
no meaning here: the text is tokenised, not read line by line (xl's own SXP
printer, a flat tab-indented layout, is read by `xl_parse`).

The text is hostile (domain names, disk paths and descriptions come from
users), so nesting depth and atom count are capped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from xenaudit.hypervisor.parse_error import RawParseError

#: An atom, or a list of S-expressions.
Sxp = str | tuple["Sxp", ...]

MAX_DEPTH = 64
MAX_TOKENS = 5_000_000

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True)
class SxpDocument:
    """The complete top-level expressions, and what was left open at the end."""

    values: tuple[Sxp, ...]
    #: Set when the text ended inside an expression (output cut short): what was open.
    unfinished: str | None = None


def _tokens(text: str, source: str, comments: bool) -> Iterator[tuple[str, str, int]]:
    """(kind, text, line) with kind "(", ")" or "atom"."""
    position, line, length = 0, 1, len(text)
    while position < length:
        char = text[position]
        if char == "\n":
            line += 1
            position += 1
        elif comments and char == "#":
            end = text.find("\n", position)
            position = length if end < 0 else end
        elif char.isspace():
            position += 1
        elif char in "()":
            yield char, char, line
            position += 1
        elif char in "'\"":
            start_line = line
            chunk: list[str] = []
            position += 1
            while True:
                if position >= length:
                    raise RawParseError(source, f"line {start_line}: quoted atom never closed")
                current = text[position]
                if current == char:
                    position += 1
                    break
                if current == "\\" and position + 1 < length:
                    chunk.append(_ESCAPES.get(text[position + 1], text[position + 1]))
                    position += 2
                    continue
                if current == "\n":
                    line += 1
                chunk.append(current)
                position += 1
            yield "atom", "".join(chunk), start_line
        else:
            start = position
            stops = "()'\"#" if comments else "()'\""
            while (
                position < length and not text[position].isspace() and text[position] not in stops
            ):
                position += 1
            yield "atom", text[start:position], line


def read_sxp(text: str, source: str = "sxp", comments: bool = False) -> SxpDocument:
    """Every top-level expression in `text`; raises RawParseError for text that is not SXP.

    An expression still open at the end of the text (a cut-short output) is
    not returned; `unfinished` says where it started. `comments`: `#` starts
    a comment to the end of the line (config files; never in `xm list -l`,
    where `#` may be part of a name).
    """
    values: list[Sxp] = []
    stack: list[tuple[list[Sxp], int]] = []
    for count, (kind, token, line) in enumerate(_tokens(text, source, comments), start=1):
        if count > MAX_TOKENS:
            raise RawParseError(source, f"more than {MAX_TOKENS} tokens; not read")
        if kind == "(":
            if len(stack) >= MAX_DEPTH:
                raise RawParseError(source, f"line {line}: nested deeper than {MAX_DEPTH} levels")
            stack.append(([], line))
        elif kind == ")":
            if not stack:
                raise RawParseError(source, f"line {line}: ')' without a matching '('")
            items, _ = stack.pop()
            finished: Sxp = tuple(items)
            if stack:
                stack[-1][0].append(finished)
            else:
                values.append(finished)
        else:
            if not stack:
                raise RawParseError(source, f"line {line}: text outside any expression")
            stack[-1][0].append(token)
    unfinished = None
    if stack:
        outer, start = stack[0]
        head = outer[0] if outer and isinstance(outer[0], str) else "?"
        unfinished = f"({head} ... starting at line {start} is not closed"
    return SxpDocument(tuple(values), unfinished)


def head(expr: Sxp) -> str | None:
    """The first atom of a list, e.g. "domain" for (domain ...)."""
    if isinstance(expr, tuple) and expr and isinstance(expr[0], str):
        return expr[0]
    return None


def child(expr: Sxp, key: str) -> Sxp | None:
    """The first (key ...) inside `expr`."""
    if not isinstance(expr, tuple):
        return None
    return next((item for item in expr[1:] if head(item) == key), None)


def child_value(expr: Sxp, key: str) -> str | None:
    """The first atom of (key atom ...) inside `expr`; "" for (key) or (key '')."""
    found = child(expr, key)
    if not isinstance(found, tuple):
        return None
    if len(found) < 2:
        return ""
    value = found[1]
    return value if isinstance(value, str) else None
