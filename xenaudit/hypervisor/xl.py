"""The `xl` backend: run xl on this Dom0 or over SSH on another, keep the raw text.

Parsing lives in `xl_parse` so a replayed snapshot goes through exactly the
same code; this module only runs commands and turns their failures into
errors that name the host, the command and what to do.
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
from xenaudit.hypervisor.signals import read_signals
from xenaudit.hypervisor.xl_parse import (
    RAW_INFO,
    RAW_LIST,
    RAW_LIST_LONG_JSON,
    RAW_LIST_LONG_SXP,
    RAW_XL_CONF,
    build_xl_view,
)
from xenaudit.inventory.interface import HypervisorSpec, SshSettings

#: Where xl itself reads its global config (XL_GLOBAL_CONFIG).
XL_CONF_PATH = "/etc/xen/xl.conf"
XL_CONF_MAX_BYTES = 1024 * 1024
DEFAULT_COMMAND_TIMEOUT_S = 30.0

_STDERR_LIMIT = 500

# What xl prints when it cannot reach the hypervisor for lack of privilege.
_NOT_ROOT_MARKERS = (
    "Permission denied",
    "cannot init xl context",
    "Could not obtain handle on privileged command interface",
)
_NO_XEN_MARKER = "Can't find hypervisor information in sysfs"
_SXP_PVH_MARKER = "Unknown domain type"


def _trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _STDERR_LIMIT else text[:_STDERR_LIMIT] + "…"


class XlSource(HypervisorSource):
    """Reads one Dom0 through `xl info`, `xl list`, `xl list -l` and xl.conf."""

    backend = "xl"

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
        #: Also read xenstore, xentop and `xl dmesg` (hypervisor-side judgement).
        self.signals = signals

    def _make_runner(self) -> CommandRunner:
        if self._runner is not None:
            return self._runner
        if self.spec.ssh_host:
            from xenaudit.hypervisor.ssh_runner import SshRunner

            return SshRunner(self.spec, self.ssh)
        return LocalRunner()

    def _xl_conf_path(self) -> str:
        # Locally the cfg_dir is this Dom0's own /etc/xen (or a test's stand-in);
        # on a remote Dom0 xl reads its compiled-in path there.
        if self.spec.ssh_host:
            return XL_CONF_PATH
        return str(Path(self.spec.cfg_dir) / "xl.conf")

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
        raw[RAW_INFO] = self._xl(runner, ["info"]).stdout
        raw[RAW_LIST] = self._xl(runner, ["list"]).stdout
        long_result = self._xl(runner, ["list", "-l"], allow_sxp_pvh_stop=True)
        text = long_result.stdout
        if text.lstrip().startswith("(domain"):
            raw[RAW_LIST_LONG_SXP] = text
        else:
            raw[RAW_LIST_LONG_JSON] = text
        conf = runner.read_file(self._xl_conf_path(), XL_CONF_MAX_BYTES)
        if conf is not None:
            raw[RAW_XL_CONF] = conf
        if self.signals:
            raw.update(
                read_signals(
                    runner,
                    [self.spec.xl_command, "dmesg"],
                    self.command_timeout_s,
                    self.max_bytes,
                )
            )
        try:
            return build_xl_view(self.spec.name, raw)
        except RawParseError as exc:
            raise HypervisorError(
                self.spec.name, f"{exc.source} ({runner.description})", exc.message
            ) from None

    def _xl(
        self, runner: CommandRunner, args: list[str], allow_sxp_pvh_stop: bool = False
    ) -> CommandResult:
        argv = [self.spec.xl_command, *args]
        source = f"xl {' '.join(args)} ({runner.description})"
        host = self.spec.name
        try:
            result = runner.run(argv, self.command_timeout_s, self.max_bytes)
        except CommandNotFound:
            raise HypervisorError(
                host,
                source,
                f"{self.spec.xl_command} not found on PATH; install xen-utils or set xl_command",
            ) from None
        except CommandTimeout:
            raise HypervisorError(
                host, source, f"timed out after {self.command_timeout_s:g} s (xl was killed)"
            ) from None
        except OutputTooLarge:
            raise HypervisorError(
                host, source, f"printed more than {self.max_bytes} bytes; stopped"
            ) from None
        except RunnerError as exc:
            raise HypervisorError(host, source, str(exc)) from None
        if result.returncode == 0:
            return result
        stderr = _trim(result.stderr) or "(no message)"
        if result.returncode == 127:
            raise HypervisorError(
                host,
                source,
                f"{self.spec.xl_command} not found on PATH; "
                f"install xen-utils or set xl_command ({stderr})",
            )
        if allow_sxp_pvh_stop and _SXP_PVH_MARKER in result.stderr and result.stdout.strip():
            # xl's legacy SXP printer exits at the first PVH domain; keep what it
            # printed: build_xl_view warns about the domains it never reached.
            return result
        if _NO_XEN_MARKER in result.stderr:
            raise HypervisorError(host, source, f"not running on Xen (xl said: {stderr})")
        if any(marker in result.stderr for marker in _NOT_ROOT_MARKERS):
            raise HypervisorError(host, source, f"xl needs root (xl said: {stderr})")
        raise HypervisorError(host, source, f"exit code {result.returncode}: {stderr}")
