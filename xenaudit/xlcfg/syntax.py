"""Concrete syntax: statements with the byte offsets of their parts, nothing thrown away.

The grammar is the one in libxlu_cfg_y.y::

    file       : stmts | stmts assignment        (last statement may lack "\\n")
    stmt       : assignment endstmt | endstmt
    assignment : IDENT '=' value | IDENT '+=' value
    endstmt    : NEWLINE | ';'
    value      : atom | '[' nlok valuelist ']'
    atom       : STRING | NUMBER
    valuelist  : <empty> | values | values ',' nlok
    values     : value nlok | values ',' nlok value nlok
    nlok       : <empty> | nlok NEWLINE

so lists nest, may span lines (comments included) and may end with a comma,
but a value cannot start on the line after ``=``.

Two readers build the same statements. `scan_statements` matches one whole
statement (with the blank and comment lines before it) per regular-expression
match; it covers what real files hold (atoms and lists of atoms) and gives up,
returning None, on anything else: nested lists, backslash escapes inside
lists, NUL bytes, stray bytes, and every error. `parse_statements` then runs
the token-by-token parser over the lexer's tokens, which handles the whole
language and words its errors as xl does. Tests check that the two agree.
"""

from __future__ import annotations

import re

from xenaudit.xlcfg import lexer
from xenaudit.xlcfg.errors import CfgSyntaxError
from xenaudit.xlcfg.lexer import LineIndex, Token
from xenaudit.xlcfg.quoting import dequote

TYPE_CHECKING = False  # typing is not imported at run time: `cfg show` starts faster
if TYPE_CHECKING:
    from typing import Final

_DESCRIBE: Final[dict[str, str]] = {
    lexer.IDENT: "IDENT",
    lexer.NUMBER: "NUMBER",
    lexer.STRING: "STRING",
    lexer.NEWLINE: "NEWLINE",
    lexer.OP_ADD: "+=",
    lexer.EQUALS: "'='",
    lexer.COMMA: "','",
    lexer.LBRACKET: "'['",
    lexer.RBRACKET: "']'",
    lexer.SEMICOLON: "';'",
}


class Atom:
    """A STRING or NUMBER token used as a value.

    `text` is the token as written, `value` what libxlutil stores (the
    dequoted string, or the NUMBER's text).
    """

    __slots__ = ("start", "text", "value")

    def __init__(self, start: int, text: str, value: str) -> None:
        self.start = start
        self.text = text
        self.value = value

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def quoted(self) -> bool:
        return self.text[0] in "'\""

    @property
    def numeric(self) -> bool:
        """An unquoted NUMBER token (it starts with a digit)."""
        return self.text[0] not in "'\""

    @property
    def quote_char(self) -> str | None:
        return self.text[0] if self.text[0] in "'\"" else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Atom):
            return NotImplemented
        return (self.start, self.text, self.value) == (other.start, other.text, other.value)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Atom({self.start}, {self.text!r})"


class ListValue:
    """``[ ... ]``: `start` is the offset of ``[``, `end` the offset just after ``]``."""

    __slots__ = ("end", "items", "start")

    def __init__(self, start: int, end: int, items: tuple[Atom | ListValue, ...]) -> None:
        self.start = start
        self.end = end
        self.items = items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ListValue):
            return NotImplemented
        return (self.start, self.end, self.items) == (other.start, other.end, other.items)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ListValue({self.start}, {self.end}, {self.items!r})"


Value = Atom | ListValue


class Assignment:
    """``key = value`` or ``key += value``, with where each part starts.

    `terminator` is the text of the NEWLINE (a bare newline, or a comment with
    its newline) or ``;`` that ends the statement, starting at
    `terminator_start`; it is "" for a last statement without either.
    """

    __slots__ = ("key", "key_start", "op", "op_start", "terminator", "terminator_start", "value")

    def __init__(
        self,
        key: str,
        key_start: int,
        op: str,
        op_start: int,
        value: Value,
        terminator: str,
        terminator_start: int,
    ) -> None:
        self.key = key
        self.key_start = key_start
        self.op = op  # "=" or "+="
        self.op_start = op_start
        self.value = value
        self.terminator = terminator
        self.terminator_start = terminator_start

    @property
    def key_end(self) -> int:
        return self.key_start + len(self.key)

    @property
    def op_end(self) -> int:
        return self.op_start + len(self.op)

    @property
    def terminator_end(self) -> int:
        return self.terminator_start + len(self.terminator)

    @property
    def ends_line(self) -> bool:
        """Ended by a NEWLINE token (not by ``;`` nor by the end of the file)."""
        return self.terminator.endswith("\n")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Assignment):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Assignment({self.key!r} {self.op} {self.value!r} at {self.key_start})"


# -- one match per statement -------------------------------------------------

# The lexer's NUMBER and STRING, the strings written as "unrolled loops" (runs of
# plain characters between escapes), which the regex engine matches fastest.
_ATOM = (
    r"[0-9][0-9a-fx]*+"
    r"|'[^'\\\n]*+(?:\\[^\n][^'\\\n]*+)*+'"
    r'|"[^"\\\n]*+(?:\\[^\n][^"\\\n]*+)*+"'
)
_NLOK = r"(?:[ \t\n]++|\#[^\n]*+\n)*+"  # blanks, newlines and comments
_FLAT_LIST = rf"\[{_NLOK}(?:(?:{_ATOM}){_NLOK}(?:,{_NLOK}(?:{_ATOM}){_NLOK})*+(?:,{_NLOK})?+)?+\]"
# Blanks, newlines, comments and empty statements, then one assignment and what
# ends it. Groups: key, operator, value.
_TRIVIA = r"(?:\#[^\n]*+\n|[ \t;\n]++)*+"
_STATEMENT = re.compile(
    rf"{_TRIVIA}"
    r"([a-z][._0-9a-z]*+)[ \t]*+(\+?=)[ \t]*+"
    rf"({_ATOM}|{_FLAT_LIST})"
    r"[ \t]*+(?:[;\n]|\#[^\n]*+\n|\Z)"
)
# What may follow the last statement.
_TAIL = re.compile(rf"{_TRIVIA}\Z")
_LIST_ATOM = re.compile(rf"\#[^\n]*+\n|({_ATOM})")

#: key, operator and the value's text as written, one per statement
RawStatement = tuple[str, str, str]


def scan_statements(src: str) -> tuple[list[RawStatement], list[re.Match[str]]] | None:
    """Every statement of a file in the common subset of the language, or None.

    Returns each statement's key, operator and value text, and its match (for
    `statement_from_match`). None means "use `parse_statements`": the file is
    outside the subset or has an error. `+=` between a list and a string is
    not checked here.
    """
    if "\0" in src:
        return None
    matches: list[re.Match[str]] = []
    pos = 0
    match = _STATEMENT.match
    while (m := match(src, pos)) is not None:
        matches.append(m)
        pos = m.end()
    if _TAIL.match(src, pos) is None:
        return None
    raw: list[RawStatement] = [m.groups() for m in matches]  # type: ignore[misc]
    if "\\" in src:
        for _key, _op, text in raw:
            if "\\" in text and (text[0] == "[" or dequote(text)[1] is not None):
                return None
    return raw, matches


def atom_value(text: str) -> str:
    """What libxlutil stores for a STRING or NUMBER token that the lexer accepted."""
    if text[0] not in "'\"":
        return text
    if "\\" not in text:
        return text[1:-1]
    return dequote(text)[0]


def _atom(start: int, text: str) -> Atom:
    return Atom(start, text, atom_value(text))


def statement_from_match(src: str, m: re.Match[str]) -> Assignment:
    """The `Assignment` of one `scan_statements` match."""
    key, op, text = m.groups()
    value_start, value_end = m.span(3)
    value: Value
    if text[0] == "[":
        items = tuple(
            _atom(a.start(1), a.group(1))
            for a in _LIST_ATOM.finditer(src, value_start + 1, value_end - 1)
            if a.group(1) is not None
        )
        value = ListValue(value_start, value_end, items)
    else:
        value = _atom(value_start, text)
    end = m.end()
    terminator = src[value_end:end].lstrip(" \t")
    return Assignment(key, m.start(1), op, m.start(2), value, terminator, end - len(terminator))


# -- token by token ----------------------------------------------------------


class _Parser:
    """Recursive descent over the significant tokens (blanks and junk skipped)."""

    def __init__(self, src: str, tokens: list[Token], filename: str) -> None:
        self.src = src
        self.tokens = tokens
        self.filename = filename
        trivia = lexer.TRIVIA
        self.sig = [i for i, t in enumerate(tokens) if t.kind not in trivia]
        # kinds of the significant tokens, with a None sentinel for end of input
        self.kinds: list[str | None] = [tokens[i].kind for i in self.sig]
        self.kinds.append(None)
        self.pos = 0

    def _peek(self) -> int | None:
        return self.sig[self.pos] if self.pos < len(self.sig) else None

    def _fail(self, idx: int | None, expecting: list[str]) -> CfgSyntaxError:
        if idx is None:
            offset = len(self.src)
            unexpected = "$end"
            near = ""
        else:
            tok = self.tokens[idx]
            offset = tok.start
            unexpected = _DESCRIBE.get(tok.kind, tok.kind)
            near = tok.text.rstrip("\n").rstrip(" \t") or "<newline>"
        line, col = LineIndex(self.src).position(offset)
        message = f"syntax error, unexpected {unexpected}, expecting {' or '.join(expecting)}"
        return CfgSyntaxError(self.filename, line, col, message, near)

    def _skip_newlines(self) -> None:
        kinds = self.kinds
        while kinds[self.pos] == lexer.NEWLINE:
            self.pos += 1

    def parse_file(self) -> list[Assignment]:
        out: list[Assignment] = []
        kinds = self.kinds
        while True:
            kind = kinds[self.pos]
            if kind is None:
                return out
            if kind == lexer.NEWLINE or kind == lexer.SEMICOLON:
                self.pos += 1
                continue
            if kind != lexer.IDENT:
                raise self._fail(self._peek(), ["$end", "IDENT", "NEWLINE", "';'"])
            out.append(self._assignment())

    def _assignment(self) -> Assignment:
        sig = self.sig
        kinds = self.kinds
        key = self.tokens[sig[self.pos]]
        self.pos += 1
        if kinds[self.pos] not in (lexer.EQUALS, lexer.OP_ADD):
            raise self._fail(self._peek(), ["+=", "'='"])
        op = self.tokens[sig[self.pos]]
        self.pos += 1
        value = self._value()
        end_kind = kinds[self.pos]
        terminator, terminator_start = "", len(self.src)
        if end_kind == lexer.NEWLINE or end_kind == lexer.SEMICOLON:
            end = self.tokens[sig[self.pos]]
            terminator, terminator_start = end.text, end.start
            self.pos += 1
        elif end_kind is not None:
            raise self._fail(self._peek(), ["$end", "NEWLINE", "';'"])
        return Assignment(
            key.text, key.start, op.text, op.start, value, terminator, terminator_start
        )

    def _value(self) -> Value:
        kinds = self.kinds
        kind = kinds[self.pos]
        if kind == lexer.STRING or kind == lexer.NUMBER:
            tok = self.tokens[self.sig[self.pos]]
            self.pos += 1
            return Atom(tok.start, tok.text, tok.value)
        if kind != lexer.LBRACKET:
            raise self._fail(self._peek(), ["STRING", "NUMBER", "'['"])
        start = self.tokens[self.sig[self.pos]].start
        self.pos += 1
        self._skip_newlines()
        items: list[Value] = []
        while True:
            kind = kinds[self.pos]
            if kind == lexer.RBRACKET:
                close = self.tokens[self.sig[self.pos]]
                self.pos += 1
                return ListValue(start, close.end, tuple(items))
            if items:
                # after "values": either ']' or ',' then (nlok) ']' or a value
                if kind != lexer.COMMA:
                    raise self._fail(self._peek(), ["','", "']'"])
                self.pos += 1
                self._skip_newlines()
                if kinds[self.pos] == lexer.RBRACKET:
                    continue
            elif kind not in (lexer.STRING, lexer.NUMBER, lexer.LBRACKET):
                raise self._fail(self._peek(), ["STRING", "NUMBER", "'['", "']'"])
            items.append(self._value())
            self._skip_newlines()


def parse_statements(src: str, tokens: list[Token], filename: str) -> list[Assignment]:
    """Build the statement list; raises CfgSyntaxError like libxlutil's parser."""
    return _Parser(src, tokens, filename).parse_file()
