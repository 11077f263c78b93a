"""Reading and applying a one-file unified diff, strictly.

`patch(1)` is forgiving on purpose: it shifts hunks, applies them with fuzz
and follows whatever paths the headers name. `apply` wants the opposite: the
cfg is known to be the file the diff was made from (its hash was checked), so
every hunk must match exactly where it says, and anything unexpected is a
refusal rather than a guess. Everything works on bytes so that a cfg in any
encoding, with CRLF line ends or without a final newline, comes back
byte-for-byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: A diff for one xl.cfg is a few hundred bytes; anything huge is not ours.
MAX_DIFF_BYTES = 1024 * 1024

_HUNK_HEADER = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(?: .*)?$")
_NO_NEWLINE = b"\\ No newline at end of file"

LineKind = Literal[" ", "-", "+"]


class DiffError(ValueError):
    """A diff that is malformed, names more than one file, or does not fit its file."""


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    #: (kind, line bytes including its line end, if it had one)
    lines: tuple[tuple[LineKind, bytes], ...]

    def old_lines(self) -> list[bytes]:
        return [text for kind, text in self.lines if kind != "+"]

    def new_lines(self) -> list[bytes]:
        return [text for kind, text in self.lines if kind != "-"]


@dataclass(frozen=True)
class FilePatch:
    #: Header paths without any trailing tab and timestamp, e.g. "a/etc/xen/web.cfg".
    old_path: str
    new_path: str
    hunks: tuple[Hunk, ...]

    def changed_lines(self) -> list[tuple[LineKind, bytes]]:
        """Every removed and added line, in order."""
        return [(kind, text) for hunk in self.hunks for kind, text in hunk.lines if kind != " "]


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their `\\n` kept; a last line without one stays as it is.

    Not bytes.splitlines: that also breaks on a lone `\\r`, and xl and diff only know `\\n`.
    """
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _header_path(line: bytes, prefix: bytes) -> str:
    if not line.startswith(prefix):
        raise DiffError(f"expected a line starting with {prefix.decode()!r}")
    raw = line[len(prefix) :].rstrip(b"\n").rstrip(b"\r")
    raw = raw.split(b"\t", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiffError("a file name in the diff header is not UTF-8") from exc


def parse(data: bytes) -> FilePatch:
    """The single-file patch in `data`, or `DiffError` saying what is wrong with it."""
    if len(data) > MAX_DIFF_BYTES:
        raise DiffError(f"diff is {len(data)} bytes, more than {MAX_DIFF_BYTES}")
    if b"\0" in data:
        raise DiffError("diff contains a NUL byte")
    lines = split_lines(data)
    if len(lines) < 3:
        raise DiffError("diff has no '---'/'+++' header and hunk")
    old_path = _header_path(lines[0], b"--- ")
    new_path = _header_path(lines[1], b"+++ ")
    hunks: list[Hunk] = []
    index = 2
    while index < len(lines):
        hunk, index = _parse_hunk(lines, index)
        hunks.append(hunk)
    if not hunks:
        raise DiffError("diff has no hunk")
    return FilePatch(old_path=old_path, new_path=new_path, hunks=tuple(hunks))


def _parse_hunk(lines: list[bytes], index: int) -> tuple[Hunk, int]:
    header = lines[index].rstrip(b"\n")
    match = _HUNK_HEADER.match(header)
    if match is None:
        if header.startswith(b"--- ") or header.startswith(b"diff "):
            raise DiffError("diff names more than one file")
        raise DiffError(f"line {index + 1}: expected a hunk header '@@ -a,b +c,d @@'")
    old_start, new_start = int(match.group(1)), int(match.group(3))
    old_count = int(match.group(2)) if match.group(2) is not None else 1
    new_count = int(match.group(4)) if match.group(4) is not None else 1
    body: list[tuple[LineKind, bytes]] = []
    seen_old = seen_new = 0
    index += 1
    while index < len(lines) and (seen_old < old_count or seen_new < new_count):
        line = lines[index]
        kind = line[:1]
        if kind == b"\\":
            _mark_no_newline(body, line, index)
            index += 1
            continue
        if line in (b"\n", b"\r\n"):
            # Some tools drop the space before an empty context line.
            kind, line = b" ", b" " + line
        if kind not in (b" ", b"-", b"+"):
            raise DiffError(f"line {index + 1}: hunk ends early ({old_count},{new_count} expected)")
        text = line[1:]
        body.append((kind.decode(), text))  # type: ignore[arg-type]
        if kind != b"+":
            seen_old += 1
        if kind != b"-":
            seen_new += 1
        index += 1
    if seen_old != old_count or seen_new != new_count:
        raise DiffError(
            f"hunk at old line {old_start} has {seen_old},{seen_new} lines, "
            f"header says {old_count},{new_count}"
        )
    if index < len(lines) and lines[index].startswith(b"\\"):
        _mark_no_newline(body, lines[index], index)
        index += 1
    hunk = Hunk(old_start, old_count, new_start, new_count, tuple(body))
    return hunk, index


def _mark_no_newline(body: list[tuple[LineKind, bytes]], line: bytes, index: int) -> None:
    if line.rstrip(b"\r\n") != _NO_NEWLINE:
        raise DiffError(f"line {index + 1}: unknown marker line")
    if not body or not body[-1][1].endswith(b"\n"):
        raise DiffError(f"line {index + 1}: 'No newline' marker without a line before it")
    kind, text = body[-1]
    body[-1] = (kind, text[:-1])


def apply(original: bytes, patch: FilePatch) -> bytes:
    """`original` with every hunk applied where its header says; no offset, no fuzz."""
    old = split_lines(original)
    result: list[bytes] = []
    cursor = 0
    for number, hunk in enumerate(patch.hunks, start=1):
        start = hunk.old_start if hunk.old_count == 0 else hunk.old_start - 1
        if start < cursor:
            raise DiffError(f"hunk {number} overlaps or precedes the hunk before it")
        wanted = hunk.old_lines()
        if old[start : start + len(wanted)] != wanted:
            raise DiffError(f"hunk {number} does not match the file at line {hunk.old_start}")
        result.extend(old[cursor:start])
        new_start = len(result) + (0 if hunk.new_count == 0 else 1)
        if new_start != hunk.new_start:
            raise DiffError(
                f"hunk {number} says its new text starts at line {hunk.new_start}, "
                f"it would start at {new_start}"
            )
        result.extend(hunk.new_lines())
        cursor = start + len(wanted)
    result.extend(old[cursor:])
    joined = b"".join(result)
    _check_line_ends(result)
    return joined


def _check_line_ends(lines: list[bytes]) -> None:
    """Only the last line may lack its newline, or lines would run together."""
    for line in lines[:-1]:
        if not line.endswith(b"\n"):
            raise DiffError("the result would join two lines (a missing newline mid-file)")
