"""Pure parsers of guest text: /proc files, ps output and kernel logs.

Text in, frozen dataclasses (see interface.py) out; no I/O. A section that
cannot be understood raises ParseError; kernel logs never raise.

The public functions are importable from here; they are loaded on first use so
that ``xenaudit logscan`` starts without importing every parser.
"""

from __future__ import annotations

from xenaudit.lazyexports import module_getattr

TYPE_CHECKING = False  # typing is not imported at run time (start-up of small scans)
_EXPORTS = {
    "free_kib_at_least_order": "buddyinfo",
    "iter_kernlog_chunks": "kernlog",
    "iter_kernlog_events": "kernlog",
    "parse_balloon": "balloon",
    "parse_buddyinfo": "buddyinfo",
    "parse_guest": "guest",
    "parse_kernlog": "kernlog",
    "parse_meminfo": "meminfo",
    "parse_ps": "ps",
    "parse_psi": "psi",
    "parse_slabinfo": "slabinfo",
    "parse_sysvm": "sysvm",
    "parse_vmstat": "vmstat",
    "unusable_free_index": "buddyinfo",
}

__all__ = [
    "free_kib_at_least_order",
    "iter_kernlog_chunks",
    "iter_kernlog_events",
    "parse_balloon",
    "parse_buddyinfo",
    "parse_guest",
    "parse_kernlog",
    "parse_meminfo",
    "parse_ps",
    "parse_psi",
    "parse_slabinfo",
    "parse_sysvm",
    "parse_vmstat",
    "unusable_free_index",
]

if TYPE_CHECKING:
    from xenaudit.parsers.balloon import parse_balloon
    from xenaudit.parsers.buddyinfo import (
        free_kib_at_least_order,
        parse_buddyinfo,
        unusable_free_index,
    )
    from xenaudit.parsers.guest import parse_guest
    from xenaudit.parsers.kernlog import iter_kernlog_chunks, iter_kernlog_events, parse_kernlog
    from xenaudit.parsers.meminfo import parse_meminfo
    from xenaudit.parsers.ps import parse_ps
    from xenaudit.parsers.psi import parse_psi
    from xenaudit.parsers.slabinfo import parse_slabinfo
    from xenaudit.parsers.sysvm import parse_sysvm
    from xenaudit.parsers.vmstat import parse_vmstat


__getattr__ = module_getattr(__name__, _EXPORTS, globals())
