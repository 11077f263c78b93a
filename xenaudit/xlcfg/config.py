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

from xenaudit.xlcfg.errors import CfgSyntaxError, CfgValueError
from xenaudit.xlcfg.lexer import LineIndex, Token, tokenize
from xenaudit.xlcfg.numbers import parse_long
from xenaudit.xlcfg.options import READ_AS_NUMBER
from xenaudit.xlcfg.syntax import (
    Assignment,
    Atom,
    RawStatement,
    Value,
    atom_value,
    parse_statements,
    scan_statements,
    statement_from_match,
)

TYPE_CHECKING = False  # typing is not imported at run time: `cfg show` starts faster
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Iterator
    from typing import Literal

    GuestType = Literal["pv", "pvh", "hvm"]
    LongProblem = Literal["absent", "list", "addition", "invalid", "range"]

JsonValue = int | str | list["JsonValue"]
PlainValue = str | list["PlainValue"]


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


class Scalar:
    """An atom as libxlutil stores it: its text, plus whether it was an unquoted NUMBER."""

    __slots__ = ("numeric", "text")

    def __init__(self, text: str, numeric: bool) -> None:
        self.text = text  # internal (latin-1) text, already dequoted
        self.numeric = numeric

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scalar):
            return NotImplemented
        return self.text == other.text and self.numeric == other.numeric

    def __hash__(self) -> int:
        return hash((self.text, self.numeric))

    def __repr__(self) -> str:
        return f"Scalar({self.text!r}, {self.numeric})"


Resolved = Scalar | tuple["Resolved", ...]


class Setting:
    """The value in force for one key after every assignment was applied.

    `assignment` is the winning (last) assignment and `assignments` every
    assignment of the key in file order; both are built when first asked for.
    """

    __slots__ = ("_assignments", "_build", "_indices", "key", "op", "value")

    def __init__(
        self,
        key: str,
        value: Resolved,
        op: str,
        indices: list[int],
        build: Callable[[int], Assignment],
    ) -> None:
        self.key = key
        self.value = value
        self.op = op  # op of the winning assignment: "=" or "+="
        self._indices = indices  # of the key's statements
        self._build = build  # statement number -> Assignment (no reference to the XlConfig)
        self._assignments: tuple[Assignment, ...] | None = None

    @property
    def assignments(self) -> tuple[Assignment, ...]:
        if self._assignments is None:
            self._assignments = tuple(map(self._build, self._indices))
        return self._assignments

    @property
    def assignment(self) -> Assignment:
        return self.assignments[-1]

    def __repr__(self) -> str:
        return f"Setting({self.key!r}, {self.value!r}, {self.op!r})"


class LongRead:
    """Outcome of reading a key as a number, with xl's reason when it cannot.

    `problem` is None on success, else one of:
    "absent" (ESRCH), "list", "addition", "invalid" (EINVAL) or "range" (ERANGE).
    `message` is xl's warning text (without its "FILE:LINE: " prefix) and
    `line` the line of the setting.
    """

    __slots__ = ("line", "message", "problem", "value")

    def __init__(
        self,
        value: int | None,
        problem: LongProblem | None,
        message: str | None = None,
        line: int | None = None,
    ) -> None:
        self.value = value
        self.problem = problem
        self.message = message
        self.line = line

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LongRead):
            return NotImplemented
        return (self.value, self.problem, self.message, self.line) == (
            other.value,
            other.problem,
            other.message,
            other.line,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LongRead({self.value!r}, {self.problem!r}, {self.message!r}, {self.line!r})"


def _resolve(value: Value) -> Resolved:
    if isinstance(value, Atom):
        return Scalar(value.value, value.numeric)
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
    """A parsed file: the exact text, its statements and the settings they make.

    Parsing keeps only what every use needs (each statement's key, operator
    and value text); the statements with their offsets, the tokens and the
    resolved settings are built when first asked for.
    """

    __slots__ = (
        "_keys",
        "_matches",
        "_raw",
        "_settings",
        "_starts",
        "_statements",
        "_tokens",
        "filename",
        "src",
    )

    def __init__(
        self,
        src: str,
        filename: str,
        raw: list[RawStatement],
        keys: dict[str, list[int]] | None = None,
        matches: list[re.Match[str]] | None = None,
        statements: list[Assignment] | None = None,
        tokens: list[Token] | None = None,
    ) -> None:
        self.src = src  # latin-1 text: one char per byte
        self.filename = filename
        self._raw = raw
        # key -> indices of its statements, keys in order of appearance; see _key_map
        self._keys = keys
        self._matches = matches
        self._statements = statements
        self._tokens = tokens
        self._starts: list[int] | None = None
        self._settings: dict[str, Setting] = {}

    # -- statements and tokens ---------------------------------------------

    @property
    def statements(self) -> list[Assignment]:
        """Every assignment, in file order."""
        if self._statements is None:
            assert self._matches is not None
            src = self.src
            self._statements = [statement_from_match(src, m) for m in self._matches]
        return self._statements

    @property
    def raw_statements(self) -> list[RawStatement]:
        """Every assignment as (key, operator, value text as written), in file order."""
        return self._raw

    @property
    def tokens(self) -> list[Token]:
        """Every token; joining their texts gives the file back."""
        if self._tokens is None:
            self._tokens = tokenize(self.src, self.filename)
        return self._tokens

    def _statement(self, index: int) -> Assignment:
        return self._builder()(index)

    def _builder(self) -> Callable[[int], Assignment]:
        """Statement number -> its Assignment, without holding on to this XlConfig."""
        statements = self._statements
        if statements is not None:
            return statements.__getitem__
        src, matches = self.src, self._matches
        assert matches is not None
        return lambda index: statement_from_match(src, matches[index])

    # -- construction ------------------------------------------------------

    def _key_map(self) -> dict[str, list[int]]:
        if self._keys is None:
            keys: dict[str, list[int]] = {}
            for i, (key, _op, _text) in enumerate(self._raw):
                keys.setdefault(key, []).append(i)
            self._keys = keys
        return self._keys

    def _resolve_setting(self, key: str) -> Setting | None:
        if self._keys is not None:
            indices = self._keys.get(key)
        else:  # one key of a fresh parse (an edit checking its result): no map needed
            indices = [i for i, r in enumerate(self._raw) if r[0] == key]
        if not indices:
            return None
        raw = self._raw
        value: Resolved | None = None
        for i in indices:
            _key, op, text = raw[i]
            new: Resolved
            if text[0] == "[":
                new = _resolve(self._statement(i).value)
            else:
                new = Scalar(atom_value(text), text[0] not in "'\"")
            if op == "+=" and value is not None:
                # `parse` refused a list joined to a string, and the other way round
                if isinstance(value, Scalar):
                    assert isinstance(new, Scalar)
                    new = Scalar(value.text + new.text, False)
                else:
                    assert isinstance(new, tuple)
                    new = value + new
            value = new
        assert value is not None
        setting = Setting(key, value, raw[indices[-1]][1], indices, self._builder())
        self._settings[key] = setting
        return setting

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
        src = self.src
        return src.count("\n", 0, offset) + 1, offset - src.rfind("\n", 0, offset)

    def token_position(self, index: int) -> tuple[int, int]:
        return self.position(self.tokens[index].start)

    def token_index(self, offset: int) -> int:
        """Index of the token covering byte `offset`."""
        import bisect

        if self._starts is None:
            self._starts = [t.start for t in self.tokens]
        return bisect.bisect_right(self._starts, offset) - 1

    def token_at(self, offset: int) -> Token:
        """The token covering byte `offset`."""
        return self.tokens[self.token_index(offset)]

    @property
    def ends_with_junk(self) -> bool:
        """The file ends in a stray byte that libxlutil never reports (see lexer)."""
        if self._matches is not None:
            return False  # the statement scanner accepts no stray byte
        return bool(self.tokens) and self.tokens[-1].kind == "junk"

    # -- settings ----------------------------------------------------------

    def keys(self) -> list[str]:
        """Every key set in the file, in order of first appearance."""
        return list(self._key_map())

    def __contains__(self, key: object) -> bool:
        return key in self._key_map()

    def __iter__(self) -> Iterator[str]:
        return iter(self._key_map())

    def setting(self, key: str) -> Setting | None:
        s = self._settings.get(key)
        return s if s is not None else self._resolve_setting(key)

    def assignments(self, key: str) -> list[Assignment]:
        """Every statement assigning `key`, in file order."""
        s = self.setting(key)
        return list(s.assignments) if s is not None else []

    def settings(self) -> dict[str, JsonValue]:
        """Every key with the value xl would use, typed for JSON.

        An unquoted NUMBER that strtol reads completely becomes an int
        (``0x200`` -> 512); quoted strings stay strings even when they hold
        digits; a value built with ``+=`` is a string or list, never a
        number (xl refuses ``+=`` numbers).  Lists keep their nesting.
        """
        out: dict[str, JsonValue] = {}
        for key in self._key_map():
            s = self.setting(key)
            assert s is not None
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

    def _long(self, key: str) -> tuple[Setting | None, int | None, LongProblem | None]:
        """The setting of `key`, and the number xl reads from it or why it reads none."""
        s = self.setting(key)
        if s is None:
            return None, None, "absent"
        if not isinstance(s.value, Scalar):
            return s, None, "list"
        if s.op == "+=":
            return s, None, "addition"
        value, problem = parse_long(s.value.text)
        return s, value, problem

    def read_long(self, key: str) -> LongRead:
        """`xlu_cfg_get_long`, reporting why a value cannot be used."""
        s, value, problem = self._long(key)
        if s is None:
            return LongRead(None, "absent")
        line, _ = self.position(s.assignment.value.start)
        if problem is None:
            return LongRead(value, None, None, line)
        messages = {
            "list": f"parameter `{key}' is a list but should be a single value",
            "addition": f"can't use += with numbers for parameter `{key}'",
            "range": f"parameter `{key}' could not be parsed as a number: "
            "Numerical result out of range",
            "invalid": f"parameter `{key}' is not a valid number",
        }
        return LongRead(None, problem, messages[problem], line)

    def get_long(self, key: str) -> int | None:
        """The number xl reads for `key`, or None when absent or unusable.

        Mirrors ``xlu_cfg_get_long``: strtol(.., 0) on the stored text, so
        quoted digits count, ``0x``/leading-0 pick hex/octal, trailing junk,
        lists and ``+=`` settings are refused.  xl then behaves as if the key
        were not set; use `read_long` to learn why.
        """
        return self._long(key)[1]

    def get_string(self, key: str) -> str | None:
        """``xlu_cfg_get_string``: the text of a single value (numbers keep their spelling)."""
        s = self.setting(key)
        if s is None or not isinstance(s.value, Scalar):
            return None
        return _expose(s.value.text)

    def get_list(self, key: str) -> list[PlainValue] | None:
        """``xlu_cfg_get_list``: the items of a list value, or None when absent or not a list.

        Atoms come back as their text; nested lists as Python lists (where
        xlu_cfg_get_listitem would return NULL).
        """
        s = self.setting(key)
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
        return f"<XlConfig {self.filename!r}: {len(self._key_map())} keys>"


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
        data = text if type(text) is bytes else bytes(text)
    return parse_text(data.decode("latin-1"), filename)


def _additions_agree(raw: list[RawStatement]) -> bool:
    """No ``+=`` joins a list to a string or a string to a list."""
    is_list: dict[str, bool] = {}
    for key, op, text in raw:
        kind = text[0] == "["
        if op == "+=" and is_list.get(key, kind) != kind:
            return False
        is_list[key] = kind
    return True


def parse_text(src: str, filename: str = "<string>") -> XlConfig:
    """`parse` for internal latin-1 text (one character per byte)."""
    scanned = scan_statements(src)
    if scanned is not None:
        raw, matches = scanned
        # A list joined to a string is an error; the full parser words it.
        if "+=" not in src or _additions_agree(raw):
            return XlConfig(src, filename, raw, matches=matches)
    tokens = tokenize(src, filename)
    statements = parse_statements(src, tokens, filename)
    keys: dict[str, list[int]] = {}
    kinds: dict[str, bool] = {}  # key -> its value in force is a list
    for i, a in enumerate(statements):
        is_list = not isinstance(a.value, Atom)
        if a.op == "+=" and kinds.get(a.key, is_list) != is_list:
            line, col = LineIndex(src).position(a.value.start)
            near = "[" if is_list else src[a.value.start : a.value.end]
            raise CfgSyntaxError(
                filename, line, col, 'can\'t add [list] to "string" or vice versa', near
            )
        kinds[a.key] = is_list
        keys.setdefault(a.key, []).append(i)
    raw = [(a.key, a.op, src[a.value.start : a.value.end]) for a in statements]
    return XlConfig(src, filename, raw, keys, statements=statements, tokens=tokens)
