"""The one error every pure parser of this stage raises."""

from __future__ import annotations


class RawParseError(Exception):
    """Recorded output that does not parse. `source` names the command or file; the
    message says where in it and what was expected."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message
