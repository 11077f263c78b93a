"""Client keys, loaded once per run and shared by every connection.

Parsing a private key file (and, for encrypted formats, running its KDF)
costs more than a whole key exchange, so each file is read once and the key
object reused; keys are immutable and paramiko signs with them from any
thread.

Order of attempts, fastest first for the usual setups: the identity files
the inventory or ssh_config name, then the keys of a running ssh-agent
(unless `IdentitiesOnly yes`), then the default files (~/.ssh/id_ed25519,
id_ecdsa, id_rsa) when nothing was named. Encrypted files cannot be used
without a passphrase prompt, which a nightly job does not have: they are
skipped with a note that suggests the agent.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import paramiko

from xenaudit.collector.keyfile import unprotected_key

DEFAULT_IDENTITIES: tuple[str, ...] = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
#: Larger than any real private key file; guards against pointing at a huge file.
MAX_KEY_FILE_BYTES = 64 * 1024


class _Refused(Exception):
    """A key file that is there but must not be used."""


@dataclass(frozen=True)
class LoadedKey:
    label: str
    key: paramiko.PKey


class KeyRing:
    """Private keys by path, loaded on first use; problems are kept for messages."""

    def __init__(self, use_agent: bool = True) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, LoadedKey | None] = {}
        self._problems: dict[str, str] = {}
        self.use_agent = use_agent and bool(os.environ.get("SSH_AUTH_SOCK"))

    def file_keys(self, paths: Sequence[str]) -> list[LoadedKey]:
        """Keys for `paths` (or the defaults when empty), skipping unusable files."""
        chosen = paths or [os.path.expanduser(p) for p in DEFAULT_IDENTITIES]
        keys = []
        for path in chosen:
            key = self._load(path, explicit=bool(paths))
            if key is not None:
                keys.append(key)
        return keys

    def problems(self, paths: Sequence[str]) -> list[str]:
        chosen = paths or [os.path.expanduser(p) for p in DEFAULT_IDENTITIES]
        with self._lock:
            return [self._problems[p] for p in chosen if p in self._problems]

    def _load(self, path: str, explicit: bool) -> LoadedKey | None:
        with self._lock:
            if path in self._keys:
                return self._keys[path]
            loaded = None
            try:
                unprotected = unprotected_key(path)
                if unprotected is not None:
                    raise _Refused(unprotected)
                if os.path.getsize(path) > MAX_KEY_FILE_BYTES:
                    raise ValueError("file too large to be a private key")
                loaded = LoadedKey(path, paramiko.PKey.from_path(path))
            except FileNotFoundError:
                if explicit:
                    self._problems[path] = f"{path}: no such identity file"
            except _Refused as exc:
                self._problems[path] = str(exc)
            except paramiko.PasswordRequiredException:
                self._problems[path] = f"{path}: encrypted; load it into ssh-agent instead"
            except (OSError, ValueError, paramiko.SSHException) as exc:
                self._problems[path] = f"{path}: not a usable private key ({exc})"
            self._keys[path] = loaded
            return loaded


def agent_keys() -> tuple[paramiko.Agent | None, list[LoadedKey]]:
    """A fresh agent connection and its keys.

    One connection per guest: paramiko's agent client is not safe to share
    between threads that sign at the same time.
    """
    try:
        agent = paramiko.Agent()
        keys = [LoadedKey(f"agent:{k.fingerprint}", k) for k in agent.get_keys()]
    except (OSError, paramiko.SSHException):
        return None, []
    return agent, keys
