"""xl.cfg: a byte-preserving parser, editor and linter that reads files as libxlutil does.

The language, values and errors follow Xen's own parser (tools/libs/util:
libxlu_cfg_l.l, libxlu_cfg_y.y, libxlu_cfg.c) and xl's use of it
(tools/xl/xl_parse.c); the tests check every claim against libxlutil itself.

The public names are importable from here; each module is loaded on first
use, so that ``xenaudit cfg show`` does not load the editor, linter and diff.
No public name may be the name of a module of this package: importing that
module would put the module object in its place.
"""

from __future__ import annotations

from xenaudit.lazyexports import module_getattr

TYPE_CHECKING = False  # typing is not imported at run time: `cfg show` starts faster
if TYPE_CHECKING:
    from xenaudit.xlcfg.config import JsonValue, LongRead, Setting, XlConfig, parse
    from xenaudit.xlcfg.editor import Raw, remove_key, set_value
    from xenaudit.xlcfg.errors import CfgEditError, CfgSyntaxError, CfgValueError
    from xenaudit.xlcfg.linter import LintProblem, lint
    from xenaudit.xlcfg.patch import propose_memory_patch, unified_diff

_EXPORTS = {
    "CfgEditError": "errors",
    "CfgSyntaxError": "errors",
    "CfgValueError": "errors",
    "JsonValue": "config",
    "LintProblem": "linter",
    "LongRead": "config",
    "Raw": "editor",
    "Setting": "config",
    "XlConfig": "config",
    "lint": "linter",
    "parse": "config",
    "propose_memory_patch": "patch",
    "remove_key": "editor",
    "set_value": "editor",
    "unified_diff": "patch",
}

__all__ = [
    "CfgEditError",
    "CfgSyntaxError",
    "CfgValueError",
    "JsonValue",
    "LintProblem",
    "LongRead",
    "Raw",
    "Setting",
    "XlConfig",
    "lint",
    "parse",
    "propose_memory_patch",
    "remove_key",
    "set_value",
    "unified_diff",
]


__getattr__ = module_getattr(__name__, _EXPORTS, globals())
