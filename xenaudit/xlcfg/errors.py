"""Exceptions raised by the xl.cfg package.

`CfgSyntaxError` is the only exception `parse` raises for bad input: callers
(the CLI, the analysis stage) can then tell "this file would make xl fail" from
a bug in our code.
"""

from __future__ import annotations


class CfgSyntaxError(ValueError):
    """A file that libxlutil would refuse (xl create fails with "Failed to parse config").

    The text follows xl's own report, with a column added:
    ``FILE:LINE:COL: config parsing error near `TOKEN': MESSAGE``.
    Lines and columns are 1-based; the column counts bytes.
    """

    def __init__(
        self,
        filename: str,
        line: int,
        column: int,
        message: str,
        near: str | None = None,
    ) -> None:
        self.filename = filename
        self.line = line
        self.column = column
        self.message = message
        self.near = near
        where = f"{filename}:{line}:{column}"
        if near is None:
            text = f"{where}: config parsing error: {message}"
        elif near == "":
            text = f"{where}: config parsing error near end of file: {message}"
        else:
            text = f"{where}: config parsing error near `{near}': {message}"
        super().__init__(text)


class CfgValueError(ValueError):
    """A setting that parses but that xl cannot use for what it was asked (e.g. type="xen")."""


class CfgEditError(ValueError):
    """An edit that cannot be made without breaking the file or losing information."""
