"""Kernel log parsing: page allocation failures, OOM kills and Xen balloon messages.

Three entry points share one state machine (kernscan.Scanner):

* ``parse_kernlog(text)`` for a section already in memory (str or bytes);
* ``iter_kernlog_events(lines)`` for any iterable of lines, streamed;
* ``iter_kernlog_chunks(chunks)`` for raw byte blocks of a large file. It finds
  candidate lines with ``bytes.find`` on a few marker strings and counts the
  newlines it skips with ``bytes.count``, so Python only ever looks at the few
  lines around events. Results (events, line numbers) are the same as for the
  line-by-line path: the scanner ignores marker-less lines while no report is
  open, and the chunk driver feeds it every line while one is.

Line numbers are 1-based and count ``\\n`` terminators, as grep and wc do; a
lone ``\\r`` inside a line does not start a new line number.

``parse_kernlog`` keeps only the first and last ``keep_per_kind`` events of each
kind (a guest may print millions) while counting all of them exactly. When a log
holds far more reports than are kept, each marker line is counted from its own
line (and, for a hex-only GFP mask, the dump line after it), and only the kept
reports are read line by line (a run of failure headers with nothing between
them but report lines is counted at once: one pattern over their lines joined
gives the texts, and each different header is parsed and categorised once).
Time then grows with the number of reports, not
their length, and memory with the cap. Lines only the line-by-line scanner
reads right (glued messages, wrapped headers, carriage returns) send the whole
log down the ordinary path; property tests hold both paths to the same result.

Parsing a log never raises: whatever cannot be understood is skipped.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator

from xenaudit.parsers import gfp
from xenaudit.parsers import kernpatterns as kp
from xenaudit.parsers.kernevents import (
    BalloonMessage,
    EventCounts,
    KernelEvent,
    KernelLog,
    OomInvoked,
    OomKill,
    PageAllocFailure,
)
from xenaudit.parsers.kernpatterns import M_PAGE_ALLOC, MARKERS_BYTES
from xenaudit.parsers.kernscan import (
    LINE_CAP,
    PENDING_KILL_WINDOW,
    Scanner,
    _glue_at,
    _kill_event,
)
from xenaudit.parsers.lazyre import lazy
from xenaudit.parsers.lineprefix import JOINED_TEXTS_RE, strip_prefix
from xenaudit.parsers.markers import count_lines, find_hits, line_counter

__all__ = [
    "DEFAULT_KEEP_PER_KIND",
    "ChunkScan",
    "EventKeeper",
    "ScanSummary",
    "iter_kernlog_chunks",
    "iter_kernlog_events",
    "parse_kernlog",
]

#: A line longer than this without a newline keeps only its head while buffering.
_CARRY_CAP = 1 << 20
#: Events of each kind kept from the start and from the end of a log by default.
DEFAULT_KEEP_PER_KIND = 10
#: A log takes the dense path when some marker has more than twice this many
#: lines beyond the cap: below that, reading everything costs little more.
_EDGE_MARGIN = 2


class ScanSummary:
    """Filled in when a streaming scan ends (the iterator is exhausted)."""

    __slots__ = ("lines_read", "truncated")

    def __init__(self, lines_read: int = 0, truncated: bool = False) -> None:
        self.lines_read = lines_read
        self.truncated = truncated

    def __repr__(self) -> str:
        return f"ScanSummary(lines_read={self.lines_read}, truncated={self.truncated})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScanSummary):
            return NotImplemented
        return (self.lines_read, self.truncated) == (other.lines_read, other.truncated)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was


def parse_kernlog(
    text: str | bytes,
    source: str = "kernlog",
    *,
    kernel_release: str | None = None,
    keep_per_kind: int | None = None,
) -> KernelLog:
    """Parse a whole kernel log.

    ``kernel_release`` (e.g. from uname -r) helps decode hex-only GFP masks when
    the log itself does not name the kernel version. ``keep_per_kind`` caps the
    events kept (None, the default, keeps all; the audit passes the inventory's
    ``kernlog_keep_events``); ``KernelLog.counts`` is exact either way.
    """
    del source
    buf = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    keeper = EventKeeper(keep_per_kind)
    summary = ScanSummary()
    hits = find_hits(buf)
    if keep_per_kind is None or not _scan_edges(buf, hits, kernel_release, keeper, summary):
        scan = ChunkScan(Scanner(kernel_release))
        scan.known_hits = (buf, hits)
        for event in scan.run([buf]):
            keeper.add(event)
        summary.lines_read = scan.scanner.lines_seen
        summary.truncated = scan.truncated
    return KernelLog(
        events=keeper.events(),
        lines_read=summary.lines_read,
        truncated=summary.truncated,
        counts=keeper.counts(),
        keep_per_kind=keep_per_kind,
    )


class EventKeeper:
    """Exact counts of every event, and the first and last N events of each kind."""

    def __init__(self, keep_per_kind: int | None) -> None:
        self.keep = keep_per_kind
        #: Kept events with their arrival number, so that order is kept exactly.
        self._first: dict[str, list[tuple[int, KernelEvent]]] = {}
        self._last: dict[str, deque[tuple[int, KernelEvent]]] = {}
        self._n = dict.fromkeys(EventCounts.__dataclass_fields__, 0)
        self._seq = 0

    def add(self, event: KernelEvent) -> None:
        self.count(event)
        self._seq += 1
        kind = event.kind
        first = self._first.setdefault(kind, [])
        if self.keep is None or len(first) < self.keep:
            first.append((self._seq, event))
            return
        last = self._last.get(kind)
        if last is None:
            last = self._last[kind] = deque(maxlen=self.keep)
        last.append((self._seq, event))

    def count(self, event: KernelEvent) -> None:
        n = self._n
        if isinstance(event, PageAllocFailure):
            n["page_alloc_failures"] += 1
            n["page_alloc_suppressed"] += max(0, event.callbacks_suppressed)
            if event.order >= 1:
                n["high_order"] += 1
            elif event.is_atomic:
                n["atomic_order0"] += 1
            else:
                n["reclaim_order0"] += 1
            n["opportunistic"] += event.opportunistic
        elif isinstance(event, OomInvoked):
            n["oom_invoked"] += 1
            n["oom_invoked_memcg"] += event.memcg
        elif isinstance(event, OomKill):
            n["oom_kills"] += 1
            n["oom_kills_memcg"] += event.memcg
        elif isinstance(event, BalloonMessage):
            n["balloon"] += 1

    def keep_event(self, event: KernelEvent) -> None:
        """Keep an event (within the caps) that is counted elsewhere."""
        self._seq += 1
        first = self._first.setdefault(event.kind, [])
        if self.keep is None or len(first) < self.keep:
            first.append((self._seq, event))
            return
        last = self._last.get(event.kind)
        if last is None:
            last = self._last[event.kind] = deque(maxlen=self.keep)
        last.append((self._seq, event))

    def add_counts(self, **extra: int) -> None:
        """Counts of events that were counted without being built (the middle of a storm)."""
        for name, value in extra.items():
            self._n[name] += value

    def events(self) -> tuple[KernelEvent, ...]:
        kept = [item for items in self._first.values() for item in items]
        kept += [item for items in self._last.values() for item in items]
        kept.sort(key=lambda item: (item[1].line, item[0]))
        return tuple(event for _, event in kept)

    def counts(self) -> EventCounts:
        return EventCounts(**self._n)


def _line_start(buf: bytes, pos: int) -> int:
    return buf.rfind(b"\n", 0, pos) + 1


def _scan_edges(
    buf: bytes,
    hits: list[tuple[int, int]],
    kernel_release: str | None,
    keeper: EventKeeper,
    summary: ScanSummary,
) -> bool:
    """Count a log dense with reports line by marker line; False when it is not
    dense (or holds lines that need the full scanner).

    Every marker line is counted from its own line (see _LightCounter). Only the
    first and last N events of each kind are built: a one-line event from its
    line, a report by running the scanner from the line before its header up to
    the next marker line.
    """
    assert keeper.keep is not None
    quota = keeper.keep + _EDGE_MARGIN
    starts: list[tuple[int, int, int]] = []  # (line start, marker, first hit offset)
    append = starts.append
    rfind = buf.rfind
    last_start = -1
    for pos, which in hits:
        start = rfind(b"\n", 0, pos) + 1
        if start != last_start:
            last_start = start
            append((start, which, pos))
    totals = Counter([which for _, which, _ in starts])
    if not any(n > 2 * quota for n in totals.values()) or b"\r" in buf:
        return False  # few reports; or carriage returns, which split lines in two
    light = _LightCounter(buf, kernel_release, None)
    # First pass: count every marker line; remember, per kind, the first and last
    # N events (one-line events built, reports as where to read them later).
    keep_n = keeper.keep
    first: dict[str, list[tuple[int, object]]] = {}
    last: dict[str, deque[tuple[int, object]]] = {}

    def remember(kind: str, order: int, item: object) -> None:
        head = first.setdefault(kind, [])
        if len(head) < keep_n:
            head.append((order, item))
        else:
            tail = last.get(kind)
            if tail is None:
                tail = last[kind] = deque(maxlen=keep_n)
            tail.append((order, item))

    line_pos = 0
    line_no = 0  # newlines before line_pos
    count = line_counter(buf)
    observe = light.observe
    built = light.built
    n_starts = len(starts)
    index = 0
    found: KernelEvent | str | None = None
    while index < n_starts:
        if found == "page_alloc_failure" and starts[index][1] == M_PAGE_ALLOC:
            # A run of failure headers after a failure header: counted together.
            stop = index + 1
            while stop < n_starts and starts[stop][1] == M_PAGE_ALLOC:
                stop += 1
            try:
                counted = light.count_run(starts, index, stop)
            except _NotPlain:
                return False
            if counted:
                banner = light.banner
                head = first.setdefault("page_alloc_failure", [])
                wanted = [*range(index, min(stop, index + keep_n - len(head)))]
                wanted += range(max(wanted[-1] + 1 if wanted else index, stop - keep_n), stop)
                for at in wanted:
                    start = starts[at][0]
                    line_no += count(line_pos, start)
                    line_pos = start
                    next_start = starts[at + 1][0] if at + 1 < n_starts else len(buf)
                    remember("page_alloc_failure", at, (start, next_start, line_no, banner))
                index = stop
                continue
        start = starts[index][0]
        line_no += count(line_pos, start)
        line_pos = start
        banner = light.banner
        try:
            found = observe(index, starts, line_no + 1)
        except _NotPlain:
            return False  # a line the scanner must take apart: read the whole log
        if built:
            for order, event in built:  # victim choices that no kill line followed
                remember(event.kind, order, event)
            built.clear()
        if isinstance(found, str):
            next_start = starts[index + 1][0] if index + 1 < n_starts else len(buf)
            remember(found, index, (start, next_start, line_no, banner))
        elif found is not None:
            remember(found.kind, index, found)
        index += 1
    light.finish()
    for order, event in light.built:
        remember(event.kind, order, event)
    # Second pass: build the kept reports by reading them, in log order.
    chosen = [item for items in first.values() for item in items]
    chosen += [item for items in last.values() for item in items]
    chosen.sort(key=lambda item: item[0])
    for _, item in chosen:
        if not isinstance(item, tuple):
            keeper.keep_event(item)  # type: ignore[arg-type]
            continue
        start, next_start, before_lines, banner = item
        origin = _line_start(buf, start - 1) if start > 0 else 0
        before = before_lines - (1 if origin < start else 0)
        scanner = Scanner(kernel_release, head_lines=0, banner_release=banner)
        scan = ChunkScan(scanner, emit_from=start - origin, line_base=before)
        for event in scan.run([buf[origin:next_start]]):
            keeper.keep_event(event)
    keeper.add_counts(**light.counts)
    summary.lines_read = count_lines(buf) + (0 if buf.endswith(b"\n") or not buf else 1)
    summary.truncated = _looks_truncated(buf, kernel_release)
    return True


def _looks_truncated(buf: bytes, kernel_release: str | None) -> bool:
    """The first/last-line cut checks of a full scan, from the first and last lines only."""
    head = Scanner(kernel_release)
    first_end = buf.find(b"\n")
    second_end = buf.find(b"\n", first_end + 1) if first_end >= 0 else -1
    complete = 0
    if first_end >= 0:
        head.feed(1, buf[:first_end])
        complete = 1
        if second_end >= 0:
            head.feed(2, buf[first_end + 1 : second_end])
            complete = 2
    head.finish(None, complete)
    if head.first_line_cut:
        return True
    if buf.endswith(b"\n") or not buf:
        return False
    cut = buf.rfind(b"\n")
    prev_start = buf.rfind(b"\n", 0, max(0, cut)) + 1
    tail = Scanner(kernel_release, head_lines=0)
    tail.feed(1, buf[prev_start:cut])
    _, truncated = tail.finish(buf[cut + 1 :], 1)
    return truncated


_MEMCG_SIGNS = (
    b"CONSTRAINT_MEMCG",
    b"killed as a result of limit",
    b"memory: usage",
    b"mem_cgroup_out_of_memory",
)
_DUMP_NEAR = 4096


class _NotPlain(Exception):
    """A marker line that only the line-by-line scanner reads right."""


class _LightCounter:
    """Count the events whose header lines lie in a stretch, without reading the rest.

    Each hit's own line is parsed like a header; a page-allocation failure's
    category also needs the kernel that wrote it (its dump line, found within the
    next few kilobytes before the next hit) and an OOM report's memcg scope needs
    the lines up to the next hit. That is everything the counts depend on.
    """

    def __init__(self, buf: bytes, kernel_release: str | None, banner: str | None) -> None:
        self.buf = buf
        self.hint = kernel_release
        self.banner = banner
        self.counts = dict.fromkeys(EventCounts.__dataclass_fields__, 0)
        self._oom_memcg = False  # the last OOM report hit a cgroup limit
        self._pending: kp.KillLine | None = None  # a victim choice awaiting its kill line
        self._pending_line = 0
        self._pending_headers = 0  # header lines since the choice (they do not count as waiting)
        self._pending_event: tuple[int, KernelEvent] | None = None
        #: (marker line index, kill event) for choices that stood alone, for the caller.
        self.built: list[tuple[int, KernelEvent]] = []
        self._eras: dict[str, str] = {}
        self._headers: dict[str, kp.PageAllocHeader] = {}
        self._releases: dict[bytes, str | None] = {}
        self._era_cache: dict[tuple[str, str | None, str], tuple[bool, bool]] = {}
        #: Headers with printed flag names: their count category, whatever the kernel.
        self._fixed: dict[kp.PageAllocHeader, tuple[str, bool]] = {}

    def observe(
        self, index: int, starts: list[tuple[int, int, int]], lineno: int
    ) -> KernelEvent | str | None:
        """Count the marker line ``starts[index]``: the kind of report it opens
        ("page_alloc_failure", "oom_invoked"), the one-line event it is (a kill or a
        balloon message, built here), or None. Kills that a victim choice stood for
        are appended to ``built`` when they are settled."""
        buf = self.buf
        n = self.counts
        start, _which, pos = starts[index]
        stop = buf.find(b"\n", pos)
        stop = len(buf) if stop < 0 else stop
        raw = buf[start : min(stop, start + LINE_CAP)].decode("utf-8", "replace")
        stripped = strip_prefix(raw)
        text = stripped.text
        if not stripped.is_kernel or "\x00" in raw or "\x1b" in raw:
            raise _NotPlain
        header = self._headers.get(text)  # a storm repeats the same few headers
        if header is not None:
            # Read before: a complete header, and not glued (that depends on the text).
            if self._pending is not None:
                self._expire_pending(lineno)
            self._header_line()
            self._page_alloc(header, stop, starts, index, start)
            return "page_alloc_failure"
        if _glue_at(text):
            raise _NotPlain
        self._expire_pending(lineno)
        if "page allocation failure" in text:
            header = kp.parse_page_alloc(text)
            if header is None:
                return None
            if not header.complete:
                raise _NotPlain  # a wrapped header: the next line may complete it
            if len(self._headers) < 4096:
                self._headers[text] = header
            self._header_line()
            self._page_alloc(header, stop, starts, index, start)
            return "page_alloc_failure"
        next_pos = starts[index + 1][0] if index + 1 < len(starts) else len(buf)
        if "invoked oom-killer" in text:
            oom = kp.parse_oom_invoked(text)
            if oom is not None and not oom.complete:
                raise _NotPlain
            if oom is not None:
                self._header_line()
                body_end = min(next_pos, stop + 65536)
                self._oom_memcg = any(buf.find(sign, stop, body_end) >= 0 for sign in _MEMCG_SIGNS)
                n["oom_invoked"] += 1
                n["oom_invoked_memcg"] += self._oom_memcg
                return "oom_invoked"
            return None
        if "Killed process" in text:
            kill = kp.parse_killed(text)
            if kill is None:
                return None
            pending = self._pending
            memcg = kill.memcg or self._oom_memcg or (pending is not None and pending.memcg)
            score = pending.score if pending is not None and pending.pid == kill.pid else None
            self._pending = None
            self._pending_event = None  # the kill line is the event
            self._oom_memcg = False
            n["oom_kills"] += 1
            n["oom_kills_memcg"] += memcg
            return _kill_event(
                lineno, stripped.timestamp, kill, memcg=memcg, score=score, text=text
            )
        if "ill process" in text:
            sacrifice = kp.parse_kill_sacrifice(text)
            if sacrifice is None:
                return None
            if self._oom_memcg and not sacrifice.memcg:
                sacrifice = kp.KillLine(sacrifice.pid, sacrifice.name, True, score=sacrifice.score)
            self._oom_memcg = False
            pending = self._pending
            if pending is not None and pending.pid == sacrifice.pid:
                self._pending_headers += 1  # the same victim chosen again: one kill
                return None
            self._flush_pending()
            self._pending = sacrifice
            self._pending_line = lineno
            self._pending_headers = 0
            self._pending_event = (
                index,
                _kill_event(lineno, stripped.timestamp, sacrifice, text=text),
            )
            return None
        if "balloon" in text:
            message = kp.parse_balloon(text)
            if message is None:
                return None
            self._header_line()
            self._oom_memcg = False
            n["balloon"] += 1
            return BalloonMessage(lineno, stripped.timestamp, message)
        if "Linux version " in text:
            self.banner = kp.banner_release(text) or self.banner
        return None

    def _header_line(self) -> None:
        """A new report or message: as in the scanner, it settles a pending choice."""
        self._flush_pending()
        self._oom_memcg = False

    def _expire_pending(self, lineno: int) -> None:
        """The scanner gives up waiting for a "Killed process" line after a window."""
        if self._pending is None:
            return
        waited = lineno - self._pending_line - 1 - self._pending_headers
        if waited > PENDING_KILL_WINDOW:
            self._flush_pending()

    def _flush_pending(self) -> None:
        """A victim choice that no "Killed process" line followed is the kill itself."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        self.counts["oom_kills"] += 1
        self.counts["oom_kills_memcg"] += pending.memcg
        if self._pending_event is not None:
            self.built.append(self._pending_event)
        self._pending_event = None

    def finish(self) -> None:
        self._flush_pending()

    def count_run(self, starts: list[tuple[int, int, int]], begin: int, stop: int) -> bool:
        """Count the page-allocation-failure marker lines starts[begin:stop] at once, as
        observe would one by one right after another failure header (so nothing is
        pending). The texts of all the lines come from one pattern over the lines
        joined, and each different header is parsed once. False (nothing counted)
        when some line is not a plain, known shape: observe then reads them.
        """
        buf = self.buf
        find = buf.find
        run = starts[begin:stop]
        ends = [find(b"\n", pos) for _, _, pos in run]
        if -1 in ends:
            return False  # the last line, unterminated
        pieces = [buf[start:end] for (start, _, _), end in zip(run, ends, strict=True)]
        if max(map(len, pieces)) > LINE_CAP:
            return False
        joined = b"\n".join(pieces)
        if b"\x00" in joined or b"\x1b" in joined:
            raise _NotPlain
        texts = JOINED_TEXTS_RE.findall("\n" + joined.decode("utf-8", "replace"))
        if len(texts) != stop - begin:
            return False  # a line with another prefix: observe reads each
        tally = Counter(texts)
        headers = self._headers
        known: dict[str, kp.PageAllocHeader] = {}
        for text in tally:
            header = headers.get(text)
            if header is None:
                if _glue_at(text):
                    raise _NotPlain
                if "page allocation failure" not in text:
                    return False
                header = kp.parse_page_alloc(text)
                if header is None:
                    return False
                if not header.complete:
                    raise _NotPlain
                if len(headers) < 4096:
                    headers[text] = header
            known[text] = header
        # Everything is known: count. "N callbacks suppressed" just before a header.
        n = self.counts
        first_start = starts[begin][0]
        lookup = buf.rfind(b"\n", 0, first_start - 1) + 1 if first_start > 0 else 0
        starts_here = {start for start, _, _ in run}
        at = find(b"callbacks suppressed", lookup, starts[stop - 1][0])
        while at >= 0:
            line_end = find(b"\n", at)
            if line_end + 1 in starts_here:
                prev_start = buf.rfind(b"\n", 0, at) + 1
                prev = buf[prev_start:line_end].decode("utf-8", "replace")
                n["page_alloc_suppressed"] += kp.parse_suppressed(strip_prefix(prev).text) or 0
            at = find(b"callbacks suppressed", line_end + 1, starts[stop - 1][0])
        n["page_alloc_failures"] += stop - begin
        fixed = self._fixed
        hex_only: set[str] = set()
        for text, times in tally.items():
            header = known[text]
            settled = fixed.get(header)
            if settled is None and header.names is not None:
                settled = self._category(header, None)
            if settled is None:
                hex_only.add(text)
                continue
            category, opportunistic = settled
            n[category] += times
            n["opportunistic"] += opportunistic * times
        if hex_only:
            # The era of a hex-only mask comes from each report's own dump line.
            for offset, text in enumerate(texts):
                if text in hex_only:
                    header = known[text]
                    release = None
                    if header.gfp_mask:
                        at = begin + offset + 1
                        next_pos = starts[at][0] if at < len(starts) else len(buf)
                        release = self._release_after(ends[offset], next_pos)
                    category, opportunistic = self._category(header, release)
                    n[category] += 1
                    n["opportunistic"] += opportunistic
        return True

    def _page_alloc(
        self,
        header: kp.PageAllocHeader,
        stop: int,
        starts: list[tuple[int, int, int]],
        index: int,
        start: int,
    ) -> None:
        n = self.counts
        n["page_alloc_failures"] += 1
        buf = self.buf
        if start > 0:
            prev_start = buf.rfind(b"\n", 0, start - 1) + 1
            if buf.find(b"callbacks suppressed", prev_start, start) >= 0:
                prev = buf[prev_start : start - 1].decode("utf-8", "replace")
                n["page_alloc_suppressed"] += kp.parse_suppressed(strip_prefix(prev).text) or 0
        fixed = self._fixed.get(header)
        if fixed is not None:  # printed names: the category does not depend on the kernel
            category, opportunistic = fixed
            n[category] += 1
            n["opportunistic"] += opportunistic
            return
        release = None
        if header.names is None and header.gfp_mask:
            next_pos = starts[index + 1][0] if index + 1 < len(starts) else len(buf)
            release = self._release_after(stop, next_pos)
        category, opportunistic = self._category(header, release)
        n[category] += 1
        n["opportunistic"] += opportunistic

    def _release_after(self, stop: int, next_pos: int) -> str | None:
        """The release named by the dump line of the report whose header ends at
        ``stop`` (searched up to ``next_pos``, the next marker line)."""
        buf = self.buf
        release = None
        comm = buf.find(b"omm: ", stop, min(next_pos, stop + _DUMP_NEAR))
        if comm >= 0:
            line_start = buf.rfind(b"\n", 0, comm) + 1
            line_end = buf.find(b"\n", comm)
            line_end = len(buf) if line_end < 0 else line_end
            # Every report of one boot names the same kernel after "tainted":
            # the line from just before the first "ainted" decides the release
            # (no earlier "ainted" can), so it is the key, pid and task aside.
            taint = buf.find(b"ainted", comm, line_end)
            tail = buf[max(comm, taint - 5) : line_end] if taint >= 0 else None
            if tail is not None and tail in self._releases:
                release = self._releases[tail]
            else:
                match = _DUMP_RELEASE_RE.search(buf, line_start, line_end)
                if match is not None:
                    release = match.group(1).decode("ascii", "replace")
                if tail is not None and len(self._releases) < 256:
                    self._releases[tail] = release
        return release

    def _category(self, header: kp.PageAllocHeader, release: str | None) -> tuple[str, bool]:
        """The count a failure goes to (high order, atomic or reclaiming order 0), and
        whether it was opportunistic, for the kernel ``release`` wrote it."""
        era = self._eras.get(release) if release is not None else None
        if era is None:
            era = gfp.era_for_release(release) or gfp.era_for_release(self.banner)
            era = era or gfp.era_for_release(self.hint) or gfp.DEFAULT_ERA
            if release is not None:
                self._eras[release] = era
        key = (header.gfp_mask, header.names, era)
        cached = self._era_cache.get(key)
        if cached is None:
            if header.names is not None:
                flags = gfp.split_printed(header.names)
                source = "printed"
            else:
                value = gfp.parse_mask(header.gfp_mask) if header.gfp_mask else None
                flags = gfp.decode_mask(value, era) if value is not None else ()
                source = "decoded"
            probe = PageAllocFailure(0, None, "", 0, header.gfp_mask, flags, source)  # type: ignore[arg-type]
            cached = (probe.is_atomic, gfp.is_opportunistic(flags, header.gfp_mask))
            self._era_cache[key] = cached
        atomic, opportunistic = cached
        if header.order >= 1:
            category = "high_order"
        elif atomic:
            category = "atomic_order0"
        else:
            category = "reclaim_order0"
        if header.names is not None and len(self._fixed) < 4096:
            self._fixed[header] = (category, opportunistic)
        return category, opportunistic


_DUMP_RELEASE_RE = lazy(
    rb"(?:CPU: \d+ +PID: \d+ +Comm: |Pid: \d+, comm: )[^\n]*?"
    rb"(?:Not tainted|Tainted:[A-Z -]*?)\s+(\d+\.\d+[\w.+~-]*)"
)


def iter_kernlog_events(
    lines: Iterable[str | bytes],
    source: str = "kernlog",
    *,
    kernel_release: str | None = None,
    summary: ScanSummary | None = None,
) -> Iterator[KernelEvent]:
    """Stream events from lines (with or without their terminators), in input order.

    A last line without a terminator is checked for being cut (``summary.truncated``).
    """
    del source  # accepted for symmetry with the other parsers; logs never raise
    scanner = Scanner(kernel_release)
    held: str | bytes | None = None
    lineno = 0
    for line in lines:
        if held is not None:
            lineno += 1
            yield from scanner.feed(lineno, held)
        held = line
    last_partial = None
    if held is not None:
        if _ends_with_newline(held):
            lineno += 1
            yield from scanner.feed(lineno, held)
        else:
            last_partial = held
    events, truncated = scanner.finish(last_partial, lineno)
    yield from events
    if summary is not None:
        summary.lines_read = scanner.lines_seen
        summary.truncated = truncated


def iter_kernlog_chunks(
    chunks: Iterable[bytes | bytearray],
    source: str = "kernlog",
    *,
    kernel_release: str | None = None,
    summary: ScanSummary | None = None,
) -> Iterator[KernelEvent]:
    """Stream events from consecutive byte blocks of a log (any block size)."""
    del source
    scan = ChunkScan(Scanner(kernel_release))
    yield from scan.run(chunks)
    if summary is not None:
        summary.lines_read = scan.scanner.lines_seen
        summary.truncated = scan.truncated


class ChunkScan:
    """Scan byte blocks, optionally only a region of a larger file.

    With the defaults it scans everything. For a parallel scan each worker gets
    blocks starting at a line start ``origin`` (some way before its region, so its
    state has settled by then), keeps only events whose header lies in
    [emit_from, stop_at), and stops after ``stop_at`` as soon as no report is
    open. Line numbers are then relative to ``origin``; ``line_at_emit`` and
    ``line_at_stop`` (lines before those offsets) let the caller make them absolute.
    """

    def __init__(
        self,
        scanner: Scanner,
        *,
        origin: int = 0,
        emit_from: int = 0,
        stop_at: int | None = None,
        cut_at_stop: bool = False,
        line_base: int = 0,
    ) -> None:
        """``cut_at_stop``: at ``stop_at`` close whatever is open instead of reading on
        (for a stop at a header line, which would close it anyway); ``line_base``:
        lines before ``origin`` when the caller knows them (numbers are then absolute)."""
        self.cut_at_stop = cut_at_stop
        #: (buffer, its hits) when the caller already searched the one buffer it passes.
        self.known_hits: tuple[bytes, list[tuple[int, int]]] | None = None
        self.scanner = scanner
        self.origin = origin
        self.emit_from = emit_from
        self.stop_at = stop_at
        self.line_at_emit: int | None = line_base if emit_from <= origin else None
        self.line_at_stop: int | None = None
        self.truncated = False
        self._lineno = line_base
        self._stopped = False

    def run(self, chunks: Iterable[bytes | bytearray]) -> Iterator[KernelEvent]:
        base = self.origin  # file offset of the first byte not yet scanned (carry included)
        carry = b""
        for chunk in chunks:
            if not chunk:
                continue
            if not isinstance(chunk, bytes | bytearray):
                chunk = bytes(chunk)
            begin = 0
            if carry:
                # Finish the line split across blocks without copying the whole block.
                first = chunk.find(b"\n")
                if first < 0:
                    carry += bytes(chunk)
                    if len(carry) > _CARRY_CAP:
                        base += len(carry) - LINE_CAP  # the dropped middle of a giant line
                        carry = carry[:LINE_CAP]
                    continue
                joined = carry + chunk[: first + 1]
                yield from self._keep(self._block(joined, 0, len(joined), base))
                if self._stopped:
                    return
                base += len(joined)
                begin = first + 1
                carry = b""
            end = chunk.rfind(b"\n") + 1
            if end > begin:
                yield from self._keep(self._block(chunk, begin, end, base - begin))
                if self._stopped:
                    return
                base += end - begin
            else:
                end = begin
            carry = bytes(chunk[end:])  # the block's buffer may be reused for the next read
            if len(carry) > _CARRY_CAP:
                base += len(carry) - LINE_CAP
                carry = carry[:LINE_CAP]
        if self.line_at_emit is None:
            self.line_at_emit = self._lineno
        events, self.truncated = self.scanner.finish(carry or None, self._lineno)
        yield from self._keep(events)
        if self.line_at_stop is None:
            self.line_at_stop = self.scanner.lines_seen

    def _keep(self, events: Iterable[KernelEvent]) -> Iterator[KernelEvent]:
        """Only the events whose header line is in this scan's region."""
        for event in events:
            if self.line_at_emit is None or event.line <= self.line_at_emit:
                continue  # header before the region: the previous scan reports it
            if self.line_at_stop is not None and event.line > self.line_at_stop:
                continue  # header after the region: the next scan reports it
            yield event

    def _block(
        self, buf: bytes | bytearray, begin: int, end: int, base: int
    ) -> Iterator[KernelEvent]:
        """Scan the whole lines buf[begin:end]; buf[0] would be at file offset ``base``."""
        scanner = self.scanner
        find = buf.find
        count = line_counter(buf, end - begin)
        known = self.known_hits
        if known is not None and known[0] is buf:
            hits = known[1]  # found already by the caller over this very buffer
            if hits and (hits[0][0] < begin or hits[-1][0] >= end):
                hits = [hit for hit in hits if begin <= hit[0] < end]
        else:
            hits = find_hits(buf, begin, end)
        n_hits = len(hits)
        index = 0
        regional = self.emit_from > self.origin or self.stop_at is not None
        lineno = self._lineno
        pos = begin
        while pos < end:
            if regional:
                self._mark(buf, pos, pos, base, lineno)
                if self.line_at_stop is not None and (self.cut_at_stop or not scanner.busy):
                    if scanner.busy:
                        yield from self._keep(scanner.cut())
                    self._stopped = True
                    break
            if scanner.busy or lineno < scanner.head_lines:
                if not regional or (self.line_at_emit is not None and self.stop_at is None):
                    # Every line until the report closes, in one call (nothing left to
                    # mark: the region's start is behind and it has no end).
                    pos, lineno, events = scanner.feed_busy(buf, pos, end, lineno)
                    if events:
                        yield from events
                    continue
                nl = find(b"\n", pos, end)
                lineno += 1
                done = scanner.feed(lineno, buf[pos:nl])
                if done:
                    yield from done
                pos = nl + 1
                continue
            while index < n_hits and hits[index][0] < pos:
                index += 1
            hit = hits[index][0] if index < n_hits else -1
            start = end if hit < 0 else max(pos, buf.rfind(b"\n", pos, hit) + 1)
            if hit >= 0 and hit + len(MARKERS_BYTES[hits[index][1]]) - start > LINE_CAP:
                # Beyond the part of the line that is read: not a hit. Look past it.
                index += 1
                continue
            if regional:
                # Skipping buf[pos:start]: record region offsets that fall inside it.
                stop = self._mark(buf, pos, start, base, lineno)
                if stop is not None:
                    lineno = stop
                    self._stopped = True
                    break
            skipped = count(pos, start)
            if skipped:
                prev_start = max(pos, buf.rfind(b"\n", pos, start - 1) + 1)
                scanner.note_prev(buf[prev_start : start - 1])
                lineno += skipped
            if hit < 0:
                pos = end
                break
            nl = find(b"\n", start, end)
            lineno += 1
            done = scanner.feed(lineno, buf[start:nl])
            if done:
                yield from done
            pos = nl + 1
        self._lineno = lineno

    def _mark(
        self, buf: bytes | bytearray, pos: int, upto: int, base: int, lineno: int
    ) -> int | None:
        """Record the line counts at region offsets lying in buf[pos:upto] (inclusive).

        ``lineno`` lines come before buf[pos]. Returns the line count at the stop
        offset when it lies in the range and the scanner is idle (time to stop).
        """
        emit_rel = self.emit_from - base
        if self.line_at_emit is None and pos <= emit_rel <= upto:
            self.line_at_emit = lineno + count_lines(buf, pos, emit_rel)
        if self.stop_at is None or self.line_at_stop is not None:
            return None
        stop_rel = self.stop_at - base
        if pos <= stop_rel <= upto:
            self.line_at_stop = lineno + count_lines(buf, pos, stop_rel)
            if not self.scanner.busy:
                return self.line_at_stop
        return None


def _ends_with_newline(line: str | bytes) -> bool:
    if isinstance(line, str):
        return line.endswith("\n")
    return line.endswith(b"\n")


def _split_keepends(text: str) -> Iterator[str]:
    """Lines of text split on "\\n" only, each keeping its terminator."""
    start = 0
    find = text.find
    while True:
        nl = find("\n", start)
        if nl < 0:
            if start < len(text):
                yield text[start:]
            return
        yield text[start : nl + 1]
        start = nl + 1
