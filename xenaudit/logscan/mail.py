"""Undo what mail did to a pasted kernel log: quoting, quoted-printable, wrapping.

Logs reach admins through mailing lists and tickets: each reply adds a level of
``>`` quoting (``>> >  > ``), quoted-printable encoding turns ``=`` into ``=3D``
and breaks long lines with a trailing ``=``, and mail clients wrap lines near
72 columns. All three are undone before parsing; events read from such text
are marked ``reconstructed``.
"""

from __future__ import annotations

import re

from xenaudit.parsers.lazyre import lazy

#: Only this much of a file is looked at to decide whether it is a mail.
SNIFF_BYTES = 1 << 18
#: Mail pastes are small; larger files are read as logs.
MAX_MAIL_BYTES = 64 << 20

_QUOTE_RE = re.compile(rb"^[ \t]*(?:>[ \t]?)+", re.MULTILINE)
_QP_SIGN_RE = re.compile(rb"=(?:3D|20|09|A0|[0-9A-F]{2}(?==[0-9A-F]{2}))|=\r?\n")
# Only restoring a mail needs these (quopri too); sniffing every log does not.
_LOG_PREFIX_RE = lazy(
    r"^(?:\S*:)?(?:<\d{1,3}>)?"
    r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT|\[\s*\d+\.\d+)"
)
#: A wrapped line was broken because the next word would pass about this column.
_WRAP_COLUMN = 60


def looks_like_mail(head: bytes) -> bool:
    """Quoted lines or quoted-printable escapes in a log's first bytes."""
    quoted = len(_QUOTE_RE.findall(head))
    lines = head.count(b"\n") + 1
    qp = len(_QP_SIGN_RE.findall(head))
    return (quoted >= 3 and quoted * 4 >= lines) or qp >= 3


def unmail(data: bytes) -> str:
    """The log as it was before mail: quoted-printable decoded, quoting removed,
    wrapped log lines rejoined."""
    if len(_QP_SIGN_RE.findall(data[:SNIFF_BYTES])) >= 3:
        # Quote markers come before the soft line breaks' continuation, so strip them
        # line by line first, then decode.
        data = _QUOTE_RE.sub(b"", data)
        import quopri

        data = quopri.decodestring(data)
    else:
        data = _QUOTE_RE.sub(b"", data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    text = text.replace("\xa0", " ")
    return "\n".join(_unwrap(text.split("\n")))


def _unwrap(lines: list[str]) -> list[str]:
    """Join a line without a log prefix to the prefixed line before it, when that one
    ended near the wrap column (the mail client moved the next word down)."""
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if (
            out
            and stripped
            and not _LOG_PREFIX_RE.match(stripped)
            and _LOG_PREFIX_RE.match(out[-1])
            and len(out[-1]) + 1 + len(stripped.split(" ", 1)[0]) > _WRAP_COLUMN
        ):
            out[-1] = out[-1].rstrip() + " " + stripped
            continue
        out.append(line.lstrip() if _LOG_PREFIX_RE.match(line.lstrip()) else line)
    return out
