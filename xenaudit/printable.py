"""The one filter for text on an admin's terminal or in a log.

Domain names, error messages, SSH banners, reasons and diff lines come from
guests, hypervisors and report folders that may have been edited. Printed
raw, an escape sequence could set the terminal's title, erase the line
before it, move the cursor to hide a warning, or rewrite what the admin sees
before answering "y"; a bare carriage return does the same in a log viewer.
Every line xenaudit prints to stderr, stdout or a log goes through
`printable`, which shows control characters and bidirectional overrides as
visible escapes (`\\x1b`, `\\u202e`) and keeps everything else as it is.
"""

from __future__ import annotations

import re

_OTHERS = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
# Compiled on first use (re keeps them): a command that prints nothing starts
# without compiling them.
_UNSAFE = f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_OTHERS}]"
_UNSAFE_LINE = f"[\x00-\x1f\x7f-\x9f{_OTHERS}]"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, one_line: bool = False) -> str:
    """`text` with every character that could drive the terminal made visible.

    Newlines and tabs stay unless `one_line` is set (a progress or error line,
    which a guest must not be able to split into two).
    """
    return re.sub(_UNSAFE_LINE if one_line else _UNSAFE, _escape, text)


def printable_bytes(data: bytes, *, one_line: bool = False) -> str:
    return printable(data.decode("utf-8", "replace"), one_line=one_line)
