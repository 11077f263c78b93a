"""Tokens of the xl.cfg language, cut exactly where libxlutil's flex scanner cuts.

The rules mirror tools/libxl/libxlu_cfg_l.l (moved to tools/libs/util/ in
Xen 4.15), in flex's "longest match, then first rule" order:

=============================  ==========================================
``[a-z][._0-9a-z]*``           IDENT (lower case only: ``Memory`` is an error)
``[0-9][0-9a-fx]*``            NUMBER (so ``0x1F`` or ``1.5`` do not lex)
``[ \\t]``                     blank (``\\r`` is *not* blank: CRLF files fail)
``, [ ] += = ;``               punctuation
``\\n`` or ``#.*\\n``          NEWLINE (a comment needs its newline)
``'..'`` ``".."``              STRING, no raw newline inside, ``\\.`` escapes
anything else                  lexical error
=============================  ==========================================

One quirk is kept on purpose: after an unexpected character flex switches to
an error state and only reports it once it sees the next character.  When the
unexpected character is the very last byte of the input nothing is reported,
so ``memory = 512 %`` (no newline) or a final lone ``#`` are accepted.  We
keep that character as an ignored ``junk`` token.

We work on latin-1 decoded text so that one character is one byte and the
round trip to bytes is exact.
"""

from __future__ import annotations

import bisect
import re

from xenaudit.xlcfg.errors import CfgSyntaxError
from xenaudit.xlcfg.quoting import dequote

TYPE_CHECKING = False  # typing is not imported at run time: `cfg show` starts faster
if TYPE_CHECKING:
    from typing import Final

WS: Final = "ws"
IDENT: Final = "ident"
NUMBER: Final = "number"
STRING: Final = "string"
NEWLINE: Final = "newline"
JUNK: Final = "junk"  # a stray last byte that libxlutil never reports
OP_ADD: Final = "+="
EQUALS: Final = "="
COMMA: Final = ","
LBRACKET: Final = "["
RBRACKET: Final = "]"
SEMICOLON: Final = ";"

TRIVIA: Final = frozenset({WS, JUNK})

# Compiled on first use (re keeps it): most files never need the token list.
_TOKEN_PATTERN = r"""
    (?P<ws>[ \t]+)
  | (?P<ident>[a-z][._0-9a-z]*)
  | (?P<number>[0-9][0-9a-fx]*)
  | (?P<newline>\n|\#[^\n]*\n)
  | (?P<string>'(?:[^'\\\n]|\\[^\n])*'|"(?:[^"\\\n]|\\[^\n])*")
  | (?P<op>\+=|[=,\[\];])
  | (?P<junk>[\s\S])
    """

# Characters after which libxlutil adds its "looks like Python" warning.
_PYTHONISH: Final = frozenset("+-.():")
_BLANK_OR_NL: Final = r"[ \t\n]"


class Token:
    """One token: its kind, its exact text and where it starts (byte offset).

    For STRING tokens `value` holds the decoded value; for other kinds it is
    the text itself.
    """

    __slots__ = ("kind", "start", "text", "value")

    def __init__(self, kind: str, text: str, start: int, value: str) -> None:
        self.kind = kind
        self.text = text
        self.start = start
        self.value = value

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.text!r}, {self.start})"


class LineIndex:
    """Maps byte offsets to 1-based (line, column)."""

    __slots__ = ("_starts",)

    def __init__(self, src: str) -> None:
        starts = [0]
        find = src.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        self._starts = starts

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1

    def line_start(self, line: int) -> int:
        return self._starts[line - 1]


def _error(src: str, filename: str, offset: int, message: str, near: str | None) -> CfgSyntaxError:
    line, col = LineIndex(src).position(offset)
    return CfgSyntaxError(filename, line, col, message, near)


def tokenize(src: str, filename: str = "<string>") -> list[Token]:
    """Split latin-1 text into tokens covering every character.

    Raises CfgSyntaxError where libxlutil reports a lexical error, rejects a
    quoted string (bad escape), or would abort (NUL inside quotes: the C code
    asserts on it and kills xl).
    """
    tokens: list[Token] = []
    append = tokens.append
    likely_python = False
    last = len(src) - 1
    for m in re.finditer(_TOKEN_PATTERN, src, re.VERBOSE):
        kind = m.lastgroup
        text = m.group()
        start = m.start()
        if kind == "string":
            if "\0" in text:
                raise _error(
                    src,
                    filename,
                    start,
                    "NUL character inside a quoted string (libxlutil aborts on it)",
                    text.split("\0", 1)[0],
                )
            value, problem = dequote(text)
            if problem is not None:
                raise _error(src, filename, start, problem, text)
            append(Token(STRING, text, start, value))
        elif kind == "op":
            append(Token(text, text, start, text))
        elif kind == "junk":
            if text in _PYTHONISH:
                likely_python = True
            if start != last:
                follow = re.compile(_BLANK_OR_NL).search(src, start + 1)
                near = src[start : follow.start() if follow else len(src)]
                message = "lexical error"
                if likely_python:
                    message += (
                        " (the file looks like it contains Python code, which xl"
                        " no longer supports)"
                    )
                raise _error(src, filename, start, message, near)
            append(Token(JUNK, text, start, text))
        else:
            append(Token(kind, text, start, text))  # type: ignore[arg-type]
    return tokens
