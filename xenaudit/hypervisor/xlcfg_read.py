"""Reading the few cfg values this stage needs: `name`, `memory`, `maxmem`, `autoballoon`.

The project's own xl.cfg parser (`xenaudit.xlcfg`) is the authority and is
used whenever it is importable. Until it lands, a small reader that follows
libxlutil's grammar for plain settings (KEY = "string" | 'string' | NUMBER |
[list], statements ended by a newline or `;`, `#` comments, the last
assignment winning, numbers read like C's strtol with base 0) stands in, so
cfg finding and drift work on real files either way.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class CfgReadError(Exception):
    """A cfg file could not be read as xl reads it. The message names the file."""


@dataclass(frozen=True)
class CfgFacts:
    name: str | None
    memory_mib: int | None
    maxmem_mib: int | None


@dataclass(frozen=True)
class _Token:
    kind: str  # "id", "str", "num", "op", "nl"
    text: str
    line: int


_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<comment>\#[^\n]*)
  | (?P<nl>\n)
  | (?P<id>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<num>[0-9][0-9A-Za-z]*)
  | (?P<dstr>"(?:[^"\\\n]|\\.)*")
  | (?P<sstr>'[^'\n]*')
  | (?P<op>\+=|[=\[\],;])
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _dequote(token: str) -> str:
    body = token[1:-1]
    if token[0] == "'":
        return body
    return re.sub(
        r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)",
        lambda m: _unescape(m.group(1)),
        body,
    )


def _unescape(seq: str) -> str:
    if seq[0] == "x" and len(seq) > 1:
        return chr(int(seq[1:], 16))
    if seq[0] in "01234567":
        return chr(int(seq, 8))
    return _ESCAPES.get(seq, seq)


def _tokens(text: str, filename: str) -> list[_Token]:
    tokens: list[_Token] = []
    line = 1
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise CfgReadError(f"{filename}:{line}: unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "nl":
            tokens.append(_Token("nl", value, line))
            line += 1
        elif kind in ("dstr", "sstr"):
            tokens.append(_Token("str", _dequote(value), line))
        elif kind in ("id", "num", "op"):
            tokens.append(_Token(kind, value, line))
        pos = match.end()
    tokens.append(_Token("nl", "", line))
    return tokens


class LiteConfig:
    """Plain settings of one xl-style file: the value is a string or a list of strings."""

    def __init__(self, settings: dict[str, str | list[str]]) -> None:
        self.settings = settings

    def get_string(self, key: str) -> str | None:
        value = self.settings.get(key)
        return value if isinstance(value, str) else None

    def get_long(self, key: str) -> int | None:
        value = self.get_string(key)
        return None if value is None else strtol(value)


def parse_lite(text: str, filename: str) -> LiteConfig:
    """Parse settings the way libxlutil does; raises CfgReadError on a syntax error."""
    tokens = _tokens(text, filename)
    settings: dict[str, str | list[str]] = {}
    i = 0

    def expect(kind: str, texts: tuple[str, ...] = ()) -> _Token:
        nonlocal i
        token = tokens[i]
        if token.kind != kind or (texts and token.text not in texts):
            shown = token.text or "end of file"
            raise CfgReadError(f"{filename}:{token.line}: syntax error near {shown!r}")
        i += 1
        return token

    while i < len(tokens):
        token = tokens[i]
        if token.kind == "nl" or (token.kind == "op" and token.text == ";"):
            i += 1
            continue
        key = expect("id").text
        operator = expect("op", ("=", "+=")).text
        value: str | list[str]
        if tokens[i].kind == "op" and tokens[i].text == "[":
            i += 1
            items: list[str] = []
            while True:
                while tokens[i].kind == "nl":
                    i += 1
                if tokens[i].kind == "op" and tokens[i].text == "]":
                    i += 1
                    break
                if tokens[i].kind not in ("str", "num"):
                    expect("str")
                items.append(tokens[i].text)
                i += 1
                while tokens[i].kind == "nl":
                    i += 1
                if tokens[i].kind == "op" and tokens[i].text == ",":
                    i += 1
                    continue
                expect("op", ("]",))
                break
            value = items
        else:
            if tokens[i].kind not in ("str", "num"):
                expect("str")
            value = tokens[i].text
            i += 1
        previous = settings.get(key)
        if operator == "+=" and isinstance(previous, list) and isinstance(value, list):
            value = previous + value
        settings[key] = value
        if i < len(tokens):
            if tokens[i].kind == "nl" or (tokens[i].kind == "op" and tokens[i].text == ";"):
                i += 1
            else:
                expect("nl")
    return LiteConfig(settings)


def strtol(text: str) -> int | None:
    """C's strtol(text, &end, 0) requiring the whole string: what xlu_cfg_get_long accepts."""
    match = re.fullmatch(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if match is None:
        return None
    sign, digits = match.groups()
    if digits[:2] in ("0x", "0X"):
        number = int(digits[2:], 16)
    elif digits.startswith("0"):
        number = int(digits, 8)
    else:
        number = int(digits)
    return -number if sign == "-" else number


def _project_parser() -> tuple[Callable[[str, str], Any], type[Exception]] | None:
    """`xenaudit.xlcfg`'s parse() and its syntax error, when that package provides them."""
    for module_name in ("xenaudit.xlcfg", "xenaudit.xlcfg.parser"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        parse = getattr(module, "parse", None)
        error = getattr(module, "CfgSyntaxError", None)
        if callable(parse) and isinstance(error, type) and issubclass(error, Exception):
            return parse, error
    return None


def _value(obj: Any, attribute: str) -> Any:
    value = getattr(obj, attribute, None)
    return value() if callable(value) else value


def read_cfg_facts(text: str, filename: str) -> CfgFacts:
    """name, memory and maxmem of a domain cfg, as xl would read them."""
    project = _project_parser()
    if project is not None:
        parse, syntax_error = project
        try:
            config = parse(text, filename)
        except syntax_error as exc:
            raise CfgReadError(str(exc)) from None
        name = _value(config, "name")
        memory = _value(config, "memory_mib")
        maxmem = _value(config, "maxmem_mib")
        return CfgFacts(
            name=name if isinstance(name, str) else None,
            memory_mib=memory if isinstance(memory, int) else None,
            maxmem_mib=maxmem if isinstance(maxmem, int) else None,
        )
    lite = parse_lite(text, filename)
    return CfgFacts(
        name=lite.get_string("name"),
        memory_mib=lite.get_long("memory"),
        maxmem_mib=lite.get_long("maxmem"),
    )


def read_autoballoon(text: str, filename: str) -> str:
    """xl.conf's autoballoon as xl resolves the setting: "on", "off" or "auto".

    xl accepts "on"/"1" and "off"/"0"; anything else (or nothing) leaves its
    default, "auto" (tools/xl/xl.c, parse_global_config).
    """
    project = _project_parser()
    value: str | None = None
    if project is not None:
        parse, syntax_error = project
        try:
            value = _value_of_string(parse(text, filename), "autoballoon")
        except syntax_error as exc:
            raise CfgReadError(str(exc)) from None
    else:
        value = parse_lite(text, filename).get_string("autoballoon")
    return {"on": "on", "1": "on", "off": "off", "0": "off"}.get(value or "", "auto")


def _value_of_string(config: Any, key: str) -> str | None:
    getter = getattr(config, "get_string", None)
    if not callable(getter):
        return None
    value = getter(key)
    return value if isinstance(value, str) else None
