"""Unified diffs that `patch -p1` applies from ``/``, and the memory proposal.

The diff is computed on bytes split at ``\\n`` only (str.splitlines would also
split at ``\\r``, ``\\f`` and others, which xl.cfg comments may contain), and
marks a last line without newline with ``\\ No newline at end of file`` as
GNU diff does, so `patch` reproduces the file exactly.
"""

from __future__ import annotations

import difflib
import re

from xenaudit.xlcfg.config import parse
from xenaudit.xlcfg.editor import set_value

_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+\Z")


def _lines(data: str | bytes) -> list[str]:
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    return _LINE_RE.findall(text)


def unified_diff(path: str, old: str | bytes, new: str | bytes) -> str:
    """Diff with ``a/PATH`` / ``b/PATH`` headers (leading "/" dropped) for ``patch -p1``.

    Returns "" when there is no change.  Text that is not UTF-8 comes back
    with surrogate escapes; write it with ``encode("utf-8", "surrogateescape")``.
    """
    rel = path.lstrip("/")
    out: list[str] = []
    for line in difflib.unified_diff(
        _lines(old), _lines(new), fromfile=f"a/{rel}", tofile=f"b/{rel}", n=3
    ):
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def propose_memory_patch(
    path: str,
    text: str | bytes,
    memory_mib: int | None,
    maxmem_mib: int | None,
) -> str | None:
    """The diff that sets memory/maxmem (MiB) in an xl.cfg, or None when nothing changes.

    * ``memory_mib``/``maxmem_mib`` None: leave that key alone.
    * A value equal to what xl already reads is not rewritten (so spelling
      such as ``0x200`` survives).
    * When the file has no ``maxmem`` and the wanted maxmem equals the
      (new) memory, nothing is added: xl already uses memory as maxmem.
    * Raises ValueError for a proposal xl.cfg(5) forbids (maxmem below
      memory, including an existing maxmem left below a raised memory), and
      CfgSyntaxError when the file does not parse.
    """
    cfg = parse(text, path)
    new = cfg
    if memory_mib is not None and cfg.read_long("memory").value != memory_mib:
        new = set_value(new, "memory", memory_mib)
    effective_memory = new.memory_mib
    if maxmem_mib is not None:
        if effective_memory is not None and maxmem_mib < effective_memory:
            raise ValueError(
                f"maxmem {maxmem_mib} MiB is below memory {effective_memory} MiB;"
                " xl.cfg(5) requires maxmem >= memory"
            )
        if "maxmem" in new:
            if new.read_long("maxmem").value != maxmem_mib:
                new = set_value(new, "maxmem", maxmem_mib)
        elif maxmem_mib != effective_memory:
            new = set_value(new, "maxmem", maxmem_mib)
    else:
        maxmem = new.read_long("maxmem").value
        if maxmem is not None and effective_memory is not None and maxmem < effective_memory:
            raise ValueError(
                f"memory {effective_memory} MiB would exceed the file's maxmem {maxmem} MiB;"
                " pass maxmem_mib as well"
            )
    before = cfg.to_bytes()
    after = new.to_bytes()
    if before == after:
        return None
    return unified_diff(path, before, after)
