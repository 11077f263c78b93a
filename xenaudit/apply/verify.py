"""Does a cfg say what the admin approved? Checked with the project's own xl.cfg parser.

A change only counts as done when the file on disk parses the way xl would
parse it and its memory and maxmem are the recommended values. The computed
bytes are checked before writing, so a bad file is never put in place, and
what is read back is checked again, to catch anything between us and the
disk.
"""

from __future__ import annotations

try:
    from xenaudit.xlcfg import CfgSyntaxError, parse
except ImportError:  # the package may not re-export them yet
    from xenaudit.xlcfg.config import parse
    from xenaudit.xlcfg.errors import CfgSyntaxError


def cfg_problem(data: bytes, filename: str, memory_mib: int, maxmem_mib: int) -> str | None:
    """Why `data` is not a cfg with these memory values, or None when it is.

    maxmem is compared as xl reads it: without `maxmem=` the ceiling is `memory`.
    """
    try:
        config = parse(data, filename)
    except CfgSyntaxError as exc:
        return f"does not parse: {exc}"
    memory = config.memory_mib
    maxmem = config.maxmem_mib
    if maxmem is None:
        maxmem = memory
    if memory != memory_mib:
        return f"memory is {memory} MiB, expected {memory_mib}"
    if maxmem != maxmem_mib:
        return f"maxmem is {maxmem} MiB, expected {maxmem_mib}"
    return None
