"""Concrete syntax: statements on top of the token list, nothing thrown away.

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

The tree only points into the token list; joining every token's text gives
the input back byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from xenaudit.xlcfg import lexer
from xenaudit.xlcfg.errors import CfgSyntaxError
from xenaudit.xlcfg.lexer import LineIndex, Token

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


@dataclass(frozen=True, slots=True)
class Atom:
    """A STRING or NUMBER token used as a value."""

    index: int  # position in the token list
    token: Token

    @property
    def quoted(self) -> bool:
        return self.token.kind == lexer.STRING

    @property
    def quote_char(self) -> str | None:
        return self.token.text[0] if self.quoted else None

    @property
    def first(self) -> int:
        return self.index

    @property
    def last(self) -> int:
        return self.index


@dataclass(frozen=True, slots=True)
class ListValue:
    """``[ ... ]``; `first`/`last` are the indices of the brackets."""

    first: int
    last: int
    items: tuple[Atom | ListValue, ...]


Value = Atom | ListValue


@dataclass(frozen=True, slots=True)
class Assignment:
    """``key = value`` or ``key += value`` with its terminator (None at end of file)."""

    key: str
    key_index: int
    op: str  # "=" or "+="
    op_index: int
    value: Value
    end_index: int | None  # the NEWLINE or ';' token that ends it

    @property
    def first(self) -> int:
        return self.key_index

    @property
    def last(self) -> int:
        """Index of the last token of the statement proper (not the terminator)."""
        return self.value.last


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

    def _kind(self, idx: int | None) -> str | None:
        return None if idx is None else self.tokens[idx].kind

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
        key_index = sig[self.pos]
        self.pos += 1
        if kinds[self.pos] not in (lexer.EQUALS, lexer.OP_ADD):
            raise self._fail(self._peek(), ["+=", "'='"])
        op_index = sig[self.pos]
        self.pos += 1
        value = self._value()
        end_kind = kinds[self.pos]
        end: int | None = None
        if end_kind == lexer.NEWLINE or end_kind == lexer.SEMICOLON:
            end = sig[self.pos]
            self.pos += 1
        elif end_kind is not None:
            raise self._fail(self._peek(), ["$end", "NEWLINE", "';'"])
        return Assignment(
            key=self.tokens[key_index].text,
            key_index=key_index,
            op=self.tokens[op_index].text,
            op_index=op_index,
            value=value,
            end_index=end,
        )

    def _value(self) -> Value:
        kinds = self.kinds
        kind = kinds[self.pos]
        if kind == lexer.STRING or kind == lexer.NUMBER:
            idx = self.sig[self.pos]
            self.pos += 1
            return Atom(idx, self.tokens[idx])
        if kind != lexer.LBRACKET:
            raise self._fail(self._peek(), ["STRING", "NUMBER", "'['"])
        idx = self.sig[self.pos]
        self.pos += 1
        self._skip_newlines()
        items: list[Value] = []
        while True:
            kind = kinds[self.pos]
            if kind == lexer.RBRACKET:
                close = self.sig[self.pos]
                self.pos += 1
                return ListValue(idx, close, tuple(items))
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
