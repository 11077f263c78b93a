"""Numbers as xl reads them: C ``strtol(s, &ep, 0)`` plus the checks of
``xlu_cfg_get_bounded_long`` (tools/libs/util/libxlu_cfg.c).

libxlutil stores every atom as text; a NUMBER token and a quoted string are
read the same way, so ``memory = "512"``, ``memory = 512`` and
``memory = 0x200`` all give 512.  Leading blanks and a sign are accepted in
quoted strings; trailing characters (even one blank) are not.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: `cfg show` starts faster
if TYPE_CHECKING:
    from typing import Literal

    NumberStyle = Literal["dec", "hex", "oct"]
    LongProblem = Literal["range", "invalid"]

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1

_C_SPACE = frozenset(" \t\n\v\f\r")
_HEX = frozenset("0123456789abcdefABCDEF")
_DEC = frozenset("0123456789")
_OCT = frozenset("01234567")


class StrtolResult:
    """What strtol made of a text: value, where it stopped, and overflow."""

    __slots__ = ("end", "overflow", "style", "value")

    def __init__(self, value: int, end: int, overflow: bool, style: NumberStyle) -> None:
        self.value = value
        self.end = end  # index of the first character not consumed (0: nothing parsed)
        self.overflow = overflow
        self.style = style

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StrtolResult):
            return NotImplemented
        return (self.value, self.end, self.overflow, self.style) == (
            other.value,
            other.end,
            other.overflow,
            other.style,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StrtolResult({self.value}, {self.end}, {self.overflow}, {self.style!r})"


def strtol(text: str) -> StrtolResult:
    """C strtol with base 0 on a 64-bit (LP64) host, as glibc implements it."""
    n = len(text)
    i = 0
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    style: NumberStyle = "dec"
    base = 10
    digits = _DEC
    if i < n and text[i] == "0":
        if i + 2 < n and text[i + 1] in "xX" and text[i + 2] in _HEX:
            style, base, digits = "hex", 16, _HEX
            i += 2
        else:
            style, base, digits = "oct", 8, _OCT
    start = i
    while i < n and text[i] in digits:
        i += 1
    if i == start:
        # "0x" with no hex digit after it: glibc parses the "0" and stops.
        return StrtolResult(0, 0, False, "dec")
    digits_text = text[start:i].lstrip("0")
    # More than 22 digits overflow in any base; int() would even refuse a long
    # decimal text (Python's limit on the digits of an int read from a str).
    magnitude = LONG_MAX + 2 if len(digits_text) > 22 else int(digits_text or "0", base)
    value = -magnitude if negative else magnitude
    if value > LONG_MAX:
        return StrtolResult(LONG_MAX, i, True, style)
    if value < LONG_MIN:
        return StrtolResult(LONG_MIN, i, True, style)
    return StrtolResult(value, i, False, style)


def parse_long(text: str) -> tuple[int | None, LongProblem | None]:
    """Read a whole atom as xlu_cfg_get_long does: ``(value, None)`` or ``(None, why)``.

    Overflow is checked before trailing junk, as in the C code (errno first).
    """
    if text.isascii() and text.isdigit() and (text[0] != "0" or text == "0"):
        # plain decimal, the usual case
        if len(text) > 19 or int(text) > LONG_MAX:
            return None, "range"
        return int(text), None
    r = strtol(text)
    if r.overflow:
        return None, "range"
    if r.end == 0 or r.end != len(text):
        return None, "invalid"
    return r.value, None


def number_style(text: str) -> NumberStyle:
    """How a number is written: "0x.." hex, "0.." octal, else decimal."""
    t = text.strip(" \t\n\v\f\r").lstrip("+-")
    if len(t) > 2 and t[0] == "0" and t[1] in "xX":
        return "hex"
    if len(t) > 1 and t[0] == "0":
        return "oct"
    return "dec"


def format_number(value: int, style: NumberStyle = "dec", like: str | None = None) -> str:
    """Write a non-negative `value` in `style`, copying zero padding from `like`.

    Hex digits are lower case: the xl.cfg lexer's NUMBER token is
    ``[0-9][0-9a-fx]*``, so ``0x1F`` would not even lex.
    """
    if value < 0:
        raise ValueError("negative numbers cannot be written as a NUMBER token")
    if style == "hex":
        digits = format(value, "x")
        prefix = "0x"
        if like is not None:
            old = like.strip(" \t\n\v\f\r").lstrip("+-")[2:]
            digits = digits.rjust(len(old), "0")
        return prefix + digits
    if style == "oct":
        if value == 0:
            return "0"
        digits = format(value, "o")
        if like is not None:
            old = like.strip(" \t\n\v\f\r").lstrip("+-")[1:]
            digits = digits.rjust(len(old), "0")
        return "0" + digits
    return str(value)
