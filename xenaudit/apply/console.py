"""Showing hostile text on an admin's terminal, and asking yes or no.

Domain names, reasons and diff lines come from guests and from a report
folder that may have been edited; printed raw, an escape sequence could
rewrite what the admin sees before answering "y" (hide a line, move the
cursor, change the window title). Control characters and bidirectional
overrides are therefore shown as visible escapes.
"""

from __future__ import annotations

import re
from typing import TextIO

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every character that could drive the terminal made visible."""
    return _UNSAFE.sub(_escape, text)


def printable_bytes(data: bytes) -> str:
    return printable(data.decode("utf-8", "replace"))


class Prompter:
    """Asks per change on a terminal; `assume_yes` answers yes without asking."""

    def __init__(self, stdin: TextIO, stdout: TextIO, assume_yes: bool) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._assume_yes = assume_yes

    def confirm(self, question: str) -> bool:
        if self._assume_yes:
            return True
        self._stdout.write(f"{printable(question)} [y/N] ")
        self._stdout.flush()
        answer = self._stdin.readline()
        if not answer:
            self._stdout.write("\n")
        return answer.strip().lower() in ("y", "yes")
