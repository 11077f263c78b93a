"""Who asked for the memory: the call trace of a failure or OOM report, read for its caller.

Advice for a high-order failure depends on who wanted the block: a fork
needs its new task's kernel stack in one piece, a conntrack hash resize one
contiguous table, a NIC with jumbo frames a receive buffer the size of a
frame. The report's call trace says which; the allocator's own frames
(dump_stack, warn_alloc, __alloc_pages…, kmalloc…) are skipped to reach the
first frame that is not the allocator.

Frames are read from the report's lines in every era's format:
``[<ffffffff8113114a>] ? __alloc_pages_nodemask+0x74a/0x8d0`` (up to 4.x,
``?`` marks an unreliable frame), `` dump_stack+0x6b/0x83`` (4.x on),
``(warn_alloc_failed+0xc4/0x11c) from (…)`` (ARM). The parser's names
(``call_trace``) serve only when the report's lines were not kept.

Kept beside the parser's ``call_trace``/``caller`` because it reads what they drop: each
frame's module and "?" mark, ARM "from" frames and interrupt-entry frames to skip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xenaudit.parsers.interface import LogLine, OomInvoked, PageAllocFailure

#: "func+0x1a/0x40", optionally "[module]" after it.
_FRAME = re.compile(r"(\?\s*)?([A-Za-z_][\w.]*)\+0x[0-9a-fA-F]+/0x[0-9a-fA-F]+(?:\s*\[(\w+)\])?")
#: Compiler suffixes that are not part of the function's name.
_SUFFIX = re.compile(r"\.(?:cold|isra|constprop|part|llvm)(?:\.\d+)?")
_TRACE_START = ("Call Trace:", "Backtrace:", "Call trace:")
_TRACE_END = ("Mem-Info:", "Mem-info:", "Node ", "active_anon:", "Task in ", "Tasks state", "RIP:")

#: The allocator and the report's own frames: never "the caller".
_ALLOCATOR = re.compile(
    r"^(?:dump_stack\w*|show_stack|unwind_backtrace|dump_backtrace|dump_header\w*|warn_alloc\w*|"
    r"__?alloc_pages\w*|alloc_pages\w*|__get_free_pages|get_zeroed_page|get_page_from_freelist|"
    r"__alloc_pages_direct_\w+|__alloc_pages_slowpath\w*|__alloc_pages_may_oom|out_of_memory\w*|"
    r"oom_kill_process\w*|__out_of_memory\w*|pagefault_out_of_memory|kmalloc\w*|__kmalloc\w*|"
    r"kmem_cache_alloc\w*|__kmem_cache_alloc\w*|kmalloc_order\w*|kmalloc_large\w*|new_slab|"
    r"allocate_slab|__?_?slab_alloc\w*|cache_alloc_refill|cache_grow\w*|fallback_alloc|"
    r"kmem_getpages|_+cache_alloc\w*|sk_prot_alloc|"
    r"alloc_slab_page|kvmalloc\w*|__vmalloc\w*|vmalloc\w*|__page_frag\w*|page_frag_alloc\w*|"
    r"__alloc_page_frag|zone_watermark_ok\w*|drain_\w+|_raw_spin\w*|memset|__schedule|"
    r"native_\w+|set_track|__memcg_\w+|obj_cgroup_\w+|try_charge\w*|mem_cgroup_\w+|"
    r"alloc_pages_current|alloc_pages_vma|folio_alloc\w*|__folio_alloc\w*|"
    r"__alloc_frozen_pages\w*|alloc_frozen_pages\w*|should_fail\w*|asm_exc_page_fault|"
    r"exc_page_fault|do_user_addr_fault|handle_mm_fault|__handle_mm_fault|"
    # Socket-buffer allocators: the caller is the driver or protocol that asked.
    r"__alloc_skb|alloc_skb\w*|__netdev_alloc_skb|netdev_alloc_skb\w*|__netdev_alloc_frag|"
    r"netdev_alloc_frag|__napi_alloc_skb|napi_alloc_skb|"
    # Interrupt entry and wake-ups that unreliable ("?") 2.6-era traces pick up from the stack.
    r"apic_timer_interrupt|smp_apic_timer_interrupt|common_interrupt|ret_from_intr|irq_exit|"
    r"do_IRQ|call_softirq|do_softirq|__do_softirq|try_to_wake_up|default_wake_function|"
    r"autoremove_wake_function|__wake_up\w*|wake_up\w*|schedule\w*|__schedule)$"
)


@dataclass(frozen=True)
class Caller:
    """The first frame past the allocator, and what it tells about the allocation."""

    function: str
    module: str | None
    #: A known user of high-order blocks ("fork", "conntrack", "net_rx", ...), or None.
    cause: str | None
    #: One sentence an admin understands.
    description: str


@dataclass(frozen=True)
class _Frame:
    function: str
    module: str | None
    reliable: bool


#: (cause, function names or prefixes that show it, description).
_CAUSES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "fork",
        (
            "copy_process",
            "dup_task_struct",
            "alloc_thread_stack_node",
            "alloc_thread_info_node",
            "_do_fork",
            "do_fork",
            "kernel_clone",
            "sys_clone",
        ),
        "fork: the new task's kernel stack must be one contiguous block (order 2 on x86-64)",
    ),
    (
        "conntrack",
        (
            "nf_ct_alloc_hashtable",
            "nf_conntrack_alloc_hashtable",
            "nf_conntrack_set_hashsize",
            "nf_conntrack_hash_resize",
            "nf_conntrack_init",
            "nf_ct_expect_init",
        ),
        "a conntrack hash table resize: the whole table is one allocation",
    ),
    (
        "thp",
        (
            "khugepaged",
            "collapse_huge_page",
            "do_huge_pmd_anonymous_page",
            "__do_huge_pmd_anonymous_page",
            "alloc_hugepage_vma",
            "vma_alloc_folio",
        ),
        "a transparent hugepage: the kernel falls back to small pages when it fails",
    ),
    (
        "net_rx",
        (
            "xennet_alloc_rx_buffers",
            "xennet_poll",
            "__netdev_alloc_skb",
            "netdev_alloc_skb",
            "__napi_alloc_skb",
            "napi_alloc_skb",
            "e1000_alloc_jumbo_rx_buffers",
            "e1000_alloc_rx_buffers",
            "igb_alloc_rx_buffers",
            "ixgbe_alloc_rx_buffers",
            "tg3_alloc_rx_data",
            "bnx2_alloc_rx_data",
            "virtnet_receive",
            "try_fill_recv",
            "net_rx_action",
            "rx_submit",
        ),
        "network receive: the driver refills its receive ring",
    ),
    (
        "net_tx",
        ("sock_alloc_send_pskb", "alloc_skb_with_frags", "tcp_sendmsg", "sk_stream_alloc_skb"),
        "a socket send buffer",
    ),
    (
        "dma",
        ("swiotlb_alloc_coherent", "dma_alloc_coherent", "dma_generic_alloc_coherent"),
        "a driver's DMA buffer, which must be physically contiguous",
    ),
)


def _clean(name: str) -> str:
    return _SUFFIX.sub("", name)


def _frames_from_lines(lines: Iterable[str]) -> list[_Frame]:
    frames: list[_Frame] = []
    inside = False
    for text in lines:
        stripped = text.strip()
        if not inside:
            if any(stripped.startswith(start) for start in _TRACE_START):
                inside = True
                rest = stripped.split(":", 1)[1]
                frames.extend(_frames_in(rest))
            elif " from [<" in stripped or ") from (" in stripped or stripped.startswith("[<"):
                # ARM prints frames without a "Call Trace:" line.
                frames.extend(_frames_in(stripped))
            continue
        if any(stripped.startswith(end) for end in _TRACE_END):
            break
        frames.extend(_frames_in(stripped))
    return frames


def _frames_in(text: str) -> list[_Frame]:
    return [
        _Frame(_clean(m.group(2)), m.group(3), not m.group(1)) for m in _FRAME.finditer(text[:400])
    ]


def _lines(context: Sequence[LogLine]) -> list[str]:
    return [entry.text for entry in context]


def caller(event: PageAllocFailure | OomInvoked) -> Caller | None:
    """Who made the allocation, or None when the report kept no call trace."""
    # The report's own lines carry modules and "?" marks; the parser's list of
    # names (PageAllocFailure.call_trace) serves when they were not kept.
    parsed = _frames_from_lines(_lines(event.context))
    named = getattr(event, "call_trace", None)
    if not parsed and isinstance(named, (tuple, list)) and named:
        parsed = [_Frame(_clean(str(n)), None, True) for n in named]
    if not parsed:
        return None
    # Unreliable ("?") frames are guesses from the stack; 2.6-era kernels mark
    # nearly every frame so, and then they are all we have.
    reliable = [f for f in parsed if f.reliable]
    candidates = reliable or parsed
    outside = [f for f in candidates if not _ALLOCATOR.match(f.function)]
    names = [f.function for f in parsed]
    cause, description = _cause(names, event)
    if not outside:
        return None if cause is None else Caller(names[-1], None, cause, description or "")
    first = outside[0]
    module = first.module
    if description is None:
        description = f"{first.function}" + (f" in the {module} module" if module else "")
    return Caller(first.function, module, cause, description)


def _cause(
    names: Sequence[str], event: PageAllocFailure | OomInvoked
) -> tuple[str | None, str | None]:
    present = set(names)
    for cause, functions, description in _CAUSES:
        if present & set(functions):
            if cause == "net_rx" and (event.order or 0) >= 1:
                return "jumbo_rx", (
                    "network receive of large frames (jumbo MTU): the driver wants a buffer "
                    f"of {4 << (event.order or 0)} KiB in one piece"
                )
            return cause, description
    return None, None
