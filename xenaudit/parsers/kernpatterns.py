"""Recognise the kernel messages xenaudit cares about, in every format they were printed.

Each parse function takes message text (prefix already stripped) and returns a
small record, or None when the text is not that message. They are tried only on
lines that passed a cheap substring test (see MARKERS), so they may be thorough.
"""

from __future__ import annotations

import re

from xenaudit.parsers.lazyre import lazy

#: Substrings that every event header contains. A line without any of them can be
#: skipped unseen, which is what makes scanning large logs fast; they are as long
#: as the headers allow because longer needles make ``bytes.find`` skip faster.
#: Every kernel since 2.6.18 prints "Killed process" with a capital K and
#: "<comm> invoked oom-killer:". "ill process" catches the choice line before it
#: ("Out of memory: Kill process N (x) score S or sacrifice child", and 2.6.2x-3x's
#: lowercase "kill process N (x) score S or a child", which may stand alone).
#: "Linux version" is the boot banner: a log that spans reboots names the kernel
#: that wrote each report with it.
MARKERS: tuple[str, ...] = (
    "page allocation failure",
    "invoked oom-killer",
    "Killed process",
    "ill process",
    "balloon",
    "Linux version ",
)
MARKERS_BYTES: tuple[bytes, ...] = tuple(m.encode("ascii") for m in MARKERS)
#: Indexes into MARKERS, for code that dispatches on which marker hit.
M_PAGE_ALLOC, M_OOM, M_KILLED, M_KILL, M_BALLOON, M_BANNER = range(len(MARKERS))


def has_marker(line: str) -> bool:
    """Cheap pre-check: could this line be an event header (or a boot banner)?"""
    return (
        "page allocation failure" in line
        or "invoked oom-killer" in line
        or ("ill" in line
        and ("Killed process" in line or "ill process" in line))
        or "balloon" in line
        or "Linux version " in line
    )


# --- page allocation failure ------------------------------------------------------

# "<comm>: page allocation failure. order:3, mode:0x8020"              (2.6.x, RHEL 6)
# "<comm>: page allocation failure: order:2, mode:0x2080020(GFP_ATOMIC)" (4.6+)
# "<comm>: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), nodemask=(null),cpuset=/,..."
_PA_RE = lazy(r"\s*(?P<proc>.*?):? page allocation failure[.:,]? *order: *(?P<order>\d+)")
_MODE_RE = lazy(
    r"\s*,? *mode: *(?P<mask>0x[0-9a-fA-F]+)(?P<paren>\((?P<names>[^)]*)(?P<close>\))?)?"
)


class PageAllocHeader:
    """What a failure's header line says (a record of the scanner's, not a result)."""

    __slots__ = ("complete", "gfp_mask", "names", "nodemask", "order", "process")

    def __init__(
        self,
        process: str,
        order: int,
        gfp_mask: str,
        names: str | None,
        complete: bool,
        nodemask: bool,
    ) -> None:
        self.process = process
        self.order = order
        #: The mode as printed ("0x20"), or "" when the line was cut before it.
        self.gfp_mask = gfp_mask
        #: Names printed in parentheses (only the complete ones when the line was cut),
        #: or None when the kernel printed none.
        self.names = names
        #: False when the line stops early (cut or wrapped): a continuation may complete it.
        self.complete = complete
        self.nodemask = nodemask


def parse_page_alloc(text: str) -> PageAllocHeader | None:
    match = _PA_RE.match(text)
    if match is None:
        return None
    rest = text[match.end() :]
    mode = _MODE_RE.match(rest)
    nodemask = "nodemask=" in rest
    if mode is None:
        return PageAllocHeader(
            match["proc"].strip(), int(match["order"]), "", None, False, nodemask
        )
    names = mode["names"] if mode["paren"] else None
    complete = not mode["paren"] or mode["close"] is not None
    if names is not None and not complete:
        # Cut inside the names: keep those printed in full (the last may be a fragment).
        names = "|".join(names.split("|")[:-1])
    return PageAllocHeader(
        match["proc"].strip(), int(match["order"]), mode["mask"], names, complete, nodemask
    )


# --- OOM killer invoked -----------------------------------------------------------

# "<comm> invoked oom-killer: gfp_mask=0x201da, order=0, oom_adj=0"             (2.6.3x)
# "<comm> invoked oom-killer: gfp_mask=0x15000c0(GFP_KERNEL_ACCOUNT), nodemask=(null), order=0,
#  oom_score_adj=0"                                                                (4.x)
# "<comm> invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0" (5.x+)
_OOM_RE = lazy(r"\s*(?P<proc>.*?) ?invoked oom-killer: *(?P<args>.*)$")
_KV_RE = lazy(r"(?P<key>\w+)=(?P<value>\(null\)|[^,\s(]*)(?:\((?P<names>[^)]*)\))?")


class OomHeader:
    """What an "invoked oom-killer" line says."""

    __slots__ = ("complete", "gfp_mask", "names", "oom_adj", "oom_score_adj", "order", "process")

    def __init__(
        self,
        process: str,
        gfp_mask: str | None,
        names: str | None,
        order: int | None,
        oom_score_adj: int | None,
        oom_adj: int | None,
        complete: bool,
    ) -> None:
        self.process = process
        self.gfp_mask = gfp_mask
        self.names = names
        self.order = order
        self.oom_score_adj = oom_score_adj
        self.oom_adj = oom_adj
        self.complete = complete


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_oom_invoked(text: str) -> OomHeader | None:
    match = _OOM_RE.match(text)
    if match is None:
        return None
    args = match["args"]
    values: dict[str, str] = {}
    names: str | None = None
    for kv in _KV_RE.finditer(args):
        values.setdefault(kv["key"], kv["value"])
        if kv["key"] == "gfp_mask" and kv["names"] is not None:
            names = kv["names"]
    if "gfp_mask" not in values and "order" not in values:
        return None
    adj = values.get("oom_adj", values.get("oomkilladj"))
    mask = values.get("gfp_mask") or None
    if mask is not None and not mask.lower().startswith("0x"):
        mask = None
    return OomHeader(
        process=match["proc"].strip(),
        gfp_mask=mask,
        names=names,
        order=_int_or_none(values.get("order")),
        oom_score_adj=_int_or_none(values.get("oom_score_adj")),
        oom_adj=_int_or_none(adj),
        complete="order" in values,
    )


# --- OOM kills --------------------------------------------------------------------

# "Killed process 27438 (R) total-vm:38349780kB, anon-rss:1041924kB, file-rss:4kB, shmem-rss:0kB"
# "Out of memory: Killed process 15784 (python3) total-vm:11964kB, ..., UID:0 pgtables:48kB
#  oom_score_adj:0"
# "Memory cgroup out of memory: Killed process ..."
# "Killed process 3458, UID 0, (mysqld) total-vm:..."                           (RHEL 6)
# "Killed process 1234 (foo) vsz:1234kB, anon-rss:..., file-rss:..."             (2.6.3x)
# The name may hold parentheses ("((resolved))"): it ends at the ")" before a space,
# a comma or the end of the line.
_KILLED_RE = lazy(
    r"(?P<head>.*?)Killed process (?P<pid>\d+)(?:, UID (?P<uid>\d+),)? "
    r"\((?P<name>.*?)\)(?=[ ,.]|$)(?P<rest>.*)$"
)
# The tail is optional: 2.6.2x-3x printed "kill process N (x) score S or a child",
# some builds "kill process N (x)" alone.
_KILL_RE = lazy(
    r"(?P<head>.*?)[Kk]ill process (?P<pid>\d+) \((?P<name>.*?)\)"
    r"(?:(?= |$)(?: score (?P<score>-?\d+)(?: or (?:sacrifice child|a child))?)?)"
)
_FIELD_RE = lazy(r"(?P<key>[A-Za-z_-]+):\s?(?P<value>-?\d+)(?P<kb>kB)?")


class KillLine:
    """What a "Killed process" (or "Kill process ... sacrifice child") line says."""

    __slots__ = (
        "anon_rss_kib",
        "file_rss_kib",
        "memcg",
        "name",
        "oom_score_adj",
        "pgtables_kib",
        "pid",
        "score",
        "shmem_rss_kib",
        "total_vm_kib",
        "uid",
    )

    def __init__(
        self,
        pid: int,
        name: str,
        memcg: bool,
        total_vm_kib: int | None = None,
        anon_rss_kib: int | None = None,
        file_rss_kib: int | None = None,
        shmem_rss_kib: int | None = None,
        uid: int | None = None,
        pgtables_kib: int | None = None,
        oom_score_adj: int | None = None,
        score: int | None = None,
    ) -> None:
        self.pid = pid
        self.name = name
        self.memcg = memcg
        self.total_vm_kib = total_vm_kib
        self.anon_rss_kib = anon_rss_kib
        self.file_rss_kib = file_rss_kib
        self.shmem_rss_kib = shmem_rss_kib
        self.uid = uid
        self.pgtables_kib = pgtables_kib
        self.oom_score_adj = oom_score_adj
        self.score = score


def parse_killed(text: str) -> KillLine | None:
    match = _KILLED_RE.match(text)
    if match is None:
        return None
    head = match["head"]
    fields: dict[str, int] = {}
    for field in _FIELD_RE.finditer(match["rest"]):
        fields.setdefault(field["key"].lower(), int(field["value"]))
    uid = match["uid"]
    return KillLine(
        pid=int(match["pid"]),
        name=match["name"],
        memcg="cgroup" in head.lower(),
        total_vm_kib=fields.get("total-vm", fields.get("vsz")),
        anon_rss_kib=fields.get("anon-rss"),
        file_rss_kib=fields.get("file-rss"),
        shmem_rss_kib=fields.get("shmem-rss"),
        uid=int(uid) if uid is not None else fields.get("uid"),
        pgtables_kib=fields.get("pgtables"),
        oom_score_adj=fields.get("oom_score_adj"),
    )


def parse_kill_sacrifice(text: str) -> KillLine | None:
    """The pre-5.0 "Kill process N (x) score S or sacrifice child" line."""
    if "ill process" not in text:
        return None
    match = _KILL_RE.match(text)
    if match is None:
        return None
    score = match["score"]
    if score is None and "of memory" not in match["head"].lower():
        return None  # "kill process N (x)" alone is an OOM kill only after "Out of memory:"
    return KillLine(
        pid=int(match["pid"]),
        name=match["name"],
        memcg="cgroup" in match["head"].lower(),
        score=int(score) if score is not None else None,
    )


# --- Xen balloon ------------------------------------------------------------------

_BALLOON_RE = lazy(r"\s*xen[:/_-]balloon: ?(?P<msg>.*?)\s*$")


def parse_balloon(text: str) -> str | None:
    match = _BALLOON_RE.match(text)
    return None if match is None else match["msg"]


# --- neighbours of a report -----------------------------------------------------

_SUPPRESSED_RE = lazy(r"\s*(?P<func>\S+): (?P<n>\d+) callbacks suppressed")


def parse_suppressed(text: str) -> int | None:
    """N from "warn_alloc: N callbacks suppressed" (allocation-failure ratelimit only)."""
    match = _SUPPRESSED_RE.match(text)
    if match is None or "alloc" not in match["func"]:
        return None
    return int(match["n"])


_DUMP_VERSION_RE = lazy(
    r"\s*(?:CPU: \d+ .*?(?:PID|Comm)|Pid: \d+, comm: ).*?"
    r"(?:Not tainted|Tainted:[A-Z -]*?)\s+(?P<release>\d+\.\d+[\w.+~-]*)"
)
_BANNER_RE = lazy(r"\s*Linux version (?P<release>\d+\.\d+[\w.+~-]*)")


def dump_release(text: str) -> str | None:
    """Kernel release named by a "CPU: 0 PID: 3 Comm: x Not tainted 4.3.3 #2" style line."""
    match = _DUMP_VERSION_RE.match(text)
    return None if match is None else match["release"]


def banner_release(text: str) -> str | None:
    match = _BANNER_RE.match(text)
    return None if match is None else match["release"]


class DumpLine:
    """The "who was running" line of a report: CPU, PID, task name, kernel release."""

    __slots__ = ("comm", "cpu", "pid", "release")

    def __init__(self, cpu: int | None, pid: int, comm: str, release: str | None) -> None:
        self.cpu = cpu
        self.pid = pid
        self.comm = comm
        self.release = release


# "CPU: 1 PID: 0 Comm: swapper/1 Not tainted 4.4.0-21-generic #37-Ubuntu" (3.10+),
# "CPU: 18 PID: 7127 Comm: java Kdump: loaded Tainted: G W O 4.18.0-147.el8 #1",
# "Pid: 0, comm: swapper Not tainted 2.6.32-573.7.1.el6.x86_64 #1" (before 3.10).
# The task name may hold spaces ("CPU 0/KVM"); it ends where the taint part starts.
_DUMP_RE = lazy(
    r"\s*(?:CPU: (?P<cpu>\d+) +PID: (?P<pid>\d+) +Comm: |Pid: (?P<opid>\d+), comm: )"
    r"(?P<comm>.{1,16}?)(?: +(?:Kdump: \S+ +)?(?:Not\b|Tainted:|Tai)|\s*$)"
)


def parse_dump_line(text: str) -> DumpLine | None:
    match = _DUMP_RE.match(text)
    if match is None:
        return None
    cpu = match["cpu"]
    pid = match["pid"] or match["opid"]
    return DumpLine(
        cpu=int(cpu) if cpu is not None else None,
        pid=int(pid),
        comm=match["comm"].strip(),
        release=dump_release(text),
    )


# --- call traces ------------------------------------------------------------------

# " [<ffffffff8112c207>] ? __alloc_pages_nodemask+0x757/0x8d0", " dump_stack+0x6d/0x8b",
# "[<c0013f0c>] (unwind_backtrace+0x0/0xf0) from [<...>] (...)" (ARM), ppc's
# "[c0000001cb163640] [c000000001035754] dump_stack+0xe8/0x164 (unreliable)".
_FRAME_RE = lazy(
    r"(?:^|[\s\](])(?P<unsure>\? )?(?P<fn>[A-Za-z_][\w.$]*)\+0x[0-9a-fA-F]+/0x[0-9a-fA-F]+"
)


def trace_function(text: str) -> tuple[str, bool] | None:
    """(function name, reliable) from one call-trace line, or None.

    "?" marks a frame the unwinder was unsure of; it is kept but flagged.
    """
    at = text.find("+0x")
    if at < 0:
        return None
    # The name runs back from "+0x" to a blank, "]" or "(" (searched from there,
    # not from the line start: trace lines are long and many).
    start = max(text.rfind(" ", 0, at), text.rfind("]", 0, at), text.rfind("(", 0, at)) + 1
    match = _FRAME_RE.match(text, max(0, start - 3))
    if match is None or match.start("fn") != start:
        match = _FRAME_RE.search(text)
        if match is None:
            return None
    return match["fn"], match["unsure"] is None


# Helpers between the real requester and the page allocator: page and slab
# allocators, vmalloc, generic socket-buffer allocation, and the warning itself.
_ALLOCATOR_RE = lazy(
    r"_*(?:alloc_pages|get_free_pages|get_zeroed_page|alloc_page\b|alloc_pages_\w+"
    r"|folio_alloc|vmalloc|kvmalloc|kmalloc|kmem_cache_alloc|kmem_getpages|cache_grow"
    r"|fallback_alloc|cache_alloc|new_slab|allocate_slab|slab_alloc|alloc_slab"
    r"|kmalloc_reserve|alloc_skb|netdev_alloc_skb|napi_alloc_skb|dev_alloc_skb"
    r"|netdev_alloc_frag|napi_alloc_frag|page_frag_alloc|alloc_page_frag|skb_page_frag_refill"
    r"|warn_alloc|dump_stack|show_stack|dump_header|rmqueue|get_page_from_freelist"
    r"|should_fail|warn_slowpath|__warn|alloc_pages_slowpath|page_alloc|mem_cgroup_charge"
    r"|out_of_memory|oom_kill_process|pagefault_out_of_memory)"
)


def first_caller(frames: list[tuple[str, bool]]) -> str | None:
    """The first function past the allocator helpers: who asked for the memory.

    Reliable frames are preferred; old kernels mark nearly every frame with "?",
    and then all are used.
    """
    reliable = [name for name, sure in frames if sure]
    everything = [name for name, _ in frames]
    for names in (reliable if len(reliable) >= 3 else everything, everything):
        for name in names:
            base = name.split(".", 1)[0]
            if not _ALLOCATOR_RE.match(base):
                return name
    return None


def is_old_dump_line(text: str) -> bool:
    """ "Pid: N, comm: x" headers were printed by kernels before 3.10."""
    return text.lstrip().startswith("Pid: ") and ", comm: " in text


# --- report continuation ------------------------------------------------------------

_CONTINUATION_RE = lazy(
    r"""
    \s|$
  | Call\ [Tt]race | <(?:/?(?:IRQ|NMI|TASK|SOFTIRQ)|EOI)> | \[< | \(unwind | Exception\ stack
  | Backtrace | Stack: | Code: | [0-9a-f]{4}: | [0-9a-f]{8,16}(?:\s|$)
  | (?:CPU|Pid|PID|Comm|UID)[:\s] | Hardware\ name | Workqueue: | task: | RIP | RSP | R[A-D]X
  | R[SD]I | RBP | R\d{1,2}: | [ECDFG]S: | CR[0-4] | DR[0-7]
  | Mem-[Ii]nfo | Node\ \d | (?:DMA32|DMA|Normal|HighMem|Movable|Device)\b | lowmem_reserve
  | [\w-]+\ per-cpu | [Aa]ctive_ | [Ii]nactive_ | isolated | unevictable | dirty | writeback
  | slab | mapped | shmem | pagetables | bounce | free | kernel_misc | sec_pagetables | unstable
  | \d+\ (?:total\ pagecache|pages) | Swap\ cache | (?:Free|Total)\ swap | Tasks\ state
  | \[\s*(?:pid|\d+)\s*\] | Unreclaimable\ slab | Name\s+Used | SLUB: | oom-kill: | Memory\ cgroup
  | Task\ in\  | (?:memory|memory\+swap|swap|kmem):\ usage | [\w.$]+\+0x[0-9a-f]+/0x[0-9a-f]+
  | \?\  | warn_alloc | dump_stack | show_stack | hugepages_total | Out\ of\ memory
  | oom_reaper | [\w-]+\s+\d+KB\s+\d+KB
    """,
    re.VERBOSE,
)
_CONTINUATION_SUBSTRINGS = ("mems_allowed=", "+0x", "kB", "cpuset=")


def is_continuation(text: str) -> bool:
    """Does this line look like part of an allocation-failure or OOM report?"""
    if _CONTINUATION_RE.match(text) is not None:
        return True
    return any(s in text for s in _CONTINUATION_SUBSTRINGS)


_BUDDY_RE = lazy(
    r"\s*(?:Node \d+ )?(?:DMA32|DMA|Normal|HighMem|Movable|Device)\w*: *\d+\*\d+kB"
)


def is_buddy_line(text: str) -> bool:
    """'Node 0 DMA32: 12*4kB (UM) ...' (or the older 'DMA32: 12*4kB ...')."""
    return _BUDDY_RE.match(text) is not None
