"""What a reviewed diff may change in a cfg: memory, maxmem and comments, nothing else.

The report folder is data from a run that may have been edited since the
admin looked at it. A diff that slipped in `bootloader = "/tmp/x"` or a
`device_model_override` would have xl run a program as root at the next
boot, while its memory values still look right. So each removed or added
line must be blank, a comment, or made of `memory`/`maxmem` assignments
only; anything else is refused, however harmless it may look.
"""

from __future__ import annotations

import re

from xenaudit.apply.unidiff import FilePatch

_BLANK_OR_COMMENT = re.compile(rb"^[ \t]*(?:#[^\n]*)?\r?\n?$")
# A NUMBER token as xl's lexer reads it ([0-9][0-9a-fx]*: decimal, 0x.. or 0..),
# or a quoted string, which for memory/maxmem can only ever be a size.
_VALUE = rb"""(?:[0-9][0-9a-fx]*|"[^"\\\n]*"|'[^'\n]*')"""
_ASSIGNMENT = rb"(?:memory|maxmem)[ \t]*=[ \t]*" + _VALUE
_MEMORY_ASSIGNMENTS = re.compile(
    rb"^[ \t]*"
    + _ASSIGNMENT
    + rb"(?:[ \t]*;[ \t]*"
    + _ASSIGNMENT
    + rb")*[ \t]*;?[ \t]*(?:#[^\n]*)?\r?\n?$"
)


#: Control characters other than tab: a `\r` inside an added comment makes `cat`,
#: `less -r` or an editor show a different line than the one xl reads.
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def line_allowed(line: bytes, added: bool = False) -> bool:
    """Whether one removed or added line stays within what apply may change.

    An added line may end in CRLF (a cfg written on Windows) but holds no
    other control character, not even inside a comment.
    """
    if added:
        body = line[:-1] if line.endswith(b"\n") else line
        body = body[:-1] if body.endswith(b"\r") else body
        if _CONTROL.search(body):
            return False
    return bool(_BLANK_OR_COMMENT.match(line) or _MEMORY_ASSIGNMENTS.match(line))


def disallowed_lines(patch: FilePatch) -> list[str]:
    """The changed lines a memory-sizing diff has no business touching, for the message."""
    return [
        f"{kind}{text.decode('utf-8', 'replace').rstrip()}"
        for kind, text in patch.changed_lines()
        if not line_allowed(text, added=kind == "+")
    ]
