"""Showing hostile text on an admin's terminal, and asking yes or no.

Domain names, reasons and diff lines come from guests and from a report
folder that may have been edited; printed raw, an escape sequence could
rewrite what the admin sees before answering "y" (hide a line, move the
cursor, change the window title). Everything shown goes through the one
filter in `xenaudit.printable`.
"""

from __future__ import annotations

from typing import TextIO

from xenaudit.printable import printable, printable_bytes

__all__ = ["Prompter", "printable", "printable_bytes"]


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
