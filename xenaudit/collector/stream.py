"""Incremental reader for the probe's marker stream.

The stream comes from a guest and is hostile: it may contain garbage, binary,
NUL bytes, lines that look like markers (without the secret token), be cut
anywhere, or never end. The reader therefore:

* only trusts lines that start with the per-guest marker (`\\nXA<token>:`),
* holds at most `max_bytes` of section text plus one short look-behind, so
  its memory stays bounded however much the guest sends,
* reports a section whose end marker never came as `truncated` and keeps
  whatever text arrived, and
* never raises on content: a malformed marker is treated as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from xenaudit.collector.interface import SECTIONS, SectionStatus
from xenaudit.collector.probe import marker

#: Longest marker line we accept (the real ones are well under 100 bytes).
_MAX_MARKER_LINE = 160
#: Text printed outside any section (shell errors, login banners) kept for messages.
_MAX_PREAMBLE = 512
#: `kernlog_source` values the probe may report.
KERNLOG_SOURCES = frozenset({"dmesg", "journalctl", "kern.log"})
_HEADER_STATUSES = frozenset({"ok", "missing", "denied"})
#: Where the text of a repeated section goes (read, bounded, then dropped).
_IGNORED = "_ignored"


@dataclass
class ProbeOutput:
    """What one guest's probe produced, decoded and with per-section statuses."""

    sections: dict[str, str] = field(default_factory=dict)
    section_status: dict[str, SectionStatus] = field(default_factory=dict)
    kernlog_source: str | None = None
    #: The probe printed its final marker.
    complete: bool = False
    #: Reading stopped because `max_bytes` was reached.
    capped: bool = False
    bytes_read: int = 0
    #: The login's uid as the probe saw it, when it said.
    uid: str | None = None
    #: Problems worth reporting, each a short sentence naming the section.
    problems: list[str] = field(default_factory=list)
    #: Start of any text printed outside sections (escaped for messages).
    preamble: str = ""


@dataclass
class _Open:
    name: str
    status: SectionStatus
    source: str | None
    via_sudo: bool
    text: bytearray = field(default_factory=bytearray)


class ProbeStream:
    """Feed it the bytes as they arrive; ask for the `result()` at the end."""

    def __init__(self, token: str, max_bytes: int, kernlog_max_bytes: int) -> None:
        self._prefix = b"\n" + marker(token).encode("ascii") + b":"
        self._max_bytes = max_bytes
        self._kernlog_max = kernlog_max_bytes
        self._pending = bytearray()
        self._open: _Open | None = None
        self._done: dict[str, _Open] = {}
        self._preamble = bytearray()
        self._out = ProbeOutput()
        self._settled = False

    @property
    def finished(self) -> bool:
        """The probe said it was done (or the byte cap was reached): stop reading."""
        return self._out.complete or self._out.capped

    def feed(self, data: bytes) -> None:
        """Take the next bytes; anything beyond `max_bytes` is dropped and sets `capped`."""
        if self.finished or self._settled or not data:
            return
        room = self._max_bytes - self._out.bytes_read
        if len(data) >= room:
            data = data[:room]
            self._out.capped = True
        self._out.bytes_read += len(data)
        self._pending += data
        self._scan()

    def result(self) -> ProbeOutput:
        """Close the stream: flush what is pending and settle every status (once)."""
        if self._settled:
            return self._out
        self._settled = True
        if not self._out.complete:
            # No more data is coming, so the look-behind is plain text.
            self._emit(len(self._pending))
        out = self._out
        if self._open is not None and self._open.name == _IGNORED:
            self._open = None
        if self._open is not None:
            opened = self._open
            self._open = None
            if opened.status == "ok":
                opened.status = "truncated"
            self._store(opened)
            if out.capped:
                out.problems.append(
                    f"{opened.name}: stopped after {self._max_bytes} bytes (max_bytes_per_guest)"
                )
            else:
                out.problems.append(f"{opened.name}: output ended before the section did")
        elif out.capped:
            out.problems.append(f"stopped after {self._max_bytes} bytes (max_bytes_per_guest)")
        if not out.complete and not out.capped and not out.problems:
            out.problems.append("output ended before the probe finished")
        for name in SECTIONS:
            section = self._done.get(name)
            if section is None:
                continue
            out.sections[name] = _decode(section.text)
            out.section_status[name] = section.status
        if not out.section_status and self._preamble:
            out.preamble = _escape(bytes(self._preamble))
        return out

    # --- internals -------------------------------------------------------------

    def _scan(self) -> None:
        prefix = self._prefix
        while not self._out.complete:
            buf = self._pending
            at = buf.find(prefix)
            if at < 0:
                # Keep a look-behind in case the next chunk completes a marker.
                self._emit(max(0, len(buf) - (len(prefix) - 1)))
                return
            eol = buf.find(b"\n", at + len(prefix), at + _MAX_MARKER_LINE)
            if eol < 0:
                if len(buf) - at >= _MAX_MARKER_LINE:
                    # Too long to be ours: text. Skip past this newline.
                    self._emit(at + 1)
                    continue
                self._emit(at)
                return
            line = bytes(buf[at + len(prefix) : eol])
            self._emit(at)
            del self._pending[: eol + 1 - at]
            if not self._marker(line):
                # Not a well-formed marker: keep it as text, minus nothing.
                self._text(prefix + line + b"\n")

    def _emit(self, upto: int) -> None:
        """Move pending[:upto] into the open section (or the preamble)."""
        if upto <= 0:
            return
        chunk = self._pending[:upto]
        del self._pending[:upto]
        self._text(chunk)

    def _text(self, chunk: bytes | bytearray) -> None:
        if self._open is not None:
            self._open.text += chunk
        elif not self._done and len(self._preamble) < _MAX_PREAMBLE:
            self._preamble += chunk[: _MAX_PREAMBLE - len(self._preamble)]

    def _marker(self, line: bytes) -> bool:
        """Act on one marker line; False when it is not a marker we understand."""
        try:
            parts = line.decode("ascii").split(":")
        except UnicodeDecodeError:
            return False
        kind = parts[0]
        if kind == "Z" and len(parts) == 1:
            self._close_open("the probe finished without ending it")
            self._out.complete = True
            return True
        if kind == "H" and len(parts) == 2:
            self._out.uid = parts[1][:16]
            return True
        if kind == "B" and len(parts) == 5:
            return self._begin(*parts[1:])
        if kind == "E" and len(parts) == 3:
            return self._end(parts[1], parts[2])
        return False

    def _begin(self, name: str, status: str, source: str, via: str) -> bool:
        if name not in SECTIONS or status not in _HEADER_STATUSES:
            return False
        self._close_open(f"a new section ({name}) began before it ended")
        if name == "kernlog" and self._gave_nothing(self._done.get(name)):
            # The probe tries the next kernel-log source when one gave nothing;
            # the answer replaces the failed attempt.
            del self._done[name]
            self._out.problems[:] = [p for p in self._out.problems if not p.startswith("kernlog:")]
        if name in self._done:
            # A second copy of a section is not something our probe prints.
            self._out.problems.append(f"{name}: printed twice; kept the first")
            self._open = _Open(_IGNORED, "error", None, False)
            return True
        kernlog_source = source if name == "kernlog" and source in KERNLOG_SOURCES else None
        self._open = _Open(name, cast(SectionStatus, status), kernlog_source, via == "sudo")
        if kernlog_source is not None:
            self._out.kernlog_source = kernlog_source
        return True

    @staticmethod
    def _gave_nothing(section: _Open | None) -> bool:
        return (
            section is not None
            and section.status in ("ok", "error", "denied")
            and not section.text.strip()
        )

    def _end(self, name: str, rc: str) -> bool:
        opened = self._open
        if opened is None or opened.name != name:
            return opened is None and name in SECTIONS
        self._open = None
        if opened.status == "ok" and rc != "0":
            detail = f"exit status {rc}" if rc.isdigit() and len(rc) <= 3 else "bad exit status"
            if opened.via_sudo and not opened.text:
                opened.status = "denied"
            else:
                opened.status = "error"
                self._out.problems.append(f"{name}: {detail}")
        if name == "kernlog" and len(opened.text) > self._kernlog_max:
            # The probe asked for one byte more than the cap, so this means "cut".
            del opened.text[: len(opened.text) - self._kernlog_max]
            if opened.status == "ok":
                opened.status = "truncated"
        self._store(opened)
        return True

    def _close_open(self, why: str) -> None:
        if self._open is None:
            return
        opened = self._open
        self._open = None
        if opened.status == "ok":
            opened.status = "truncated"
        self._store(opened)
        if opened.name != _IGNORED:
            self._out.problems.append(f"{opened.name}: {why}")

    def _store(self, section: _Open) -> None:
        if section.name in SECTIONS and section.name not in self._done:
            self._done[section.name] = section


def _decode(raw: bytes | bytearray) -> str:
    """Text for the parsers: invalid UTF-8 and NUL become U+FFFD, nothing else changes.

    NUL is replaced because it ends strings in C tools and terminals that may
    later show a snapshot file, and no /proc or log text legitimately has one.
    """
    return bytes(raw).decode("utf-8", "replace").replace("\x00", "\ufffd")


def _escape(raw: bytes) -> str:
    """Guest text for an error message: printable ASCII only, everything else escaped."""
    text = raw.decode("utf-8", "replace").strip()
    return "".join(c if " " <= c <= "~" else ascii(c)[1:-1] for c in text)[:200]
