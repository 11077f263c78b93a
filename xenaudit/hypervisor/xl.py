"""The `xl` backend: run xl on this Dom0 or over SSH on another, keep the raw text.

Parsing lives in `xl_parse` so a replayed snapshot goes through exactly the
same code; running commands is shared with the `xm` backend (toolstack.py);
this module says which commands xl needs and turns xl's own failures into
errors that name the host, the command and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xenaudit.hypervisor.interface import HostView
from xenaudit.hypervisor.runner import CommandResult, CommandRunner
from xenaudit.hypervisor.toolstack import DEFAULT_COMMAND_TIMEOUT_S, ToolstackSource
from xenaudit.hypervisor.xl_parse import (
    RAW_INFO,
    RAW_LIST,
    RAW_LIST_LONG_JSON,
    RAW_LIST_LONG_SXP,
    RAW_XL_CONF,
    build_xl_view,
)

__all__ = ["DEFAULT_COMMAND_TIMEOUT_S", "XL_CONF_MAX_BYTES", "XL_CONF_PATH", "XlSource"]

#: Where xl itself reads its global config (XL_GLOBAL_CONFIG).
XL_CONF_PATH = "/etc/xen/xl.conf"
XL_CONF_MAX_BYTES = 1024 * 1024

# What xl prints when it cannot reach the hypervisor for lack of privilege.
_NOT_ROOT_MARKERS = (
    "Permission denied",
    "cannot init xl context",
    "Could not obtain handle on privileged command interface",
)
_NO_XEN_MARKER = "Can't find hypervisor information in sysfs"
_SXP_PVH_MARKER = "Unknown domain type"


class XlSource(ToolstackSource):
    """Reads one Dom0 through `xl info`, `xl list`, `xl list -l` and xl.conf."""

    backend = "xl"
    not_found_hint = "install xen-utils or set xl_command"

    @property
    def command(self) -> str:
        return self.spec.xl_command

    def read_toolstack(self, runner: CommandRunner, raw: dict[str, str], errors: list[str]) -> None:
        raw[RAW_INFO] = self.run(runner, ["info"]).stdout
        raw[RAW_LIST] = self.run(runner, ["list"]).stdout
        text = self.run(runner, ["list", "-l"]).stdout
        if text.lstrip().startswith("(domain"):
            raw[RAW_LIST_LONG_SXP] = text
        else:
            raw[RAW_LIST_LONG_JSON] = text
        self.read_file_into(runner, raw, RAW_XL_CONF, XL_CONF_PATH, XL_CONF_MAX_BYTES)

    def build_view(self, raw: Mapping[str, str]) -> HostView:
        return build_xl_view(self.spec.name, raw)

    def accept_failure(self, args: Sequence[str], result: CommandResult) -> bool:
        # xl's legacy SXP printer exits at the first PVH domain; keep what it
        # printed: build_xl_view warns about the domains it never reached.
        return (
            list(args) == ["list", "-l"]
            and _SXP_PVH_MARKER in result.stderr
            and bool(result.stdout.strip())
        )

    def explain_failure(self, result: CommandResult, message: str) -> str | None:
        if _NO_XEN_MARKER in result.stderr:
            return f"not running on Xen (xl said: {message})"
        if any(marker in result.stderr for marker in _NOT_ROOT_MARKERS):
            return f"xl needs root (xl said: {message})"
        return None
