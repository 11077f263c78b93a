"""Edits that change one key and leave every other byte alone.

Choices (each one checked against libxlutil in the tests):

* A key set several times: the last assignment is the one xl uses, so that
  is the one rewritten; the earlier ones stay (they are shadowed anyway).
* A key whose last assignment is ``+=``: libxlutil concatenates, and for
  numbers ``xlu_cfg_get_long`` refuses any ``+=`` setting ("can't use +=
  with numbers"), so xl silently ignores e.g. ``memory += 256``.  Setting
  such a key rewrites that last statement to ``key = value``, which gives
  the key exactly the new value whatever came before.
* The replaced value's spelling is kept: ``'512'`` becomes ``'768'``,
  ``"1024"`` becomes ``"1536"``, ``0x200`` becomes ``0x300``, ``0600``
  stays octal.  A negative number cannot be an unquoted NUMBER token, so
  it is written as a quoted string (xl reads it with strtol all the same).
* A missing key goes next to its related key (``maxmem`` right after the
  line of the winning ``memory``, ``memory`` right before ``maxmem``),
  copying that line's indentation, spacing or alignment around ``=`` and
  quoting.  Without a related key it goes at the end of the file, before
  any trailing blank lines, in the file's most common style, and the file
  keeps ending (or not) with a newline.
* `remove_key` removes every assignment of the key (removing only the last
  would bring an earlier one back), whole lines when the statement is alone
  on its line, including a trailing comment on that line.

Every edit re-parses the result and checks that the edited key has the new
value and every other key kept its value; otherwise CfgEditError is raised.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import zip_longest
from typing import Final, Literal

from xenaudit.xlcfg import lexer
from xenaudit.xlcfg.config import Resolved, Scalar, XlConfig, parse, parse_text, to_internal
from xenaudit.xlcfg.errors import CfgEditError, CfgSyntaxError
from xenaudit.xlcfg.numbers import format_number, number_style, parse_long
from xenaudit.xlcfg.quoting import quote
from xenaudit.xlcfg.syntax import Assignment, Atom, Value

_KEY_RE: Final = re.compile(r"[a-z][._0-9a-z]*\Z")

# key -> (where, related key): where a missing key is inserted.
RELATED: Final[dict[str, tuple[Literal["after", "before"], str]]] = {
    "maxmem": ("after", "memory"),
    "memory": ("before", "maxmem"),
    "maxvcpus": ("after", "vcpus"),
    "vcpus": ("before", "maxvcpus"),
    "cpus_soft": ("after", "cpus"),
}


@dataclass(frozen=True, slots=True)
class Raw:
    """Value text written verbatim, e.g. ``Raw("[ 'a', 'b' ]")`` or ``Raw("0x300")``.

    It must be exactly one xl.cfg value; `set_value` checks that with the parser.
    """

    text: str


EditValue = int | str | Raw


@dataclass(frozen=True, slots=True)
class _LineStyle:
    indent: str
    ws_before: str  # between key and operator
    ws_after: str  # between operator and value
    op_column: int  # offset of the operator from the start of the line


def _check_key(key: str) -> None:
    if not _KEY_RE.match(key):
        raise CfgEditError(
            f"invalid key {key!r}: xl.cfg keys are [a-z][._0-9a-z]* (lower case only)"
        )


def _line_start(src: str, offset: int) -> int:
    return src.rfind("\n", 0, offset) + 1


def _line_style(cfg: XlConfig, a: Assignment) -> _LineStyle | None:
    """Spacing of an assignment that starts its line, else None."""
    src = cfg.src
    start = _line_start(src, a.key_start)
    indent = src[start : a.key_start]
    if indent.strip(" \t"):
        return None
    return _LineStyle(
        indent=indent,
        ws_before=src[a.key_end : a.op_start],
        ws_after=src[a.op_end : a.value.start],
        op_column=a.op_start - start,
    )


def _file_line_style(cfg: XlConfig) -> _LineStyle:
    """The spacing most assignments of the file use (aligned "=" columns included)."""
    styles = [s for a in cfg.statements if (s := _line_style(cfg, a)) is not None]
    if not styles:
        return _LineStyle("", " ", " ", -1)
    columns = Counter(s.op_column for s in styles if len(s.ws_before) > 1)
    indent = Counter(s.indent for s in styles).most_common(1)[0][0]
    ws_after = Counter(s.ws_after for s in styles).most_common(1)[0][0]
    if columns:
        column, count = columns.most_common(1)[0]
        if count >= 2:
            return _LineStyle(indent, " ", ws_after, column)
    ws_before = Counter(s.ws_before for s in styles).most_common(1)[0][0]
    return _LineStyle(indent, ws_before, ws_after, -1)


def _render_line(key: str, value_text: str, style: _LineStyle) -> str:
    """``key = value`` with the indentation and spacing (or "=" alignment) of `style`."""
    if style.op_column >= 0 and style.ws_before and "\t" not in style.ws_before:
        pad_len = style.op_column - len(style.indent) - len(key)
        pad = " " * pad_len if pad_len >= 1 else " "
    else:
        pad = style.ws_before
    return f"{style.indent}{key}{pad}={style.ws_after}{value_text}"


def _atoms(value: Value) -> list[Atom]:
    if isinstance(value, Atom):
        return [value]
    return [atom for item in value.items for atom in _atoms(item)]


def _dominant_quote(cfg: XlConfig) -> str:
    """The quote most strings of the file use (every STRING token is an atom of a value)."""
    counts = Counter(
        atom.text[0] for a in cfg.statements for atom in _atoms(a.value) if atom.quoted
    )
    if counts["'"] > counts['"']:
        return "'"
    return '"'


def _numbers_quoted(cfg: XlConfig) -> str | None:
    """The quote the file puts around plain numbers (xen-tools writes '4'), or None."""
    quoted: Counter[str] = Counter()
    bare = 0
    for a in cfg.statements:
        if not isinstance(a.value, Atom):
            continue
        atom = a.value
        if atom.numeric:
            bare += 1
        elif parse_long(atom.value)[1] is None:
            quoted[atom.text[0]] += 1
    if sum(quoted.values()) > bare:
        return quoted.most_common(1)[0][0]
    return None


def _render_int(value: int, like: Atom | None, cfg: XlConfig) -> str:
    if like is not None and not like.quoted:
        style = number_style(like.text)
        if value >= 0:
            return format_number(value, style, like.text)
        return quote("-" + format_number(-value, style), _dominant_quote(cfg))
    if like is not None and like.quote_char is not None:
        content = like.value
        if parse_long(content)[1] is None:
            style = number_style(content)
            digits = format_number(abs(value), style, content)
        else:
            digits = str(abs(value))
        return quote(("-" if value < 0 else "") + digits, like.quote_char)
    quote_char = _numbers_quoted(cfg)
    if quote_char is not None or value < 0:
        return quote(str(value), quote_char or _dominant_quote(cfg))
    return str(value)


def _render_value(value: EditValue, like: Atom | None, cfg: XlConfig) -> str:
    """Value text in internal (latin-1) form."""
    if isinstance(value, Raw):
        return to_internal(value.text)
    if isinstance(value, bool):
        raise CfgEditError("booleans are written as numbers in xl.cfg: pass 0 or 1")
    if isinstance(value, int):
        return _render_int(value, like, cfg)
    if isinstance(value, str):
        quote_char = like.quote_char if like is not None and like.quoted else None
        try:
            return quote(to_internal(value), quote_char or _dominant_quote(cfg))
        except ValueError as e:
            raise CfgEditError(str(e)) from e
    raise CfgEditError(f"unsupported value type {type(value).__name__}")


def _raw_resolved(raw: Raw) -> Resolved:
    """Parse a Raw value on its own; it must be exactly one value."""
    probe = f"k = {raw.text}\n"
    try:
        cfg = parse(probe, "<value>")
    except CfgSyntaxError as e:
        raise CfgEditError(f"not a valid xl.cfg value: {raw.text!r} ({e.message})") from e
    statements = cfg.statements
    if (
        len(statements) != 1
        # a comment would swallow the rest of the line
        or statements[0].terminator != "\n"
        or statements[0].terminator_end != len(probe)
    ):
        raise CfgEditError(f"not a single xl.cfg value: {raw.text!r}")
    setting = cfg.setting("k")
    assert setting is not None
    return setting.value


def _expected(value: EditValue) -> Resolved | int:
    if isinstance(value, Raw):
        return _raw_resolved(value)
    if isinstance(value, int):
        return value
    return Scalar(to_internal(value), False)


def _apply(src: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, text in sorted(edits, reverse=True):
        src = src[:start] + text + src[end:]
    return src


def _same(a: Resolved, b: Resolved) -> bool:
    """Equal as xl sees them (text only; NUMBER vs quoted does not matter to xl)."""
    if isinstance(a, Scalar) or isinstance(b, Scalar):
        return isinstance(a, Scalar) and isinstance(b, Scalar) and a.text == b.text
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))


def _verify(old: XlConfig, new_src: str, key: str, expected: Resolved | int | None) -> XlConfig:
    """Parse the edited text again: only `key` may have changed, to `expected`.

    Every statement of another key must come back with the same operator and
    the same value text, in the same order (stricter than the same values).
    """
    try:
        new = parse_text(new_src, old.filename)
    except CfgSyntaxError as e:
        raise CfgEditError(f"editing {key!r} would break the file: {e}") from e
    before = [r for r in old.raw_statements if r[0] != key]
    after = [r for r in new.raw_statements if r[0] != key]
    if before != after:
        b, a = next((b, a) for b, a in zip_longest(before, after) if b != a)
        other = b[0] if b is not None else a[0]
        if other not in old:
            raise CfgEditError(f"editing {key!r} would add {other!r}")
        raise CfgEditError(f"editing {key!r} would change {other!r}")
    setting = new.setting(key)
    if expected is None:
        if setting is not None:
            raise CfgEditError(f"{key!r} is still set after removing it")
    elif setting is None:
        raise CfgEditError(f"{key!r} is not set after editing it")
    elif isinstance(expected, int):
        got = new.get_long(key)
        if got != expected:
            raise CfgEditError(f"{key!r} reads as {got} instead of {expected}")
    elif not _same(setting.value, expected) or setting.op != "=":
        raise CfgEditError(f"{key!r} does not read back as written")
    return new


def _end_of_line_after(cfg: XlConfig, a: Assignment) -> int | None:
    """Just after the first NEWLINE token after `a`'s value that is not inside a list.

    None when the file ends first.
    """
    if a.ends_line:
        return a.terminator_end
    if not a.terminator:
        return None
    # After ';' more statements may follow on the line, with lists across lines.
    tokens = cfg.tokens
    depth = 0
    for i in range(cfg.token_index(a.terminator_start) + 1, len(tokens)):
        kind = tokens[i].kind
        if kind == lexer.LBRACKET:
            depth += 1
        elif kind == lexer.RBRACKET:
            depth -= 1
        elif kind == lexer.NEWLINE and depth == 0:
            return tokens[i].end
    return None


def _insert_at_eof(cfg: XlConfig, line: str) -> tuple[int, int, str]:
    """Add `line` as the last line, keeping the file's final-newline convention."""
    src = cfg.src
    if cfg.ends_with_junk:
        # A stray last byte is only harmless while it stays the last byte.
        junk = len(src) - 1
        before = src[:junk]
        if before == "" or before.endswith("\n"):
            return (junk, junk, line + "\n")
        return (junk, junk, "\n" + line)
    if src == "":
        return (0, 0, line + "\n")
    if src.endswith("\n"):
        return (len(src), len(src), line + "\n")
    return (len(src), len(src), "\n" + line)


def _append_position(cfg: XlConfig, line: str) -> tuple[int, int, str]:
    """At the end, but before trailing blank lines."""
    src = cfg.src
    if not src.strip(" \t\n"):
        return (0, 0, line + "\n")
    m = re.search(r"\n[ \t\n]*\Z", src)
    if m is None or cfg.ends_with_junk:
        return _insert_at_eof(cfg, line)
    pos = m.start() + 1
    return (pos, pos, line + "\n")


def _insertion(cfg: XlConfig, key: str, value: EditValue) -> tuple[int, int, str]:
    rel = RELATED.get(key)
    related = cfg.setting(rel[1]) if rel is not None else None
    if rel is not None and related is not None:
        anchor = related.assignment
        like = anchor.value if isinstance(anchor.value, Atom) else None
        text = _render_value(value, like, cfg)
        style = _line_style(cfg, anchor) or _file_line_style(cfg)
        line = _render_line(key, text, style)
        if rel[0] == "after":
            pos = _end_of_line_after(cfg, anchor)
            if pos is None:
                return _insert_at_eof(cfg, line)
            return (pos, pos, line + "\n")
        if _line_style(cfg, anchor) is not None:
            pos = _line_start(cfg.src, anchor.key_start)
            return (pos, pos, line + "\n")
        pos = anchor.key_start
        return (pos, pos, f"{key} = {text}; ")
    text = _render_value(value, None, cfg)
    line = _render_line(key, text, _file_line_style(cfg))
    return _append_position(cfg, line)


def set_value(cfg: XlConfig, key: str, value: EditValue) -> XlConfig:
    """Return a new config where `key` reads as `value`; see the module notes."""
    _check_key(key)
    expected = _expected(value)
    setting = cfg.setting(key)
    if setting is None:
        edit = _insertion(cfg, key, value)
        return _verify(cfg, _apply(cfg.src, [edit]), key, expected)
    a = setting.assignment
    like = a.value if isinstance(a.value, Atom) else None
    text = _render_value(value, like, cfg)
    edits = [(a.value.start, a.value.end, text)]
    if a.op == "+=":
        edits.append((a.op_start, a.op_end, "="))
    return _verify(cfg, _apply(cfg.src, edits), key, expected)


def _removal(cfg: XlConfig, a: Assignment) -> tuple[int, int, str]:
    src = cfg.src
    start = a.key_start
    line_start = _line_start(src, start)
    alone_before = not src[line_start:start].strip(" \t")
    if not a.terminator:
        if alone_before:
            # The last line has no newline: drop the (bare) newline before it
            # too, so that the file still ends without one.
            if line_start > 0:
                prev = cfg.token_at(line_start - 1)
                if prev.kind == lexer.NEWLINE and prev.text == "\n":
                    return (line_start - 1, len(src), "")
            return (line_start, len(src), "")
        ws = len(src[:start]) - len(src[:start].rstrip(" \t"))
        return (start - ws, len(src), "")
    if a.ends_line:
        if alone_before:
            return (line_start, a.terminator_end, "")
        ws = len(src[:start]) - len(src[:start].rstrip(" \t"))
        return (start - ws, a.value.end, "")
    # terminated by ';'
    after = a.terminator_end
    rest_end = after
    while rest_end < len(src) and src[rest_end] in " \t":
        rest_end += 1
    tokens = cfg.tokens
    following = tokens[cfg.token_index(a.terminator_start) + 1 :]
    nxt = next((t for t in following if t.kind != lexer.WS), None)
    if alone_before and nxt is not None and nxt.kind == lexer.NEWLINE:
        return (line_start, nxt.end, "")
    if alone_before and nxt is None:
        return (line_start, len(src), "")
    if nxt is None or nxt.kind == lexer.NEWLINE:
        ws = len(src[:start]) - len(src[:start].rstrip(" \t"))
        return (start - ws, after, "")
    return (start, rest_end, "")


def remove_key(cfg: XlConfig, key: str) -> XlConfig:
    """Return a new config without any assignment of `key` (unchanged if absent)."""
    _check_key(key)
    setting = cfg.setting(key)
    if setting is None:
        return cfg
    edits = [_removal(cfg, a) for a in setting.assignments]
    return _verify(cfg, _apply(cfg.src, edits), key, None)
