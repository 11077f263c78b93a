"""Live memory changes through the `xl` found on PATH, on the Dom0 apply runs on."""

from __future__ import annotations

import shlex
import shutil
import subprocess

from xenaudit.apply.interface import LiveChanger, LiveResult, LiveStep, ProposedChange

#: xl answers in well under a second; a hung toolstack must not hang the run.
XL_TIMEOUT_S = 60.0
_MAX_DETAIL = 2000

_SUBCOMMANDS = {"max": "mem-max", "target": "mem-set"}


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "..."


class XlLiveChanger(LiveChanger):
    """Runs `xl mem-max` / `xl mem-set` with explicit MiB units (`768m`)."""

    def __init__(self, xl: str | None = None, timeout_s: float = XL_TIMEOUT_S) -> None:
        self._xl = xl if xl is not None else shutil.which("xl")
        self._timeout_s = timeout_s

    def _argv(self, domain: str, step: LiveStep) -> list[str]:
        return [self._xl or "xl", _SUBCOMMANDS[step.kind], domain, f"{step.memory_mib}m"]

    def describe(self, domain: str, step: LiveStep) -> str:
        return shlex.join(self._argv(domain, step))

    def _run(self, argv: list[str]) -> tuple[int | None, str, str]:
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self._timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None, "", f"timed out after {self._timeout_s:g} s"
        except OSError as exc:
            return None, "", f"cannot run {argv[0]}: {exc.strerror}"
        out = done.stdout.decode("utf-8", "replace")
        err = done.stderr.decode("utf-8", "replace")
        return done.returncode, out, err

    def check_identity(self, change: ProposedChange) -> str | None:
        """Compare the domid now with the audit's: a changed one means a restart or another host."""
        if self._xl is None:
            return "xl is not on PATH"
        if change.domain.startswith("-"):
            return "the domain name starts with '-', which xl would read as an option"
        if change.domid is None:
            return "the report has no domid to check the running domain against"
        code, out, err = self._run([self._xl, "domid", change.domain])
        if code != 0:
            return f"xl domid {change.domain} failed: {_clip(err) or f'exit {code}'}"
        try:
            domid = int(out.strip())
        except ValueError:
            return f"xl domid printed {_clip(out)!r}, not a number"
        if domid != change.domid:
            return (
                f"domid is {domid} now but was {change.domid} in the audit: the domain "
                "restarted, or this is not the Dom0 the audit read"
            )
        return None

    def run(self, domain: str, step: LiveStep) -> LiveResult:
        argv = self._argv(domain, step)
        command = shlex.join(argv)
        if self._xl is None:
            return LiveResult(step, command, "failed", "xl is not on PATH")
        code, out, err = self._run(argv)
        if code == 0:
            return LiveResult(step, command, "done", _clip(out))
        detail = _clip(err) or _clip(out) or f"exit status {code}"
        return LiveResult(step, command, "failed", detail)
