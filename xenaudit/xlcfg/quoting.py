"""Quoted strings: reading them as libxlutil does, and writing them back.

Reading follows ``xlu__cfgl_dequote`` in tools/libs/util/libxlu_cfg.c, which
has surprises that a "usual" C-escape reader would get wrong:

* ``\\x`` escapes are always rejected (the reader skips one character too
  many and then demands more digits than it copies), so no ``\\xNN`` works.
* ``\\0`` .. ``\\7`` start a "numeric" escape that is parsed with
  ``strtoul(.., 10)`` on the *next* three characters and then dropped: the
  escape produces no character at all.  It is only accepted when strtoul
  consumed at least two characters (leading blanks and a sign count).
* Any other character after a backslash, except the ten listed in
  `_SIMPLE_ESCAPES`, is an error ("invalid character after backlash" [sic]).

Everything here works on latin-1 decoded text, so one character is one byte.
"""

from __future__ import annotations

_SIMPLE_ESCAPES: dict[str, str] = {
    '"': '"',
    "'": "'",
    "\\": "\\",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}

# isspace() in the C locale; strtoul skips these before the number.
_C_SPACE = frozenset(" \t\n\v\f\r")

HEX_ESCAPE_ERROR = "invalid digit after backslash hexnumerical character escape in quoted string"
OCTAL_ESCAPE_ERROR = (
    "invalid digit after backslash octalnumerical character escape in quoted string"
)
BAD_ESCAPE_ERROR = "invalid character after backlash in quoted string"


def _strtoul_consumed(text: str) -> int:
    """How many characters C's strtoul(text, &ep, 10) consumes (0 when no digits)."""
    i = 0
    n = len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    if i < n and text[i] in "+-":
        i += 1
    digits_start = i
    while i < n and "0" <= text[i] <= "9":
        i += 1
    return i if i > digits_start else 0


def dequote(token: str) -> tuple[str, str | None]:
    """Decode a STRING token (quotes included) to its value.

    Returns ``(value, error)``; ``error`` is xl's message when libxlutil would
    reject the token, in which case ``value`` is meaningless.
    """
    body = token[1:-1]
    if "\\" not in body:
        return body, None
    out: list[str] = []
    i = 0
    n = len(body)
    # The characters strtoul may look at run up to and including the closing
    # quote, as in the C code (it copies from the token text).
    with_quote = token[1:]
    while i < n:
        c = body[i]
        i += 1
        if c != "\\":
            out.append(c)
            continue
        nc = body[i]  # the lexer guarantees a character after a backslash
        i += 1
        simple = _SIMPLE_ESCAPES.get(nc)
        if simple is not None:
            out.append(simple)
        elif nc == "x":
            return "", HEX_ESCAPE_ERROR
        elif "0" <= nc <= "7":
            consumed = _strtoul_consumed(with_quote[i : i + 3])
            if consumed <= 1:
                return "", OCTAL_ESCAPE_ERROR
            i += consumed
        else:
            return "", BAD_ESCAPE_ERROR
    return "".join(out), None


_WRITE_ESCAPES: dict[str, str] = {
    "\\": "\\\\",
    "\n": "\\n",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def quote(value: str, quote_char: str = '"') -> str:
    """Render `value` as a STRING token that `dequote` reads back unchanged.

    NUL cannot be written: libxlutil aborts on a NUL inside quotes.
    """
    if quote_char not in ("'", '"'):
        raise ValueError(f"quote character must be ' or \", not {quote_char!r}")
    if "\0" in value:
        raise ValueError("xl.cfg strings cannot contain NUL characters")
    parts = [quote_char]
    for c in value:
        if c == quote_char:
            parts.append("\\" + c)
        else:
            parts.append(_WRITE_ESCAPES.get(c, c))
    parts.append(quote_char)
    return "".join(parts)
