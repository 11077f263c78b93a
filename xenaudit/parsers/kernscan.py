"""The kernel-log state machine: lines in, events out, in input order.

A scanner is fed lines with their 1-based numbers. While no report is open it
only needs the lines that contain a marker (kernpatterns.MARKERS), plus the
line just before each of them (``note_prev``); everything else is remembered
as "the previous line" and otherwise ignored. That contract is what lets the
byte-level driver in kernlog.py skip most of a large file without changing
the result: both drivers call exactly the same methods for every line that can
matter.

Once a header opens a report (page allocation failure or OOM), every line is
fed until the report closes (the block driver reads the plain lines of a report
as one string, each with one pattern, and a run of OOM task-list lines with one
pattern for all; see Scanner._feed_block): at the next header, after a few lines that do not
look like report lines (other CPUs may interleave a line or two), or at a cap.

On multi-vCPU guests several CPUs report at once. When lines name who printed
them (printk caller ids "[C1]"/"[T12]", vendor "[pid:N,cpuN,name]" prefixes)
each caller's report collects its own lines. Without such tags, a header that
arrives before the open report printed anything else leaves that report waiting
for its own dump line ("CPU: N PID: M Comm: X"), which is matched by task name;
the dump line also supplies the process name when the header lost it. Lines that
two messages were glued into (a second timestamp, or an OOM line, in the middle)
are split first.
"""

from __future__ import annotations

from xenaudit.parsers import gfp
from xenaudit.parsers import kernpatterns as kp
from xenaudit.parsers.kernevents import (
    BalloonMessage,
    KernelEvent,
    LogLine,
    OomInvoked,
    OomKill,
    PageAllocFailure,
)
from xenaudit.parsers.lazyre import lazy
from xenaudit.parsers.lineprefix import (
    BLOCK_LINE_RE,
    Stripped,
    block_pattern,
    looks_like_cut_start,
    strip_prefix,
)

TYPE_CHECKING = False  # typing is not imported at run time (start-up of small scans)
if TYPE_CHECKING:
    from xenaudit.parsers.kernevents import GfpFlagsSource

#: Longest line looked at; the rest of a longer line is ignored (logs do contain
#: megabyte-long garbage lines, and regexes must stay linear).
LINE_CAP = 4096
#: Lines at the start of a log that are always read (boot banner, cut first line).
HEAD_LINES = 64
#: Context lines kept per report.
CONTEXT_CAP = 200
#: An OOM report (with its task list) may run this long before its kill line.
OOM_SPAN_CAP = 5000
#: Consecutive non-report lines tolerated inside a report (interleaved CPUs).
GAP_TOLERANCE = 3
#: Lines to wait for the "Killed process" line after "Kill process ... sacrifice child".
PENDING_KILL_WINDOW = 50
#: Reports left open at once by interleaving CPUs (more are closed, oldest first).
MAX_PARKED = 16
#: Lines an untagged report may wait for its dump line after a newer header.
PARK_WINDOW = 40
#: Call-trace function names kept per report.
TRACE_CAP = 64

# A second message glued into a line: a dmesg stamp, or an OOM message right
# after a non-blank character ("(trashapplet)Out of memory: kill process ...").
_GLUE_RE = lazy(r"\[\s*\d+\.\d{6}s?\]|<[0-7]>\[|Out of memory: |Killed process \d")


def _glue_at(text: str) -> int:
    """Where a second message starts inside ``text`` (0: nowhere)."""
    if not (
        ("]" in text and "." in text)
        or "<" in text
        or "ut of memory: " in text
        or "Killed process " in text
    ):
        return 0
    start = 1
    while True:
        match = _GLUE_RE.search(text, start)
        if match is None:
            return 0
        at = match.start()
        if match.group()[0] in "[<" or not text[at - 1].isspace():
            return at
        start = at + 1  # "Out of memory: Killed process": one message


_ANSI_RE = lazy(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_NO_EVENTS: tuple[KernelEvent, ...] = ()


class _Report:
    """A page-allocation-failure or OOM report whose context is still being read.

    Scanner state, not a result: a plain slotted class (quick to define and to touch).
    """

    __slots__ = (
        "banner",
        "buddy",
        "caller_key",
        "constraint",
        "context",
        "dump",
        "frames",
        "gap",
        "header",
        "kind",
        "line",
        "memcg",
        "old_dump",
        "parked_for",
        "reconstructed",
        "release",
        "span",
        "suppressed",
        "text",
        "timestamp",
    )

    def __init__(
        self,
        kind: str,
        line: int,
        timestamp: str | None,
        header: kp.PageAllocHeader | kp.OomHeader,
        suppressed: int = 0,
        *,
        text: str = "",
        caller_key: str | None = None,
        banner: str | None = None,
        reconstructed: bool = False,
    ) -> None:
        self.kind = kind  # "page_alloc_failure" or "oom_invoked"
        self.line = line
        self.timestamp = timestamp
        self.header = header
        self.suppressed = suppressed
        self.context: list[LogLine] = []
        self.buddy: list[str] = []
        self.gap: list[LogLine] = []
        self.span = 0
        self.release: str | None = None
        self.old_dump = False
        self.constraint: str | None = None
        self.memcg = False
        #: The header's message text as the kernel printed it (line prefix removed).
        self.text = text
        #: printk caller id or vendor CPU tag of the header line, when printed.
        self.caller_key = caller_key
        self.dump: kp.DumpLine | None = None
        self.frames: list[tuple[str, bool]] = []
        #: The last "Linux version" seen before the header.
        self.banner = banner
        self.reconstructed = reconstructed
        #: Lines waited while parked behind a newer report (untagged interleaving).
        self.parked_for = 0


class _Partial:
    """A header line that stopped early; the next, unprefixed line may complete it."""

    __slots__ = ("line", "prev", "stripped")

    def __init__(self, line: int, stripped: Stripped, prev: str | None) -> None:
        self.line = line
        self.stripped = stripped
        self.prev = prev


class _Pending:
    """'Kill process N (x) score S or sacrifice child', waiting for its 'Killed process'."""

    __slots__ = ("counted_to", "kill", "line", "reconstructed", "text", "timestamp", "waited")

    def __init__(
        self,
        line: int,
        timestamp: str | None,
        kill: kp.KillLine,
        *,
        text: str = "",
        reconstructed: bool = False,
        counted_to: int = 0,
    ) -> None:
        self.line = line
        self.timestamp = timestamp
        self.kill = kill
        self.waited = 0
        self.text = text
        self.reconstructed = reconstructed
        #: The last line counted in ``waited``.
        self.counted_to = counted_to


_CONSTRAINT_RE = lazy(r"oom-kill:constraint=(?P<c>[A-Z_]+)")

#: Bytes decoded at a time by the block reader (Scanner._feed_block).
BLOCK_BYTES = 1 << 14
#: What kp.has_marker looks for, found in a block at once.
_MARKER_WORDS = kp.MARKERS
# A line of an OOM report's task list ("[  1234]   0  1234  56789  1234  ...  0 nginx"),
# in a form whose every line _add_line would take as a plain continuation and in which
# no fact (_note_facts), buddy list, glued message or over-long line can appear: digits
# and blanks, then a name without blanks, colons, "+", "*", "<" or brackets. The names
# of hostile guests that could still spell a fact ("mem_cgroup_out_of_memory") or a
# marker ("balloon") are kept out by the block's own checks. Other task lines (names
# with blanks) are read one by one.
_TASK_TEXT = r"\[ {0,16}\d{1,10}\][ \d-]{0,1000} [\w.()/@~#%,=!&^$-]{1,64}"
_TASK_RE = lazy(_TASK_TEXT)
# Every line from a line start: a task line gives its stamp, date and text, any other
# line three empty strings (the run ends there).
_TASK_LINES_RE = lazy(f"(?<![^\\n])(?:{block_pattern(_TASK_TEXT)}|[^\\n]*+\\n)")


class _Block:
    """Whole lines of the buffer, decoded at once for the block reader.

    Only stretches that are ASCII without NUL, ESC or carriage returns are used (the
    offsets of text and bytes agree, and no line needs cleaning); ``safe_to`` ends
    the lines known to hold no marker, up to the next line that does.
    """

    __slots__ = ("end", "safe_to", "start", "tasks_ok", "text", "unusable_to")

    def __init__(self) -> None:
        self.text: str | None = None
        self.start = self.end = self.safe_to = 0
        self.tasks_ok = False
        #: Offsets before this are read line by line (a block there could not be used).
        self.unusable_to = 0

    def load(self, buf: bytes | bytearray, pos: int, end: int) -> bool:
        """Decode the whole lines from ``pos`` (a line start); False when unusable."""
        self.text = None
        stop = end if end - pos <= BLOCK_BYTES else buf.rfind(b"\n", pos, pos + BLOCK_BYTES) + 1
        if stop <= pos:  # one line longer than a block
            nl = buf.find(b"\n", pos, end)
            self.unusable_to = end if nl < 0 else nl + 1
            return False
        chunk = buf[pos:stop]
        if not chunk.isascii() or b"\x00" in chunk or b"\x1b" in chunk or b"\r" in chunk:
            self.unusable_to = stop
            return False
        self.text = chunk.decode("ascii")
        self.start, self.end = pos, stop
        self.tasks_ok = "mem_cgroup_out_of_memory" not in self.text
        return self.advance(0)

    def advance(self, p: int) -> bool:
        """Find the next line from text offset ``p`` (a line start) that holds a marker;
        False when it is the line at ``p``."""
        text = self.text
        assert text is not None
        first = len(text)
        find = text.find
        for word in _MARKER_WORDS:
            at = find(word, p, first + len(word) - 1)
            if at >= 0:
                first = at
        self.safe_to = len(text) if first == len(text) else text.rfind("\n", 0, first) + 1
        return self.safe_to > p


class Scanner:
    """Feed lines, collect events. Not thread-safe; one per log."""

    def __init__(
        self,
        kernel_release: str | None = None,
        *,
        head_lines: int = HEAD_LINES,
        banner_release: str | None = None,
    ) -> None:
        """``head_lines``: lines at the start that are always read (0 for a scan that
        starts in the middle of a log, which also skips the cut-first-line check);
        ``banner_release``: a "Linux version" already seen before this scan's start."""
        self._release_hint = kernel_release
        self.head_lines = head_lines
        self._banner_release = banner_release
        self._report: _Report | None = None
        #: Reports still open behind the current one (interleaving CPUs).
        self._parked: list[_Report] = []
        #: Set while feeding text that was split or rejoined.
        self._reconstructing = False
        self._partial: _Partial | None = None
        self._pending: _Pending | None = None
        self._prev: str | None = None
        self._out: list[KernelEvent] = []
        self._first: Stripped | None = None
        self._first_cut = False
        self._first_decided = False
        self.lines_seen = 0

    # --- driver interface ------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while every line must be fed (a report, a wrapped header or a kill pending)."""
        return (
            self._report is not None
            or self._partial is not None
            or self._pending is not None
            or bool(self._parked)
        )

    @property
    def banner_release(self) -> str | None:
        """The release of the last "Linux version" banner read so far."""
        return self._banner_release

    @property
    def first_line_cut(self) -> bool:
        """Whether the log's first line looked cut (known once line 2 was read)."""
        return self._first_cut

    def note_prev(self, raw: str | bytes | bytearray) -> None:
        """Remember a line that was skipped, when it is the one just before a marker line."""
        self._prev = _decode(raw)

    def feed_busy(
        self, buf: bytes | bytearray, pos: int, end: int, lineno: int
    ) -> tuple[int, int, list[KernelEvent]]:
        """Feed the whole lines of buf[pos:end] one by one for as long as each must be
        fed (a report is open, or in the head lines), as ``feed`` would be called for
        them. Returns the offset and line count where it stopped, and the events."""
        events: list[KernelEvent] = []
        find = buf.find
        head = self.head_lines
        process = self._process
        block = _Block()
        while pos < end and (
            self._report is not None
            or self._partial is not None
            or self._pending is not None
            or self._parked
            or lineno < head
        ):
            if (
                self._report is not None
                and lineno >= 2
                and not self._parked
                and self._partial is None
                and self._pending is None
                and pos >= block.unusable_to
            ):
                at, lineno = self._feed_block(block, buf, pos, end, lineno, events)
                if at > pos:
                    pos = at
                    continue
            nl = find(b"\n", pos, end)
            if nl < 0:
                nl = end
            lineno += 1
            if nl - pos <= LINE_CAP:  # what _decode does, for a line without its "\n"
                line = buf[pos:nl].decode("utf-8", "replace")
                if line[-1:] == "\r":
                    line = line[:-1]
            else:
                line = _decode(buf[pos:nl])
            pos = nl + 1
            self.lines_seen = lineno
            report = self._report
            if (
                report is not None
                and lineno > 2
                and not self._parked
                and self._partial is None
                and self._pending is None
                and "\x00" not in line
                and "\x1b" not in line
                and "\r" not in line
            ):
                # The common case inside a report: one untagged report open and a plain
                # line. What _process would do, without its general steps: a line that
                # needs any of them (a tag, a glued message, a header) goes there.
                stripped = strip_prefix(line)
                text = stripped.text
                if (
                    stripped.is_kernel
                    and stripped.caller is None
                    and not (len(text) > 8 and _glue_at(text))
                    and "Linux version " not in text
                    and not kp.has_marker(text)
                ):
                    self._add_line(report, lineno, stripped.timestamp, text)
                    self._prev = line
                    if self._out:
                        events += self._release()
                    continue
            elif lineno > head and not self.busy and not kp.has_marker(line):
                self._prev = line
                continue
            process(lineno, line)
            self._prev = line
            if self._out:
                events += self._release()
        return pos, lineno, events

    def _feed_block(
        self,
        block: _Block,
        buf: bytes | bytearray,
        pos: int,
        end: int,
        lineno: int,
        events: list[KernelEvent],
    ) -> tuple[int, int]:
        """Feed the plain lines from buf[pos] on to the one open report, as feed_busy's
        plain-line shortcut would, reading a stretch of them as one string: one pattern
        per line gives prefix and text, and one per run of OOM task-list lines gives
        them all. Returns the offset and line count where it stopped (the first line
        that needs the general path, or the report's end)."""
        text = block.text
        if text is None or not block.start <= pos < block.end:
            if not block.load(buf, pos, end):
                return pos, lineno
            text = block.text
            assert text is not None
        base = block.start
        p = pos - base
        n = len(text)
        report = self._report
        assert report is not None
        match_line = BLOCK_LINE_RE.match
        add_line = self._add_line
        last = -1  # start of the last line fed (in text)
        while p < n:
            if p >= block.safe_to and not block.advance(p):
                break
            m = match_line(text, p)
            if m is None:
                break
            q = m.end()
            if q > block.safe_to or q - p > LINE_CAP + 1:
                break
            uptime, date, message = m.group(1, 2, 3)
            if len(message) > 8 and _glue_at(message):
                break
            if message[:1] == "[" and block.tasks_ok and _TASK_RE.fullmatch(message):
                items = _TASK_LINES_RE.findall(text, p, block.safe_to)
                run = next((at for at, item in enumerate(items) if not item[2]), len(items))
                if run:
                    last, lineno = self._add_tasks(report, text, p, items[:run], lineno)
                    p = text.find("\n", last) + 1
                    if self._out:
                        events += self._release()
                    if self._report is not report:
                        break
                    continue
            lineno += 1
            self.lines_seen = lineno
            add_line(report, lineno, uptime if uptime is not None else date, message)
            last = p
            p = q
            if self._out:
                events += self._release()
            if self._report is not report:
                break
        if last >= 0:
            self._prev = text[last : text.find("\n", last)]
        return base + p, lineno

    def _add_tasks(
        self, report: _Report, text: str, start: int, items: list[tuple[str, str, str]], lineno: int
    ) -> tuple[int, int]:
        """Add the task-list lines from text[start] on (``items``: stamp, date and text
        of each) to ``report`` as _add_line would, one by one, and close it at its span
        limit. Returns where the last line fed starts and the line count."""
        limit = CONTEXT_CAP if report.kind == "page_alloc_failure" else OOM_SPAN_CAP
        count = min(len(items), limit - report.span)
        if report.gap:
            self._add_context(report, report.gap)
            report.gap = []
        context = report.context
        room = min(count, CONTEXT_CAP - len(context))
        if room > 0:
            context.extend(
                [
                    LogLine(lineno + 1 + i, uptime or date, message)
                    for i, (uptime, date, message) in enumerate(items[:room])
                ]
            )
        report.span += count
        lineno += count
        self.lines_seen = lineno
        last = start
        for _ in range(count - 1):
            last = text.find("\n", last) + 1
        if report.span >= limit:
            self._close_one(report)
        return last, lineno

    def feed(
        self, lineno: int, raw: str | bytes | bytearray
    ) -> tuple[KernelEvent, ...] | list[KernelEvent]:
        """Process one line (terminator optional); returns the events it completed."""
        line = _decode(raw)
        self.lines_seen = lineno
        if not self.busy and lineno > self.head_lines and not kp.has_marker(line):
            self._prev = line
            return _NO_EVENTS
        self._process(lineno, line)
        self._prev = line
        if not self._out:
            return _NO_EVENTS
        return self._release()

    def _release(self, everything: bool = False) -> list[KernelEvent]:
        """Completed events in header order: none is handed out while an earlier
        report (parked behind an interleaving CPU) is still open."""
        out = self._out
        if len(out) > 1:
            out.sort(key=lambda e: e.line)
        if everything:
            self._out = []
            return out
        open_lines = [r.line for r in self._parked]
        if self._report is not None:
            open_lines.append(self._report.line)
        if self._partial is not None:
            open_lines.append(self._partial.line)
        if self._pending is not None:
            open_lines.append(self._pending.line)
        if not open_lines:
            self._out = []
            return out
        barrier = min(open_lines)
        cut = 0
        while cut < len(out) and out[cut].line < barrier:
            cut += 1
        ready, self._out = out[:cut], out[cut:]
        return ready

    def cut(self) -> list[KernelEvent]:
        """Close everything open now, as a new header would; the events it completes."""
        if self._partial is not None:
            self._emit_incomplete(self._partial)
            self._partial = None
        self._close_all()
        self._flush_pending()
        return self._release(everything=True)

    def finish(
        self, last_partial: str | bytes | bytearray | None, complete_lines: int
    ) -> tuple[list[KernelEvent], bool]:
        """Flush open state at the end of the log.

        ``complete_lines`` is how many terminated lines there were; ``last_partial`` is
        a final line that had no terminator. Returns the remaining events and whether
        the log looked cut.
        """
        self.lines_seen = complete_lines
        cut_end = False
        prev_had_prefix = self._prev is not None and strip_prefix(_clean(self._prev)).has_prefix
        if last_partial:
            lineno = self.lines_seen + 1
            self.lines_seen = lineno
            line = _decode(last_partial)
            if line.strip():
                self._process(lineno, line)
                cut_end = self._looks_cut_at_end(line, prev_had_prefix)
                self._prev = line
        if self._partial is not None:
            self._emit_incomplete(self._partial)
            self._partial = None
        self._close_all()
        self._flush_pending()
        if self.head_lines:
            self._decide_first(None)
        return self._release(everything=True), cut_end or self._first_cut

    # --- per line ----------------------------------------------------------------

    def _process(self, lineno: int, line: str) -> None:
        line = _clean(line)
        if "\r" in line:
            for segment in line.split("\r"):
                if segment:
                    self._segment(lineno, segment)
            return
        self._segment(lineno, line)

    def _segment(self, lineno: int, line: str, depth: int = 0) -> None:
        stripped = strip_prefix(line)
        if lineno <= 2 and self.head_lines and depth == 0:
            self._track_first(lineno, line, stripped)
        if not stripped.is_kernel:
            return
        text = stripped.text
        glued = _glue_at(text) if depth < 8 and len(text) > 8 else 0
        if glued:
            # Two messages in one line: the first keeps this line's prefix, the
            # second carries its own (or none).
            head = text[:glued]
            saved, self._reconstructing = self._reconstructing, True
            try:
                if head.strip():
                    self._message(lineno, stripped._replace(text=head))
                self._segment(lineno, text[glued:], depth + 1)
            finally:
                self._reconstructing = saved
            return
        self._message(lineno, stripped)

    def _message(self, lineno: int, stripped: Stripped) -> None:
        text = stripped.text
        if "Linux version " in text:
            release = kp.banner_release(text)
            if release is not None:
                self._banner_release = release
        if self._partial is not None:
            partial, self._partial = self._partial, None
            if not stripped.has_prefix and text.strip() and self._join(partial, text):
                return
            self._emit_incomplete(partial)
        if kp.has_marker(text) and self._header(lineno, stripped):
            return
        self._other(lineno, stripped)

    def _begin_header(self, lineno: int, stripped: Stripped, complete: bool) -> bool:
        """Close or park what was open; False when the header waits for a continuation."""
        self._set_aside(stripped.caller)
        self._flush_pending()
        if not complete:
            self._partial = _Partial(lineno, stripped, self._prev)
            return False
        return True

    def _header(self, lineno: int, stripped: Stripped) -> bool:
        """Handle an event header; False when the line only looked like one."""
        text = stripped.text
        if "page allocation failure" in text:
            header = kp.parse_page_alloc(text)
            if header is None:
                return False
            if self._begin_header(lineno, stripped, header.complete):
                self._open_page_alloc(
                    lineno, stripped.timestamp, header, self._prev, stripped.text, stripped.caller
                )
            return True
        if "invoked oom-killer" in text:
            oom = kp.parse_oom_invoked(text)
            if oom is None:
                return False
            if self._begin_header(lineno, stripped, oom.complete):
                self._report = self._new_report(
                    "oom_invoked", lineno, stripped.timestamp, oom, stripped.text, stripped.caller
                )
            return True
        if "Killed process" in text:
            kill = kp.parse_killed(text)
            if kill is None:
                return False
            memcg_report = self._report is not None and self._report.memcg
            self._close_all()
            # The sacrifice line names the parent; when a child was killed instead the
            # "Killed process" line names the child. Either way it is one kill.
            pending = self._pending or self._pending_from_prev()
            self._pending = None
            score = pending.kill.score if pending and pending.kill.pid == kill.pid else None
            memcg = kill.memcg or memcg_report or (pending is not None and pending.kill.memcg)
            self._out.append(
                _kill_event(
                    lineno,
                    stripped.timestamp,
                    kill,
                    memcg=memcg,
                    score=score,
                    text=stripped.text,
                    reconstructed=self._reconstructing,
                )
            )
            return True
        if "ill process" in text:
            sacrifice = kp.parse_kill_sacrifice(text)
            if sacrifice is None:
                return False
            # The choice of victim: the "Killed process" line normally follows; when it
            # does not (2.6.2x-3x, or a cut excerpt), this line is the kill.
            memcg = self._report is not None and self._report.memcg
            self._close_all()
            if self._pending is not None and self._pending.kill.pid == sacrifice.pid:
                return True  # the same victim chosen again before it died: one kill
            self._flush_pending()
            if memcg and not sacrifice.memcg:
                sacrifice = kp.KillLine(sacrifice.pid, sacrifice.name, True, score=sacrifice.score)
            self._pending = _Pending(
                lineno,
                stripped.timestamp,
                sacrifice,
                text=text,
                reconstructed=self._reconstructing,
                counted_to=lineno,
            )
            return True
        if "balloon" in text:
            message = kp.parse_balloon(text)
            if message is None:
                return False
            self._close_all()
            self._flush_pending()
            self._out.append(
                BalloonMessage(lineno, stripped.timestamp, message, self._reconstructing)
            )
            return True
        return False

    def _other(self, lineno: int, stripped: Stripped) -> None:
        text = stripped.text
        pending = self._pending
        if pending is not None and pending.counted_to < lineno:
            # Lines, not segments: a line split in two still waits one line.
            pending.counted_to = lineno
            pending.waited += 1
            if pending.waited > PENDING_KILL_WINDOW:
                self._flush_pending()
        if self._parked or stripped.caller is not None:
            self._age_parked()
            report = self._route(stripped)
        else:
            report = self._report  # the common case: one report, untagged lines
        if report is not None:
            self._add_line(report, lineno, stripped.timestamp, text)

    def _add_line(self, report: _Report, lineno: int, timestamp: str | None, text: str) -> None:
        """A line (not a header) that belongs to ``report``: context, facts, or a gap."""
        report.span += 1
        if not text.strip():
            return
        if kp.is_continuation(text):
            if report.gap:
                self._add_context(report, report.gap)
                report.gap = []
            if len(report.context) < CONTEXT_CAP:
                report.context.append(LogLine(lineno, timestamp, text.rstrip()))
            if "*" in text and kp.is_buddy_line(text):
                report.buddy.append(text.strip())
            self._note_facts(report, text)
        else:
            report.gap.append(LogLine(lineno, timestamp, text.rstrip()))
            if len(report.gap) > GAP_TOLERANCE:
                report.gap = []
                self._close_one(report)
                return
        limit = CONTEXT_CAP if report.kind == "page_alloc_failure" else OOM_SPAN_CAP
        if report.span >= limit:
            self._close_one(report)

    def _route(self, stripped: Stripped) -> _Report | None:
        """The open report a non-header line belongs to (None: it belongs to none)."""
        report = self._report
        key = stripped.caller
        if key is not None and (report is None or report.caller_key != key):
            for index, parked in enumerate(self._parked):
                if parked.caller_key == key:
                    # That CPU's report continues: it becomes the current one again.
                    del self._parked[index]
                    if report is not None:
                        self._parked.append(report)
                    self._report = parked
                    return parked
            if report is not None and report.caller_key is not None:
                return None  # another CPU's line: not this report's, and not a gap
            return report
        if self._parked and "omm:" in stripped.text:
            dump = kp.parse_dump_line(stripped.text)
            if dump is not None:
                return self._owner_of(dump, report)
        return report

    def _owner_of(self, dump: kp.DumpLine, current: _Report | None) -> _Report | None:
        """Untagged interleaving: the waiting report whose task printed this dump line."""
        ordered = [current, *reversed(self._parked)]
        candidates = [r for r in ordered if r is not None and r.dump is None]
        for wanted in (dump.comm, ""):
            for report in candidates:
                if _process_of(report) == wanted:
                    return report
        return current

    @staticmethod
    def _add_context(report: _Report, entries: list[LogLine]) -> None:
        for entry in entries:
            if len(report.context) < CONTEXT_CAP:
                report.context.append(entry)
            text = entry.text
            if "*" in text and kp.is_buddy_line(text):
                report.buddy.append(text.strip())

    @staticmethod
    def _note_facts(report: _Report, text: str) -> None:
        if report.dump is None and (text.startswith(("CPU", "Pid")) or "omm:" in text):
            dump = kp.parse_dump_line(text)
            if dump is not None:
                report.dump = dump
        if report.release is None and (text.startswith(("CPU", "Pid")) or "Comm:" in text):
            report.release = kp.dump_release(text)
            if kp.is_old_dump_line(text):
                report.old_dump = True
        if "+0x" in text and len(report.frames) < TRACE_CAP:
            frame = kp.trace_function(text)
            if frame is not None:
                report.frames.append(frame)
        if report.kind == "oom_invoked":
            if "oom-kill:constraint=" in text:
                match = _CONSTRAINT_RE.search(text)
                if match is not None:
                    report.constraint = match["c"]
                    report.memcg = report.memcg or match["c"] == "CONSTRAINT_MEMCG"
            if (
                "killed as a result of limit" in text
                or "memory: usage" in text
                or "mem_cgroup_out_of_memory" in text
            ):
                report.memcg = True

    # --- opening and closing ------------------------------------------------------

    def _new_report(
        self,
        kind: str,
        lineno: int,
        timestamp: str | None,
        header: kp.PageAllocHeader | kp.OomHeader,
        text: str,
        caller_key: str | None,
        suppressed: int = 0,
    ) -> _Report:
        return _Report(
            kind,
            lineno,
            timestamp,
            header,
            suppressed,
            text=text,
            caller_key=caller_key,
            banner=self._banner_release,
            reconstructed=self._reconstructing,
        )

    def _open_page_alloc(
        self,
        lineno: int,
        timestamp: str | None,
        header: kp.PageAllocHeader,
        prev: str | None,
        text: str,
        caller_key: str | None = None,
    ) -> None:
        suppressed = 0
        if prev is not None and "callbacks suppressed" in prev:
            suppressed = kp.parse_suppressed(strip_prefix(_clean(prev)).text) or 0
        self._report = self._new_report(
            "page_alloc_failure", lineno, timestamp, header, text, caller_key, suppressed
        )

    def _join(self, partial: _Partial, continuation: str) -> bool:
        """Try the wrapped header with its continuation; True when that made a header."""
        head = partial.stripped
        for glue in ("", " "):
            text = head.text.rstrip() + glue + continuation.strip()
            pa = kp.parse_page_alloc(text) if "page allocation failure" in text else None
            oom = kp.parse_oom_invoked(text) if "invoked oom-killer" in text else None
            if (pa is not None and pa.complete) or (oom is not None and oom.complete):
                joined = Stripped(
                    head.timestamp, text, head.is_kernel, head.has_prefix, head.caller
                )
                saved, self._prev = self._prev, partial.prev
                try:
                    return self._header(partial.line, joined)
                finally:
                    self._prev = saved
        return False

    def _emit_incomplete(self, partial: _Partial) -> None:
        """A header that never completed still reports a failure, with what it printed.

        The report is opened as usual, so the lines after it become its context.
        """
        text = partial.stripped.text
        pa = kp.parse_page_alloc(text)
        if pa is not None:
            # Names cut short: the complete ones are kept (printed names mean a 4.6+
            # kernel, so decoding the hex with a guessed layout would be worse).
            self._open_page_alloc(
                partial.line,
                partial.stripped.timestamp,
                pa,
                partial.prev,
                text,
                partial.stripped.caller,
            )
            return
        oom = kp.parse_oom_invoked(text)
        if oom is not None:
            self._report = self._new_report(
                "oom_invoked",
                partial.line,
                partial.stripped.timestamp,
                oom,
                text,
                partial.stripped.caller,
            )

    def _set_aside(self, new_key: str | None) -> None:
        """Make room for a new header: park the open report when CPUs interleave.

        With caller tags, another CPU's report stays open (a report of the same
        caller is finished). Without tags, a report that printed nothing yet but
        its header waits for its dump line; anything further along is finished.
        """
        report = self._report
        if report is None:
            return
        self._report = None
        tagged = report.caller_key is not None and new_key is not None
        if (tagged and report.caller_key != new_key) or (
            not tagged and report.caller_key is None and new_key is None and not report.context
        ):
            for index, parked in enumerate(self._parked):
                if tagged and parked.caller_key == new_key:
                    del self._parked[index]
                    self._emit(parked)
                    break
            self._parked.append(report)
            while len(self._parked) > MAX_PARKED:
                self._emit(self._parked.pop(0))
            return
        if tagged:
            for index, parked in enumerate(self._parked):
                if parked.caller_key == new_key:
                    del self._parked[index]
                    self._emit(parked)
                    break
        self._emit(report)

    def _age_parked(self) -> None:
        """Untagged parked reports wait a few lines for their dump line, then close."""
        if not self._parked:
            return
        keep: list[_Report] = []
        for parked in self._parked:
            parked.parked_for += 1
            if parked.caller_key is None and (
                parked.dump is not None or parked.parked_for > PARK_WINDOW
            ):
                self._emit(parked)
            else:
                keep.append(parked)
        self._parked = keep

    def _close_one(self, report: _Report) -> None:
        if report is self._report:
            self._report = None
        elif report in self._parked:
            self._parked.remove(report)
        self._emit(report)

    def _close_all(self) -> None:
        """Close the open report and every parked one, in header order."""
        reports = [*self._parked, *([self._report] if self._report is not None else [])]
        self._parked = []
        self._report = None
        for report in sorted(reports, key=lambda r: r.line):
            self._emit(report)

    def _emit(self, report: _Report) -> None:
        if report.kind == "page_alloc_failure":
            assert isinstance(report.header, kp.PageAllocHeader)
            self._out.append(self._page_alloc_event(report, report.header))
        else:
            assert isinstance(report.header, kp.OomHeader)
            self._out.append(self._oom_event(report, report.header))

    def _flush_pending(self) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._out.append(
                _kill_event(
                    pending.line,
                    pending.timestamp,
                    pending.kill,
                    text=pending.text,
                    reconstructed=pending.reconstructed,
                )
            )

    def _pending_from_prev(self) -> _Pending | None:
        """The sacrifice line right before a 'Killed process' line read while idle."""
        if self._prev is None or "ill process" not in self._prev:
            return None
        stripped = strip_prefix(_clean(self._prev))
        kill = kp.parse_kill_sacrifice(stripped.text)
        if kill is None:
            return None
        return _Pending(self.lines_seen - 1, stripped.timestamp, kill)

    # --- events ---------------------------------------------------------------

    def _era(self, report: _Report) -> str:
        for release in (report.release, report.banner, self._release_hint, self._banner_release):
            era = gfp.era_for_release(release)
            if era is not None:
                return era
        return gfp.DEFAULT_ERA

    def _flags(
        self, report: _Report, mask: str | None, names: str | None
    ) -> tuple[tuple[str, ...], GfpFlagsSource, str | None]:
        if names is not None:
            return gfp.split_printed(names), "printed", None
        value = gfp.parse_mask(mask) if mask else None
        if value is None:
            return (), "decoded", None
        era = self._era(report)
        return gfp.decode_mask(value, era), "decoded", era

    def _page_alloc_event(self, report: _Report, header: kp.PageAllocHeader) -> PageAllocFailure:
        flags, source, era = self._flags(report, header.gfp_mask, header.names)
        dump = report.dump
        return PageAllocFailure(
            line=report.line,
            timestamp=report.timestamp,
            process=_process_of(report),
            order=header.order,
            gfp_mask=header.gfp_mask,
            gfp_flags=flags,
            gfp_flags_source=source,
            context=tuple(report.context),
            buddy_lines=tuple(report.buddy),
            callbacks_suppressed=report.suppressed,
            kernel_version=report.release,
            gfp_era=era,
            text=report.text,
            kernel_release=report.release or report.banner,
            call_trace=tuple(name for name, _ in report.frames),
            caller=kp.first_caller(report.frames),
            cpu=dump.cpu if dump else None,
            pid=dump.pid if dump else None,
            opportunistic=gfp.is_opportunistic(flags, header.gfp_mask),
            reconstructed=report.reconstructed,
        )

    def _oom_event(self, report: _Report, header: kp.OomHeader) -> OomInvoked:
        flags: tuple[str, ...] = ()
        source: GfpFlagsSource | None = None
        era = None
        if header.gfp_mask is not None:
            flags, source, era = self._flags(report, header.gfp_mask, header.names)
        dump = report.dump
        return OomInvoked(
            line=report.line,
            timestamp=report.timestamp,
            process=_process_of(report),
            gfp_mask=header.gfp_mask,
            order=header.order,
            oom_score_adj=header.oom_score_adj,
            gfp_flags=flags,
            gfp_flags_source=source,
            gfp_era=era,
            oom_adj=header.oom_adj,
            constraint=report.constraint,
            memcg=report.memcg,
            kernel_version=report.release,
            context=tuple(report.context),
            buddy_lines=tuple(report.buddy),
            text=report.text,
            kernel_release=report.release or report.banner,
            call_trace=tuple(name for name, _ in report.frames),
            caller=kp.first_caller(report.frames),
            cpu=dump.cpu if dump else None,
            pid=dump.pid if dump else None,
            reconstructed=report.reconstructed,
        )

    # --- truncation ---------------------------------------------------------------

    def _track_first(self, lineno: int, line: str, stripped: Stripped) -> None:
        if lineno == 1:
            # journalctl starts with "-- Logs begin at ... --" (or "-- Boot ... --").
            if not line.strip() or line.startswith("-- "):
                self._first_decided = True
                return
            self._first = stripped
            if looks_like_cut_start(line):
                self._first_cut = True
                self._first_decided = True
        elif lineno == 2:
            self._decide_first(stripped)

    def _decide_first(self, second: Stripped | None) -> None:
        if self._first_decided:
            return
        self._first_decided = True
        first = self._first
        if first is None or second is None:
            return
        if not first.has_prefix and second.has_prefix and second.timestamp is not None:
            self._first_cut = True

    def _looks_cut_at_end(self, line: str, prev_had_prefix: bool) -> bool:
        stripped = strip_prefix(_clean(line))
        if prev_had_prefix and not stripped.has_prefix:
            return True
        if self._partial is not None:
            return True
        text = stripped.text
        return text.count("(") > text.count(")") or text.count("[") > text.count("]")


def _process_of(report: _Report) -> str:
    """The header's process name, or the dump line's task when the header lost it."""
    process = report.header.process
    if (not process or process.startswith(("[", "<"))) and report.dump is not None:
        return report.dump.comm
    return process


def _kill_event(
    line: int,
    timestamp: str | None,
    kill: kp.KillLine,
    *,
    memcg: bool | None = None,
    score: int | None = None,
    text: str = "",
    reconstructed: bool = False,
) -> OomKill:
    return OomKill(
        line=line,
        timestamp=timestamp,
        victim_pid=kill.pid,
        victim_process=kill.name,
        total_vm_kib=kill.total_vm_kib,
        anon_rss_kib=kill.anon_rss_kib,
        file_rss_kib=kill.file_rss_kib,
        shmem_rss_kib=kill.shmem_rss_kib,
        memcg=kill.memcg if memcg is None else memcg,
        uid=kill.uid,
        pgtables_kib=kill.pgtables_kib,
        oom_score_adj=kill.oom_score_adj,
        score=kill.score if score is None else score,
        text=text,
        reconstructed=reconstructed,
    )


def _decode(raw: str | bytes | bytearray) -> str:
    """Cap the line and drop its terminator; bytes are decoded leniently."""
    if isinstance(raw, bytes | bytearray) and len(raw) <= LINE_CAP:  # from the block driver
        line = raw.decode("utf-8", "replace")
    elif isinstance(raw, str):
        line = raw[:LINE_CAP] if len(raw) > LINE_CAP else raw
    elif len(raw) <= LINE_CAP and not isinstance(raw, memoryview):
        line = raw.decode("utf-8", "replace")
    else:
        line = bytes(raw[:LINE_CAP]).decode("utf-8", "replace")
    last = line[-1:]
    if last == "\n" or last == "\r":
        if last == "\n":
            line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    return line


def _clean(line: str) -> str:
    if "\x00" in line:
        line = line.replace("\x00", "")
    if "\x1b" in line:
        line = _ANSI_RE.sub("", line)
    return line
