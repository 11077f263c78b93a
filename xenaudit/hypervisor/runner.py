"""Running a Dom0's commands: here (subprocess) or on another Dom0 (SSH).

The `xl` backend only ever talks to a `CommandRunner`, so the same code path
runs the real `xl`, `xl` on a remote Dom0, or a fake `xl` that tests put
first on PATH. Every run has a wall-clock limit and a cap on the bytes kept,
because a wedged toolstack or a runaway output must not stall or exhaust a
nightly audit.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

#: Default cap on what one command may print before it is stopped.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
_READ_CHUNK = 65536


class RunnerError(Exception):
    """A command could not be run to completion (not: it ran and failed)."""


class CommandNotFound(RunnerError):
    """The program does not exist where the runner looked."""


class CommandTimeout(RunnerError):
    """The program was still running when its time was up; it has been killed."""


class OutputTooLarge(RunnerError):
    """The program printed more than the cap allows; it has been killed."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    #: Decoded with errors="replace": the text is hostile and may not be UTF-8.
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs a program on one Dom0 and reads small files there."""

    #: Where the commands run, for messages ("local", "ssh root@dom0b:22").
    description: str

    def run(self, argv: Sequence[str], timeout_s: float, max_bytes: int) -> CommandResult:
        """Run `argv` (no shell) and return its exit code and output."""
        ...

    def read_file(self, path: str, max_bytes: int) -> str | None:
        """The file's text, or None when it does not exist or cannot be read."""
        ...

    def close(self) -> None: ...


def trim(text: str, limit: int = 500) -> str:
    """A failed command's hostile output folded onto one line and cut, fit to quote."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class LocalRunner:
    """Runs programs on this machine with subprocess, never through a shell."""

    description = "local"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        # The environment is read when a command runs, not now, so a test that
        # changes PATH after creating the runner still gets its fake programs.
        self._env = dict(env) if env is not None else None

    def _resolve(self, program: str, env: Mapping[str, str]) -> str:
        if "/" in program:
            if os.path.isfile(program) and os.access(program, os.X_OK):
                return program
            raise CommandNotFound(f"{program} does not exist or is not executable")
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        if found is None:
            raise CommandNotFound(f"{program} not found on PATH")
        return found

    def run(self, argv: Sequence[str], timeout_s: float, max_bytes: int) -> CommandResult:
        env = dict(os.environ) if self._env is None else dict(self._env)
        program = self._resolve(argv[0], env)
        proc = subprocess.Popen(
            [program, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            # Its own process group, so a timeout also ends anything it started.
            start_new_session=True,
        )
        try:
            out, err = self._collect(proc, timeout_s, max_bytes, argv)
        except BaseException:
            self._kill(proc)
            raise
        return CommandResult(tuple(argv), proc.returncode, _decode(out), _decode(err))

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    @staticmethod
    def _collect(
        proc: subprocess.Popen[bytes], timeout_s: float, max_bytes: int, argv: Sequence[str]
    ) -> tuple[bytes, bytes]:
        """Read both pipes until EOF, the deadline or the cap, whichever comes first."""
        assert proc.stdout is not None and proc.stderr is not None
        deadline = time.monotonic() + timeout_s
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        buffers = {out_fd: bytearray(), err_fd: bytearray()}
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            selector.register(proc.stderr, selectors.EVENT_READ)
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CommandTimeout(f"{' '.join(argv)} timed out after {timeout_s:g} s")
                for key, _ in selector.select(remaining):
                    chunk = os.read(key.fd, _READ_CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    buffers[key.fd] += chunk
                    if len(buffers[key.fd]) > max_bytes:
                        raise OutputTooLarge(
                            f"{' '.join(argv)} printed more than {max_bytes} bytes"
                        )
        remaining = max(deadline - time.monotonic(), 0.0)
        try:
            proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            raise CommandTimeout(f"{' '.join(argv)} timed out after {timeout_s:g} s") from None
        proc.stdout.close()
        proc.stderr.close()
        return bytes(buffers[out_fd]), bytes(buffers[err_fd])

    def read_file(self, path: str, max_bytes: int) -> str | None:
        try:
            with Path(path).open("rb") as handle:
                return _decode(handle.read(max_bytes))
        except OSError:
            return None

    def close(self) -> None:
        return None
