"""xm-era cfg files: Python that xend executed, read only when it is plain assignments.

`xm create` ran a domain's cfg file as Python (xm/create.py, execfile), so a
file may compute its values (`name = "VM%d" % vmid`, functions, imports,
`+=`). xenaudit never runs such code. A file made only of `key = literal`
lines (strings, whole numbers and lists of them) means the same to Python
and to xl's parser, so it is read with the byte-preserving xl.cfg parser and
can get a patch; any other file is refused with the first line that is more
than a plain assignment, and never gets a patch.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from xenaudit.xlcfg.config import XlConfig, parse
from xenaudit.xlcfg.errors import CfgSyntaxError

_ADVICE = (
    "xenaudit reads only xm cfg files made of plain KEY = VALUE assignments and proposes "
    "no patch for this one"
)
_XL_ADVICE = (
    "xenaudit reads xm cfg files with xl's parser, so only where they are also valid xl.cfg, "
    "and proposes no patch for this one"
)


class XmCfgRefused(ValueError):
    """An xm cfg that computes values or uses Python xl cannot read; names the file and line."""

    def __init__(
        self, filename: str, line: int, text: str, reason: str, advice: str = _ADVICE
    ) -> None:
        snippet = text.strip()
        snippet = snippet if len(snippet) <= 80 else snippet[:80] + "…"
        # The line is quoted with repr: it is the file's text, and may hold any character.
        super().__init__(f"{filename}:{line}: {snippet!r} {reason}; {advice}")
        self.filename = filename
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class _Problem:
    line: int
    reason: str
    advice: str = _ADVICE


def _plain(value: ast.expr) -> bool:
    if isinstance(value, ast.Constant):
        return isinstance(value.value, str) or (
            isinstance(value.value, int) and not isinstance(value.value, bool)
        )
    if isinstance(value, ast.List):
        return all(_plain(item) for item in value.elts)
    return False


def _why_not_plain(statement: ast.stmt) -> str:
    if isinstance(statement, ast.Assign):
        if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
            return "assigns to something other than one name"
        value = statement.value
        if isinstance(value, ast.Dict | ast.Tuple | ast.Set) or (
            isinstance(value, ast.List) and any(not _plain(e) for e in value.elts)
        ):
            return "holds a Python value xl.cfg cannot express"
        if isinstance(value, ast.Constant):
            return "holds a Python constant xl.cfg cannot express"
        return "computes its value"
    if isinstance(statement, ast.AugAssign):
        return "computes its value (augmented assignment)"
    if isinstance(statement, ast.FunctionDef | ast.ClassDef):
        return "defines Python code"
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return "imports Python code"
    return "runs Python code"


def first_problem(source: str) -> _Problem | None:
    """The first statement that is not `name = literal`, or None for a plain file."""
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        return _Problem(exc.lineno or 1, f"is not Python 3 syntax ({exc.msg})")
    for statement in module.body:
        if isinstance(statement, ast.Assign) and (
            len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and _plain(statement.value)
        ):
            continue
        return _Problem(statement.lineno, _why_not_plain(statement))
    return None


def parse_xm(data: bytes | str, filename: str = "<string>") -> XlConfig:
    """Parse an xm-era cfg that is plain assignments; raise XmCfgRefused for anything else."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "replace")
    lines = text.splitlines()

    def line_text(number: int) -> str:
        return lines[number - 1] if 0 < number <= len(lines) else ""

    problem = first_problem(text)
    try:
        config = parse(raw, filename)
    except CfgSyntaxError as exc:
        # Name whichever comes first in the file: Python that is not plain, or text xl refuses.
        if problem is None or exc.line < problem.line:
            problem = _Problem(exc.line, f"is not xl.cfg syntax ({exc.message})", _XL_ADVICE)
    else:
        if problem is None:
            return config
    raise XmCfgRefused(
        filename, problem.line, line_text(problem.line), problem.reason, problem.advice
    )
