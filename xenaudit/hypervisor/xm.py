"""The `xm` backend, for Dom0s still on xend (Xen 4.4 and older, Oracle VM 3.x).

Runs `xm info`, `xm list`, `xm list -l` and `xentop -b` (xm never says what a
domain holds) here or over SSH, with the same runners, time limits and byte
caps as the `xl` backend (toolstack.py); parsing lives in `xm_parse` so
replay goes through the same code.
"""

from __future__ import annotations

from collections.abc import Mapping

from xenaudit.hypervisor.interface import HostView
from xenaudit.hypervisor.runner import CommandResult, CommandRunner, trim
from xenaudit.hypervisor.signals import RAW_XENTOP, read_xentop
from xenaudit.hypervisor.toolstack import DEFAULT_COMMAND_TIMEOUT_S, ToolstackSource
from xenaudit.hypervisor.xm_parse import (
    RAW_XEND_CONFIG,
    RAW_XM_INFO,
    RAW_XM_LIST,
    RAW_XM_LIST_LONG,
    build_xm_view,
)

__all__ = ["DEFAULT_COMMAND_TIMEOUT_S", "XEND_CONFIG_MAX_BYTES", "XEND_CONFIG_PATH", "XmSource"]

XEND_CONFIG_PATH = "/etc/xen/xend-config.sxp"
XEND_CONFIG_MAX_BYTES = 1024 * 1024

_NO_XEND = "Unable to connect to xend"


class XmSource(ToolstackSource):
    """Reads one xend Dom0 through xm and xentop."""

    backend = "xm"
    not_found_hint = "set xm_command"

    @property
    def command(self) -> str:
        return self.spec.xm_command

    def read_toolstack(self, runner: CommandRunner, raw: dict[str, str], errors: list[str]) -> None:
        raw[RAW_XM_INFO] = self.run(runner, ["info"]).stdout
        raw[RAW_XM_LIST] = self.run(runner, ["list"]).stdout
        raw[RAW_XM_LIST_LONG] = self.run(runner, ["list", "-l"]).stdout
        # Always read: xm itself never prints what a domain holds.
        top = read_xentop(runner, self.command_timeout_s, self.max_bytes, errors)
        if top is not None:
            raw[RAW_XENTOP] = top
        self.read_file_into(runner, raw, RAW_XEND_CONFIG, XEND_CONFIG_PATH, XEND_CONFIG_MAX_BYTES)

    def build_view(self, raw: Mapping[str, str]) -> HostView:
        return build_xm_view(self.spec.name, raw)

    def failure_message(self, result: CommandResult) -> str:
        # xm prints some of its errors on stdout.
        return trim(result.stderr) or trim(result.stdout) or "(no message)"

    def explain_failure(self, result: CommandResult, message: str) -> str | None:
        if _NO_XEND in result.stderr or _NO_XEND in result.stdout:
            return (
                f"xend is not running or not reachable as this user (xm said: {message}); "
                'on a Dom0 without xend use backend = "xl"'
            )
        return None
