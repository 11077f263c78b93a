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


def line_allowed(line: bytes) -> bool:
    """Whether one removed or added line stays within what apply may change."""
    return bool(_BLANK_OR_COMMENT.match(line) or _MEMORY_ASSIGNMENTS.match(line))


def disallowed_lines(patch: FilePatch) -> list[str]:
    """The changed lines a memory-sizing diff has no business touching, for the message."""
    return [
        f"{kind}{text.decode('utf-8', 'replace').rstrip()}"
        for kind, text in patch.changed_lines()
        if not line_allowed(text)
    ]
