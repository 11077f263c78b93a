"""What a reviewed diff may change in a cfg: memory, maxmem and comments, nothing else.

The report folder is data from a run that may have been edited since the
admin looked at it. A diff that slipped in `bootloader = "/tmp/x"` or a
`device_model_override` would have xl run a program as root at the next
boot, while its memory values still look right. So each removed or added
line must be blank, a comment, or a single plain `memory`/`maxmem`
assignment; anything else is refused, however harmless it may look.
"""

from __future__ import annotations

import re

from xenaudit.apply.unidiff import FilePatch

_BLANK_OR_COMMENT = re.compile(rb"^[ \t]*(?:#[^\n]*)?\r?\n?$")
_MEMORY_ASSIGNMENT = re.compile(
    rb"""^[ \t]*(?:memory|maxmem)[ \t]*=[ \t]*
        (?:[0-9]+|"[0-9]+"|'[0-9]+')
        [ \t]*;?[ \t]*(?:\#[^\n]*)?\r?\n?$""",
    re.VERBOSE,
)


def line_allowed(line: bytes) -> bool:
    """Whether one removed or added line stays within what apply may change."""
    return bool(_BLANK_OR_COMMENT.match(line) or _MEMORY_ASSIGNMENT.match(line))


def disallowed_lines(patch: FilePatch) -> list[str]:
    """The changed lines a memory-sizing diff has no business touching, for the message."""
    return [
        f"{kind}{text.decode('utf-8', 'replace').rstrip()}"
        for kind, text in patch.changed_lines()
        if not line_allowed(text)
    ]
