"""The `xm` backend, for Dom0s still on xend (Xen 4.4 and older, Oracle VM 3.x).

Runs `xm info`, `xm list`, `xm list -l` and `xentop -b` (xm never says what a
domain holds) here or over SSH, with the same runners, time limits and byte
caps as the `xl` backend; parsing lives in `xm_parse` so replay goes through
the same code.
"""

from __future__ import annotations

from pathlib import Path

from xenaudit.hypervisor.interface import HostView, HypervisorError, HypervisorSource
from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.runner import (
    DEFAULT_MAX_BYTES,
    CommandNotFound,
    CommandResult,
    CommandRunner,
    CommandTimeout,
    LocalRunner,
    OutputTooLarge,
    RunnerError,
)
from xenaudit.hypervisor.signals import RAW_SIGNAL_ERRORS, RAW_XENTOP, read_signals, read_xentop
from xenaudit.hypervisor.xm_parse import (
    RAW_XEND_CONFIG,
    RAW_XM_INFO,
    RAW_XM_LIST,
    RAW_XM_LIST_LONG,
    build_xm_view,
)
from xenaudit.inventory.interface import HypervisorSpec, SshSettings

XEND_CONFIG_PATH = "/etc/xen/xend-config.sxp"
XEND_CONFIG_MAX_BYTES = 1024 * 1024
DEFAULT_COMMAND_TIMEOUT_S = 30.0
_STDERR_LIMIT = 500

_NO_XEND = "Unable to connect to xend"


def _trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _STDERR_LIMIT else text[:_STDERR_LIMIT] + "…"


class XmSource(HypervisorSource):
    """Reads one xend Dom0 through xm and xentop."""

    backend = "xm"

    def __init__(
        self,
        spec: HypervisorSpec,
        ssh: SshSettings | None = None,
        runner: CommandRunner | None = None,
        command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        signals: bool = False,
    ) -> None:
        self.spec = spec
        self.ssh = ssh or SshSettings()
        self._runner = runner
        self.command_timeout_s = command_timeout_s
        self.max_bytes = max_bytes
        #: Also read xenstore and `xm dmesg` (hypervisor-side judgement).
        self.signals = signals

    def _make_runner(self) -> CommandRunner:
        if self._runner is not None:
            return self._runner
        if self.spec.ssh_host:
            from xenaudit.hypervisor.ssh_runner import SshRunner

            return SshRunner(self.spec, self.ssh)
        return LocalRunner()

    def _xend_config_path(self) -> str:
        if self.spec.ssh_host:
            return XEND_CONFIG_PATH
        return str(Path(self.spec.cfg_dir) / "xend-config.sxp")

    def read(self) -> HostView:
        try:
            runner = self._make_runner()
        except RunnerError as exc:
            raise HypervisorError(self.spec.name, "ssh", str(exc)) from None
        try:
            return self._read_with(runner)
        finally:
            if self._runner is None:
                runner.close()

    def _read_with(self, runner: CommandRunner) -> HostView:
        raw: dict[str, str] = {}
        raw[RAW_XM_INFO] = self._xm(runner, ["info"]).stdout
        raw[RAW_XM_LIST] = self._xm(runner, ["list"]).stdout
        raw[RAW_XM_LIST_LONG] = self._xm(runner, ["list", "-l"]).stdout
        errors: list[str] = []
        top = read_xentop(runner, self.command_timeout_s, self.max_bytes, errors)
        if top is not None:
            raw[RAW_XENTOP] = top
        config = runner.read_file(self._xend_config_path(), XEND_CONFIG_MAX_BYTES)
        if config is not None:
            raw[RAW_XEND_CONFIG] = config
        if self.signals:
            extra = read_signals(
                runner,
                [self.spec.xm_command, "dmesg"],
                self.command_timeout_s,
                self.max_bytes,
                xentop_text=top,
            )
            errors.extend(extra.pop(RAW_SIGNAL_ERRORS, "").splitlines())
            raw.update(extra)
        if errors:
            raw[RAW_SIGNAL_ERRORS] = "\n".join(errors) + "\n"
        try:
            return build_xm_view(self.spec.name, raw)
        except RawParseError as exc:
            raise HypervisorError(
                self.spec.name, f"{exc.source} ({runner.description})", exc.message
            ) from None

    def _xm(self, runner: CommandRunner, args: list[str]) -> CommandResult:
        argv = [self.spec.xm_command, *args]
        source = f"xm {' '.join(args)} ({runner.description})"
        host = self.spec.name
        try:
            result = runner.run(argv, self.command_timeout_s, self.max_bytes)
        except CommandNotFound:
            raise HypervisorError(
                host, source, f"{self.spec.xm_command} not found on PATH; set xm_command"
            ) from None
        except CommandTimeout:
            raise HypervisorError(
                host, source, f"timed out after {self.command_timeout_s:g} s (xm was killed)"
            ) from None
        except OutputTooLarge:
            raise HypervisorError(
                host, source, f"printed more than {self.max_bytes} bytes; stopped"
            ) from None
        except RunnerError as exc:
            raise HypervisorError(host, source, str(exc)) from None
        if result.returncode == 0:
            return result
        message = _trim(result.stderr) or _trim(result.stdout) or "(no message)"
        if result.returncode == 127:
            raise HypervisorError(
                host,
                source,
                f"{self.spec.xm_command} not found on PATH; set xm_command ({message})",
            )
        if _NO_XEND in result.stderr or _NO_XEND in result.stdout:
            raise HypervisorError(
                host,
                source,
                f"xend is not running or not reachable as this user (xm said: {message}); "
                'on a Dom0 without xend use backend = "xl"',
            )
        raise HypervisorError(host, source, f"exit code {result.returncode}: {message}")
