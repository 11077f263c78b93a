"""Live memory changes through the `xl` found on PATH, on the Dom0 apply runs on."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

from xenaudit.apply.interface import LiveChanger, LiveResult, LiveStep, ProposedChange

#: xl answers in well under a second; a hung toolstack must not hang the run.
XL_TIMEOUT_S = 60.0
_MAX_DETAIL = 2000
#: One domain's `xl list -l` is a few KiB.
_MAX_LIST_BYTES = 4 * 1024 * 1024

_SUBCOMMANDS = {"max": "mem-max", "target": "mem-set"}


def _identity(output: str, name: str) -> tuple[int, str | None] | None:
    """(domid, uuid) of `name` in `xl list -l NAME` output, as libxl prints it (JSON)."""
    if len(output) > _MAX_LIST_BYTES:
        return None
    try:
        document = json.loads(output)
    except ValueError:
        return None
    if not isinstance(document, list):
        return None
    for entry in document:
        if not isinstance(entry, dict):
            continue
        config = entry.get("config")
        c_info = config.get("c_info") if isinstance(config, dict) else None
        if not isinstance(c_info, dict) or c_info.get("name") != name:
            continue
        domid = entry.get("domid")
        uuid = c_info.get("uuid")
        if isinstance(domid, int) and not isinstance(domid, bool):
            return domid, uuid if isinstance(uuid, str) else None
    return None


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
        """Compare domid and uuid now with the audit's: a change means a restart or another host.

        xl only ever acts on the Dom0 apply runs on, while a report may cover
        several Dom0s; a same-named domain here must not be taken for the one
        the audit saw there.
        """
        if self._xl is None:
            return "xl is not on PATH"
        if change.domain.startswith("-"):
            return "the domain name starts with '-', which xl would read as an option"
        if change.domid is None:
            return "the report has no domid to check the running domain against"
        code, out, err = self._run([self._xl, "list", "-l", change.domain])
        if code != 0:
            return f"xl list -l {change.domain} failed: {_clip(err) or f'exit {code}'}"
        found = _identity(out, change.domain)
        if found is None:
            return f"xl list -l {change.domain} did not describe the domain"
        domid, uuid = found
        if domid != change.domid:
            return (
                f"domid is {domid} now but was {change.domid} in the audit: the domain "
                "restarted, or this is not the Dom0 the audit read"
            )
        if change.uuid is not None and uuid != change.uuid:
            return f"uuid is {uuid} here but was {change.uuid} in the audit: another domain"
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
