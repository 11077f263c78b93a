"""xl.cfg: a byte-preserving parser, editor and linter that reads files as libxlutil does.

The language, values and errors follow Xen's own parser (tools/libs/util:
libxlu_cfg_l.l, libxlu_cfg_y.y, libxlu_cfg.c) and xl's use of it
(tools/xl/xl_parse.c); the tests check every claim against libxlutil itself.
"""

from xenaudit.xlcfg.config import JsonValue, LongRead, Setting, XlConfig, parse
from xenaudit.xlcfg.editor import Raw, remove_key, set_value
from xenaudit.xlcfg.errors import CfgEditError, CfgSyntaxError, CfgValueError
from xenaudit.xlcfg.lint import LintProblem, lint
from xenaudit.xlcfg.patch import propose_memory_patch, unified_diff

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
