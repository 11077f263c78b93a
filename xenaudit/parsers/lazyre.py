"""Regular expressions compiled when first used.

The kernel-log parser has a few dozen patterns; compiling them all costs several
milliseconds at import, which ``xenaudit logscan`` on a small file would pay on
every start for patterns that file never needs. A lazy pattern compiles itself on
first use and from then on answers through the compiled pattern's own bound
methods, so a scan pays nothing more per call.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing is not imported at run time (start-up of small scans)
if TYPE_CHECKING:
    from typing import AnyStr

_METHODS = ("match", "fullmatch", "search", "finditer", "findall", "sub", "split")


class _Lazy:
    def __init__(self, pattern: str | bytes, flags: int) -> None:
        self._source = (pattern, flags)

    def __getattr__(self, name: str) -> object:
        # Only reached while the name is not yet set on the instance (first use).
        pattern, flags = self._source
        compiled = re.compile(pattern, flags)
        for method in _METHODS:
            setattr(self, method, getattr(compiled, method))
        self.pattern = compiled.pattern
        return getattr(compiled, name)


def lazy(pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
    """A pattern that behaves like ``re.compile(pattern, flags)``, compiled on first use."""
    return _Lazy(pattern, flags)  # type: ignore[return-value]
