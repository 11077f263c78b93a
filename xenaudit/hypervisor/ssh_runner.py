"""Running a remote Dom0's commands over SSH, with the same rules as for guests.

Host keys are checked strictly by default: the key must already be in the
user's known_hosts or in xenaudit's own file, otherwise the connection is
refused. With `host_key_policy = "accept-new"` a key seen for the first time
is recorded in xenaudit's own file; a changed key is always refused. Every
connection has a timeout and every command a deadline and a byte cap.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Sequence
from pathlib import Path

import paramiko

from xenaudit.hypervisor.runner import (
    CommandResult,
    CommandTimeout,
    OutputTooLarge,
    RunnerError,
)
from xenaudit.inventory.interface import HypervisorSpec, SshSettings

_POLL_S = 0.05
_READ_CHUNK = 65536


class HostKeyRejected(RunnerError):
    """The Dom0's host key is unknown (strict policy) or has changed."""


class _RecordNewKey(paramiko.MissingHostKeyPolicy):
    """accept-new: trust a first-seen key and remember it in xenaudit's own file."""

    def __init__(self, own_known_hosts: Path) -> None:
        self.path = own_known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="ascii") as handle:
            handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class SshRunner:
    """Runs commands on `spec.ssh_host`; connects when created."""

    def __init__(self, spec: HypervisorSpec, ssh: SshSettings) -> None:
        assert spec.ssh_host
        host, port, user, identity = self._target(spec, ssh)
        self.user = user
        self.description = f"ssh {user}@{host}:{port}"
        self.use_sudo = ssh.use_sudo and user != "root"
        self.client = paramiko.SSHClient()
        for path in (ssh.known_hosts, ssh.own_known_hosts):
            expanded = Path(os.path.expanduser(path))
            if expanded.is_file():
                self.client.load_system_host_keys(str(expanded))
        if ssh.host_key_policy == "accept-new":
            policy: paramiko.MissingHostKeyPolicy = _RecordNewKey(
                Path(os.path.expanduser(ssh.own_known_hosts))
            )
        else:
            policy = paramiko.RejectPolicy()
        self.client.set_missing_host_key_policy(policy)
        try:
            self.client.connect(
                hostname=host,
                port=port,
                username=user,
                key_filename=identity,
                timeout=ssh.connect_timeout_s,
                banner_timeout=ssh.connect_timeout_s,
                auth_timeout=ssh.connect_timeout_s,
                allow_agent=True,
                look_for_keys=identity is None,
            )
        except paramiko.BadHostKeyException as exc:
            self.client.close()
            raise HostKeyRejected(
                f"host key of {host}:{port} has CHANGED (got {exc.key.get_name()}); refusing"
            ) from None
        except paramiko.SSHException as exc:
            self.client.close()
            if "known_hosts" in str(exc):
                raise HostKeyRejected(
                    f"host key of {host}:{port} is not known (strict host key checking); "
                    'add it to known_hosts or set host_key_policy = "accept-new"'
                ) from None
            raise RunnerError(f"ssh to {user}@{host}:{port} failed: {exc}") from None
        except OSError as exc:
            self.client.close()
            raise RunnerError(f"cannot connect to {host}:{port}: {exc}") from None

    @staticmethod
    def _target(spec: HypervisorSpec, ssh: SshSettings) -> tuple[str, int, str, str | None]:
        """Host, port, user and key, from the spec, then ~/.ssh/config, then the defaults."""
        assert spec.ssh_host
        host, port = spec.ssh_host, spec.ssh_port
        user = spec.ssh_user
        identity = ssh.identity_file
        config_path = Path(os.path.expanduser(ssh.ssh_config)) if ssh.ssh_config else None
        if config_path is not None and config_path.is_file():
            found = paramiko.SSHConfig.from_path(str(config_path)).lookup(spec.ssh_host)
            host = found.get("hostname", host)
            if port == 22 and "port" in found:
                port = int(found["port"])
            user = user or found.get("user")
            if identity is None and found.get("identityfile"):
                identity = os.path.expanduser(found["identityfile"][0])
        if port == 22 and ssh.port != 22:
            port = ssh.port
        return host, port, user or ssh.user, identity

    def run(self, argv: Sequence[str], timeout_s: float, max_bytes: int) -> CommandResult:
        command = shlex.join(["sudo", "-n", *argv] if self.use_sudo else list(argv))
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise RunnerError(f"{self.description}: connection is closed")
        deadline = time.monotonic() + timeout_s
        channel = transport.open_session(timeout=timeout_s)
        try:
            channel.settimeout(_POLL_S)
            channel.exec_command(command)
            out, err = bytearray(), bytearray()
            while True:
                progressed = False
                while channel.recv_ready():
                    out += channel.recv(_READ_CHUNK)
                    progressed = True
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(_READ_CHUNK)
                    progressed = True
                if len(out) > max_bytes or len(err) > max_bytes:
                    raise OutputTooLarge(f"{' '.join(argv)} printed more than {max_bytes} bytes")
                if (
                    channel.exit_status_ready()
                    and not channel.recv_ready()
                    and not channel.recv_stderr_ready()
                ):
                    break
                if time.monotonic() > deadline:
                    raise CommandTimeout(f"{' '.join(argv)} timed out after {timeout_s:g} s")
                if not progressed:
                    time.sleep(_POLL_S)
            status = channel.recv_exit_status()
        finally:
            channel.close()
        return CommandResult(
            tuple(argv),
            status,
            bytes(out).decode("utf-8", errors="replace"),
            bytes(err).decode("utf-8", errors="replace"),
        )

    def read_file(self, path: str, max_bytes: int) -> str | None:
        try:
            result = self.run(["cat", "--", path], 30.0, max_bytes)
        except RunnerError:
            return None
        return result.stdout if result.returncode == 0 else None

    def close(self) -> None:
        self.client.close()
