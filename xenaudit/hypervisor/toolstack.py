"""What the `xl` and `xm` backends share: running a toolstack CLI on a Dom0 and keeping its text.

Both run their commands through one `CommandRunner` (here, or over SSH on
another Dom0) with the same time limit and byte cap, read one small settings
file of the toolstack's, optionally read the hypervisor-side signals, and
hand the raw text to a pure `build_*_view` so a replayed snapshot goes
through exactly the same parsing. A subclass says which commands to run and
how its CLI explains a failure; everything else is here, once.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
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
    trim,
)
from xenaudit.hypervisor.signals import RAW_SIGNAL_ERRORS, RAW_XENTOP, read_signals
from xenaudit.inventory.interface import HypervisorSpec, SshSettings

DEFAULT_COMMAND_TIMEOUT_S = 30.0


class ToolstackSource(HypervisorSource):
    """Reads one Dom0 through a toolstack CLI (`xl` or `xm`); see the subclasses."""

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
        #: Also read xenstore, xentop and the hypervisor log (hypervisor-side judgement).
        self.signals = signals

    # --- what a subclass says ---------------------------------------------------

    @property
    @abstractmethod
    def command(self) -> str:
        """The CLI to run (the inventory's xl_command or xm_command)."""

    #: What to do when the CLI is missing ("install xen-utils or set xl_command").
    not_found_hint = ""

    @abstractmethod
    def read_toolstack(self, runner: CommandRunner, raw: dict[str, str], errors: list[str]) -> None:
        """Run the toolstack's own commands into `raw`; soft failures go into `errors`."""

    @abstractmethod
    def build_view(self, raw: Mapping[str, str]) -> HostView:
        """The pure parser of `raw` that replay calls too."""

    def failure_message(self, result: CommandResult) -> str:
        """What a failed command said, for quoting."""
        return trim(result.stderr) or "(no message)"

    def explain_failure(self, result: CommandResult, message: str) -> str | None:
        """A clearer message than "exit code N" for a failure this CLI is known to print."""
        return None

    def accept_failure(self, args: Sequence[str], result: CommandResult) -> bool:
        """True when a non-zero exit still printed output worth keeping."""
        return False

    # --- shared ------------------------------------------------------------------

    def _make_runner(self) -> CommandRunner:
        if self._runner is not None:
            return self._runner
        if self.spec.ssh_host:
            from xenaudit.hypervisor.ssh_runner import SshRunner

            return SshRunner(self.spec, self.ssh)
        return LocalRunner()

    def dom0_file(self, path: str) -> str:
        """Where to read one of the toolstack's files under /etc/xen.

        Locally the cfg_dir is this Dom0's own /etc/xen (or a test's stand-in);
        on a remote Dom0 the toolstack reads its compiled-in path there.
        """
        if self.spec.ssh_host:
            return path
        return str(Path(self.spec.cfg_dir) / Path(path).name)

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
        errors: list[str] = []
        self.read_toolstack(runner, raw, errors)
        if self.signals:
            extra = read_signals(
                runner,
                [self.command, "dmesg"],
                self.command_timeout_s,
                self.max_bytes,
                xentop_text=raw.get(RAW_XENTOP),
            )
            errors.extend(extra.pop(RAW_SIGNAL_ERRORS, "").splitlines())
            raw.update(extra)
        if errors:
            raw[RAW_SIGNAL_ERRORS] = "\n".join(errors) + "\n"
        try:
            return self.build_view(raw)
        except RawParseError as exc:
            raise HypervisorError(
                self.spec.name, f"{exc.source} ({runner.description})", exc.message
            ) from None

    def read_file_into(
        self, runner: CommandRunner, raw: dict[str, str], key: str, path: str, max_bytes: int
    ) -> None:
        """One of the toolstack's files into `raw` under `key`, when it can be read."""
        text = runner.read_file(self.dom0_file(path), max_bytes)
        if text is not None:
            raw[key] = text

    def run(self, runner: CommandRunner, args: Sequence[str]) -> CommandResult:
        """Run the CLI with `args`; every way it can fail is a HypervisorError naming it."""
        source = f"{self.backend} {' '.join(args)} ({runner.description})"
        host = self.spec.name
        not_found = f"{self.command} not found on PATH; {self.not_found_hint}"
        try:
            result = runner.run([self.command, *args], self.command_timeout_s, self.max_bytes)
        except CommandNotFound:
            raise HypervisorError(host, source, not_found) from None
        except CommandTimeout:
            raise HypervisorError(
                host,
                source,
                f"timed out after {self.command_timeout_s:g} s ({self.backend} was killed)",
            ) from None
        except OutputTooLarge:
            raise HypervisorError(
                host, source, f"printed more than {self.max_bytes} bytes; stopped"
            ) from None
        except RunnerError as exc:
            raise HypervisorError(host, source, str(exc)) from None
        if result.returncode == 0:
            return result
        message = self.failure_message(result)
        if result.returncode == 127:
            raise HypervisorError(host, source, f"{not_found} ({message})")
        if self.accept_failure(args, result):
            return result
        explained = self.explain_failure(result, message)
        raise HypervisorError(
            host, source, explained or f"exit code {result.returncode}: {message}"
        )
