"""`XlConfig`: a parsed xl.cfg file that answers the way xl would.

Settings are resolved as ``xlu__cfg_set_store`` does (libxlu_cfg.c):

* a later ``key = v`` simply shadows the earlier ones (the last one wins);
* ``key += v`` appends to the value in force at that point: strings are
  concatenated, lists are joined; mixing the two is a parse error
  ("can't add [list] to "string" or vice versa");
* ``key += v`` with no earlier value acts like ``=``, but the setting is
  still marked as an addition, and ``xlu_cfg_get_long`` refuses additions
  ("can't use += with numbers").  So ``memory = 512`` then ``memory += 256``
  is the *string* "512256" and xl ignores memory altogether.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from xenaudit.xlcfg import lexer
from xenaudit.xlcfg.errors import CfgSyntaxError, CfgValueError
from xenaudit.xlcfg.lexer import LineIndex, Token, tokenize
from xenaudit.xlcfg.numbers import parse_long
from xenaudit.xlcfg.options import READ_AS_NUMBER
from xenaudit.xlcfg.syntax import Assignment, Atom, Value, parse_statements

JsonValue = int | str | list["JsonValue"]
PlainValue = str | list["PlainValue"]
GuestType = Literal["pv", "pvh", "hvm"]


def _expose(s: str) -> str:
    """Internal latin-1 text to the str we hand out (UTF-8, undecodable bytes escaped)."""
    if s.isascii():
        return s
    return s.encode("latin-1").decode("utf-8", "surrogateescape")


def to_internal(s: str) -> str:
    """A caller's str to internal latin-1 text (inverse of `_expose`)."""
    if s.isascii():
        return s
    return s.encode("utf-8", "surrogateescape").decode("latin-1")


@dataclass(frozen=True, slots=True)
class Scalar:
    """An atom as libxlutil stores it: its text, plus whether it was an unquoted NUMBER."""

    text: str  # internal (latin-1) text, already dequoted
    numeric: bool


Resolved = Scalar | tuple["Resolved", ...]


@dataclass(frozen=True, slots=True)
class Setting:
    """The value in force for one key after every assignment was applied."""

    key: str
    value: Resolved
    op: str  # op of the winning assignment: "=" or "+="
    assignment: Assignment  # the winning (last) assignment
    assignments: tuple[Assignment, ...]  # every assignment of this key, in file order


@dataclass(frozen=True, slots=True)
class LongRead:
    """Outcome of reading a key as a number, with xl's reason when it cannot.

    `problem` is None on success, else one of:
    "absent" (ESRCH), "list", "addition", "invalid" (EINVAL) or "range" (ERANGE).
    `message` is xl's warning text (without its "FILE:LINE: " prefix) and
    `line` the line of the setting.
    """

    value: int | None
    problem: Literal["absent", "list", "addition", "invalid", "range"] | None
    message: str | None = None
    line: int | None = None


def _resolve(value: Value) -> Resolved:
    if isinstance(value, Atom):
        return Scalar(value.token.value, value.token.kind == lexer.NUMBER)
    return tuple(_resolve(item) for item in value.items)


def _plain(value: Resolved) -> PlainValue:
    if isinstance(value, Scalar):
        return _expose(value.text)
    return [_plain(v) for v in value]


def _typed(value: Resolved) -> JsonValue:
    if isinstance(value, Scalar):
        if value.numeric:
            number, problem = parse_long(value.text)
            if problem is None and number is not None:
                return number
        return _expose(value.text)
    return [_typed(v) for v in value]


class XlConfig:
    """A parsed file: the exact text, its tokens, its statements and resolved settings."""

    __slots__ = ("_index", "_settings", "filename", "src", "statements", "tokens")

    def __init__(
        self,
        src: str,
        filename: str,
        tokens: list[Token],
        statements: list[Assignment],
    ) -> None:
        self.src = src  # latin-1 text: one char per byte
        self.filename = filename
        self.tokens = tokens
        self.statements = statements
        self._index: LineIndex | None = None
        self._settings = self._resolve_settings()

    # -- construction ------------------------------------------------------

    def _resolve_settings(self) -> dict[str, Setting]:
        settings: dict[str, Setting] = {}
        for a in self.statements:
            new = _resolve(a.value)
            prev = settings.get(a.key)
            if a.op == "+=" and prev is not None:
                if isinstance(prev.value, Scalar) != isinstance(new, Scalar):
                    line, col = self.position(self.tokens[a.value.first].start)
                    raise CfgSyntaxError(
                        self.filename,
                        line,
                        col,
                        'can\'t add [list] to "string" or vice versa',
                        self.tokens[a.value.first].text,
                    )
                if isinstance(new, Scalar):
                    assert isinstance(prev.value, Scalar)
                    new = Scalar(prev.value.text + new.text, False)
                else:
                    assert isinstance(prev.value, tuple)
                    new = prev.value + new
            history = (*prev.assignments, a) if prev is not None else (a,)
            settings[a.key] = Setting(a.key, new, a.op, a, history)
        return settings

    # -- text --------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The file exactly as read (or as edited)."""
        return self.src.encode("latin-1")

    @property
    def text(self) -> str:
        """The file as str: UTF-8 with undecodable bytes kept as surrogate escapes."""
        return _expose(self.src)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a byte offset."""
        if self._index is None:
            self._index = LineIndex(self.src)
        return self._index.position(offset)

    def token_position(self, index: int) -> tuple[int, int]:
        return self.position(self.tokens[index].start)

    def token_at(self, offset: int) -> Token:
        """The token covering byte `offset`."""
        starts = [t.start for t in self.tokens]
        return self.tokens[bisect.bisect_right(starts, offset) - 1]

    # -- settings ----------------------------------------------------------

    def keys(self) -> list[str]:
        """Every key set in the file, in order of first appearance."""
        return list(self._settings)

    def __contains__(self, key: object) -> bool:
        return key in self._settings

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def setting(self, key: str) -> Setting | None:
        return self._settings.get(key)

    def assignments(self, key: str) -> list[Assignment]:
        """Every statement assigning `key`, in file order."""
        s = self._settings.get(key)
        return list(s.assignments) if s is not None else []

    def settings(self) -> dict[str, JsonValue]:
        """Every key with the value xl would use, typed for JSON.

        An unquoted NUMBER that strtol reads completely becomes an int
        (``0x200`` -> 512); quoted strings stay strings even when they hold
        digits; a value built with ``+=`` is a string or list, never a
        number (xl refuses ``+=`` numbers).  Lists keep their nesting.
        """
        out: dict[str, JsonValue] = {}
        for key, s in self._settings.items():
            if s.op == "+=" and isinstance(s.value, Scalar):
                out[key] = _expose(s.value.text)
            else:
                out[key] = _typed(s.value)
        return out

    def settings_as_xl_reads(self) -> dict[str, JsonValue]:
        """`settings`, with keys xl reads as numbers given as the number it reads.

        ``memory = "1024"`` is 1024 to xl (strtol on the text), so `cfg show`
        says 1024; a value xl cannot read as a number is left as written.
        """
        out = self.settings()
        for key in out:
            if key in READ_AS_NUMBER:
                value = self.get_long(key)
                if value is not None:
                    out[key] = value
        return out

    def read_long(self, key: str) -> LongRead:
        """`xlu_cfg_get_long`, reporting why a value cannot be used."""
        s = self._settings.get(key)
        if s is None:
            return LongRead(None, "absent")
        line, _ = self.token_position(s.assignment.value.first)
        if not isinstance(s.value, Scalar):
            return LongRead(
                None, "list", f"parameter `{key}' is a list but should be a single value", line
            )
        if s.op == "+=":
            return LongRead(
                None, "addition", f"can't use += with numbers for parameter `{key}'", line
            )
        value, problem = parse_long(s.value.text)
        if problem == "range":
            return LongRead(
                None,
                "range",
                f"parameter `{key}' could not be parsed as a number: Numerical result out of range",
                line,
            )
        if problem == "invalid":
            return LongRead(None, "invalid", f"parameter `{key}' is not a valid number", line)
        return LongRead(value, None, None, line)

    def get_long(self, key: str) -> int | None:
        """The number xl reads for `key`, or None when absent or unusable.

        Mirrors ``xlu_cfg_get_long``: strtol(.., 0) on the stored text, so
        quoted digits count, ``0x``/leading-0 pick hex/octal, trailing junk,
        lists and ``+=`` settings are refused.  xl then behaves as if the key
        were not set; use `read_long` to learn why.
        """
        return self.read_long(key).value

    def get_string(self, key: str) -> str | None:
        """``xlu_cfg_get_string``: the text of a single value (numbers keep their spelling)."""
        s = self._settings.get(key)
        if s is None or not isinstance(s.value, Scalar):
            return None
        return _expose(s.value.text)

    def get_list(self, key: str) -> list[PlainValue] | None:
        """``xlu_cfg_get_list``: the items of a list value, or None when absent or not a list.

        Atoms come back as their text; nested lists as Python lists (where
        xlu_cfg_get_listitem would return NULL).
        """
        s = self._settings.get(key)
        if s is None or isinstance(s.value, Scalar):
            return None
        return [_plain(v) for v in s.value]

    # -- what xl derives ---------------------------------------------------

    @property
    def name(self) -> str | None:
        return self.get_string("name")

    @property
    def memory_mib(self) -> int | None:
        """``memory=`` in MiB as xl reads it; None when absent or unusable.

        When None, xl leaves the size to libxl's default.
        """
        return self.get_long("memory")

    @property
    def maxmem_mib(self) -> int | None:
        """Effective ``maxmem=`` in MiB.

        xl (xl_parse.c) sets max_memkb from ``maxmem`` and, when that is not
        given (or cannot be read as a number), falls back to the ``memory``
        value: a guest without maxmem cannot balloon above its initial size.
        ``vnuma=`` node sizes can also set it; that is not modelled here.
        """
        value = self.get_long("maxmem")
        return value if value is not None else self.memory_mib

    @property
    def guest_type(self) -> GuestType:
        """ "pv", "pvh" or "hvm", decided as xl_parse.c does on x86.

        ``type=`` is compared with strncmp over the length of the given text,
        so any prefix works (``"h"`` is hvm, and so is ``""``); the deprecated
        ``builder=`` accepts prefixes of "hvm" and "generic" (pv).  Without
        either the default is pv (x86; Arm would default to pvh).  Raises
        CfgValueError where xl refuses to start the guest.
        """
        chosen: GuestType | None = None
        t = self.get_string("type")
        if t is not None:
            if "hvm".startswith(t):
                chosen = "hvm"
            elif "pv".startswith(t):
                chosen = "pv"
            elif "pvh".startswith(t):
                chosen = "pvh"
            else:
                raise CfgValueError(f"Invalid domain type {t}.")
        b = self.get_string("builder")
        if b is not None:
            builder: GuestType
            if "hvm".startswith(b):
                builder = "hvm"
            elif "generic".startswith(b):
                builder = "pv"
            else:
                raise CfgValueError(f"Invalid domain type {b}.")
            if chosen is not None and chosen != builder:
                raise CfgValueError('Contradicting "builder" and "type" options specified.')
            chosen = builder
        return chosen if chosen is not None else "pv"

    def __repr__(self) -> str:
        return f"<XlConfig {self.filename!r}: {len(self._settings)} keys>"


def parse(text: str | bytes, filename: str = "<string>") -> XlConfig:
    """Parse an xl.cfg file exactly as libxlutil would.

    `text` may be bytes (used as is) or str (encoded as UTF-8, surrogate
    escapes allowed).  Raises CfgSyntaxError for anything xl would refuse.
    """
    if isinstance(text, str):
        try:
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as e:
            raise CfgSyntaxError(filename, 1, 1, f"text cannot be written as bytes: {e}") from e
    else:
        data = bytes(text)
    src = data.decode("latin-1")
    tokens = tokenize(src, filename)
    statements = parse_statements(src, tokens, filename)
    return XlConfig(src, filename, tokens, statements)
