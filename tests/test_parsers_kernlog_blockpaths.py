"""The block reader and the run counter give exactly what their slow paths give.

Inside a report the scanner reads a stretch of plain lines as one string (one
pattern per line, one per run of OOM task-list lines); in a storm the dense path
counts a run of failure headers from their joined texts. Each is held here to
the path it shortcuts, switched off, on every real log of tests/corpus, on storms
made of them and on hostile lines aimed at their edges.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import corpus_dir
from tests.test_parsers_fuzz import REAL
from xenaudit.parsers import kernlog, kernscan
from xenaudit.parsers.kernlog import (
    EventKeeper,
    ScanSummary,
    iter_kernlog_chunks,
    iter_kernlog_events,
    parse_kernlog,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOGS = sorted(
    path
    for path in corpus_dir().glob("*.*")
    if path.suffix in (".log", ".eml") and path.name != "MANIFEST.tsv"
)


@contextmanager
def slow_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within: no block reading (every report line alone) and no run counting."""
    with monkeypatch.context() as patch:
        patch.setattr(
            kernscan.Scanner,
            "_feed_block",
            lambda self, block, buf, pos, end, lineno, events: (pos, lineno),
        )
        patch.setattr(kernlog._LightCounter, "count_run", lambda self, starts, b, e: False)
        yield


def _by_line(raw: bytes) -> tuple[tuple[object, ...], ScanSummary]:
    summary = ScanSummary()
    lines = raw.split(b"\n")
    fed = [line + b"\n" for line in lines[:-1]] + [lines[-1]]
    return tuple(iter_kernlog_events(fed, summary=summary)), summary


def _by_block(raw: bytes) -> tuple[tuple[object, ...], ScanSummary]:
    summary = ScanSummary()
    return tuple(iter_kernlog_chunks([raw], summary=summary)), summary


def _same_everywhere(
    raw: bytes, monkeypatch: pytest.MonkeyPatch, keep: int = 2, *, against_full: bool = True
) -> None:
    """Block driver = line by line = block driver without its shortcuts; the capped
    parse equals itself without run counting and (``against_full``) the full parse put
    through the cap."""
    expected = _by_line(raw)
    assert _by_block(raw) == expected
    capped = parse_kernlog(raw, keep_per_kind=keep)
    with slow_paths(monkeypatch):
        assert _by_block(raw) == expected
        slow = parse_kernlog(raw, keep_per_kind=keep)
    assert capped.events == slow.events
    assert (capped.counts, capped.lines_read, capped.truncated) == (
        slow.counts,
        slow.lines_read,
        slow.truncated,
    )
    if not against_full:
        return
    full = parse_kernlog(raw)
    assert capped.counts == full.counts
    keeper = EventKeeper(keep)
    for event in full.events:
        keeper.add(event)
    assert [(e.kind, e.line) for e in capped.events] == [(e.kind, e.line) for e in keeper.events()]


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.name)
def test_every_corpus_log_alone_and_as_a_storm(
    path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = path.read_bytes()  # type: ignore[attr-defined]
    _same_everywhere(raw, monkeypatch)
    body = raw if raw.endswith(b"\n") else raw + b"\n"
    _same_everywhere(body * 40, monkeypatch)


def test_the_shortcuts_are_taken_on_task_lists_and_storms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: a storm of the corpus's OOM reports goes through both shortcuts."""
    raw = (corpus_dir() / "oom_6.8_tasks_state_example_commit.log").read_bytes()
    raw += (corpus_dir() / "pagealloc_6.9.0-rc7_order4_gfp_names_cpuset.log").read_bytes()
    used = {"tasks": 0, "runs": 0}
    add_tasks, count_run = kernscan.Scanner._add_tasks, kernlog._LightCounter.count_run

    def tasks(self: kernscan.Scanner, *args: object) -> tuple[int, int]:
        used["tasks"] += 1
        return add_tasks(self, *args)  # type: ignore[arg-type]

    def runs(self: kernlog._LightCounter, *args: object) -> bool:
        result = count_run(self, *args)  # type: ignore[arg-type]
        used["runs"] += result
        return result

    monkeypatch.setattr(kernscan.Scanner, "_add_tasks", tasks)
    monkeypatch.setattr(kernlog._LightCounter, "count_run", runs)
    header = b"[ 1.000000] x: page allocation failure: order:0, mode:0x20\n"
    parse_kernlog(raw * 30 + header * 40, keep_per_kind=2)
    assert used["tasks"] > 0
    assert used["runs"] > 0


PREFIXES = [
    "[ 1630.903619] ",
    "[1630.903619] ",
    "Jan  1 00:00:58 web kernel: [   63.032234] ",
    "Jan  1 00:00:58 web kernel: ",
    "Jan  1 00:00:58 " + "h" * 300 + " kernel: ",
    "[ 1.0] [    C3] ",
    "[ 1.0] [  T123] ",
    "<4>[ 1.0] ",
    "Nov 25 10:00:00 host sshd[12]: ",
    "[ 1.0] host kernel: ",
    "[\x1c1.0] ",
    "",
]
NAMES = [
    "nginx",
    "php-fpm7.4",
    "(sd-pam)",
    "balloon",
    "mem_cgroup_out_of_memory",
    "a+0x1/0x2",
    "x:y",
    "omm:",
    "Comm:",
    "a*b",
    "Web Content",
    "Killed process 1",
    "[ 1.000000]",
    "<4>[",
    "\x1c",
    "é",
    "\x00",
    "\x1b[1m",
    "\r",
    "",
    "n" * 70,
    "9" * 30,
]
task = st.builds(
    lambda pid, cols, name: f"[{pid:>7}]" + "".join(f" {c:>8}" for c in cols) + " " + name,
    st.integers(min_value=0, max_value=10**12),
    st.lists(st.integers(min_value=-1000, max_value=10**9), min_size=1, max_size=12),
    st.sampled_from(NAMES),
)
report_line = st.one_of(task, task, task, st.sampled_from(REAL), st.just(" " * 5000 + "x"))
oom_report = st.tuples(
    st.sampled_from(PREFIXES),
    st.lists(st.tuples(st.sampled_from(PREFIXES), report_line), min_size=1, max_size=60),
).map(
    lambda t: (
        t[0] + "mysqld invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, "
        "oom_score_adj=0\n"
        + t[0]
        + "Tasks state (memory values in pages):\n"
        + "".join(prefix + text + "\n" for prefix, text in t[1])
        + t[0]
        + "Out of memory: Killed process 1 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n"
    )
)


@FUZZ
@given(st.lists(oom_report, min_size=1, max_size=4), st.integers(min_value=1, max_value=12))
def test_hostile_task_lists(reports: list[str], repeats: int) -> None:
    """Task names that spell markers, facts or glued messages, odd prefixes, long lines.

    Not held to the full parse: the dense path judges an OOM report's cgroup scope
    from its bytes up to the next marker line, and a task line that merely contains
    a marker ("Killed process 1" as a name) ends that early; the scanner reads on."""
    raw = ("".join(reports) * repeats).encode("utf-8", "surrogatepass")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same_everywhere(raw, monkeypatch, against_full=False)


def test_task_runs_stop_at_the_span_and_context_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A task list longer than an OOM report may run: closed on the same line either way."""
    prefix = "[ 1.000000] "
    lines = [prefix + "java invoked oom-killer: gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE)"]
    task = "[{0:>7}]     0 {0:>5}   798962    20072       0 java"
    lines += [prefix + task.format(pid) for pid in range(6000)]
    raw = ("\n".join(lines) + "\n").encode()
    _same_everywhere(raw, monkeypatch)
    (event,) = parse_kernlog(raw).events
    assert len(event.context) == kernscan.CONTEXT_CAP  # type: ignore[attr-defined]


HEADERS = [
    "swapper/0: page allocation failure: order:0, mode:0x20",
    "java: page allocation failure: order:2, mode:0x2080020(GFP_ATOMIC)",
    "kworker/1:1: page allocation failure: order:1, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), "
    "nodemask=(null),cpuset=/,mems_allowed=0",
    "x: page allocation failure: order:0, mode:0x20(",  # cut: waits for a continuation
    "x: page allocation failure. order:0, mode:0x20 [ 2.000000] glued",
    "x: page allocation failure: order:0 balloon",
    "not a header: page allocation failure of sorts",
]
BODY = [
    "CPU: 0 PID: 1 Comm: x Not tainted 4.9.0-8-amd64 #1 Debian 4.9.144-3",
    "CPU: 1 PID: 2 Comm: y Tainted: G W 5.10.0-21-amd64 #1 Debian",
    "Pid: 3, comm: z Not tainted 2.6.32-358.el6.x86_64 #1",
    "Call Trace:",
    " dump_stack+0x6d/0x8b",
    "net_ratelimit: 12 callbacks suppressed",
    "x: 3 callbacks suppressed",
    "Linux version 3.10.0 (gcc)",
]
storm_line = st.tuples(
    st.sampled_from(PREFIXES[:4] + PREFIXES[5:]),
    st.one_of(st.sampled_from(HEADERS), st.sampled_from(BODY), st.sampled_from(REAL)),
).map("".join)


@FUZZ
@given(
    st.lists(storm_line, min_size=1, max_size=30),
    st.lists(st.sampled_from(HEADERS[:3]), min_size=1, max_size=3),
    st.integers(min_value=20, max_value=60),
    st.booleans(),
)
def test_hostile_failure_storms(
    odd: list[str], headers: list[str], repeats: int, terminated: bool
) -> None:
    """Runs of failure headers among suppressed-callback lines, dump lines naming
    different kernels (hex masks decode by era), odd prefixes and odd headers."""
    dump = "CPU: 0 PID: 1 Comm: x Not tainted 5.10.0 #1"
    plain = "".join(f"[ 5.000000] {h}\n[ 5.000000] {dump}\n" for h in headers)
    text = (plain * 3 + "\n".join(odd) + "\n") * repeats
    raw = (text if terminated else text.rstrip("\n")).encode("utf-8", "surrogatepass")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same_everywhere(raw, monkeypatch, keep=3)
