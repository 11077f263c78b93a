"""Host key checking with OpenSSH's known_hosts semantics, loaded once per run.

Why not paramiko's `HostKeys`: it keeps one key per host and type, skips
`@revoked` lines, and would be re-read per connection by `SSHClient`. Here the
files are parsed once, keys are compared as raw blobs (no key objects, no
crypto), and the verdict distinguishes unknown from changed, which the report
must tell the admin.

Matching follows sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT":
* the name looked up is `host` on port 22 and `[host]:port` otherwise,
  lowercased;
* a host field is a comma-separated pattern list (`*`, `?`, `!negation`) or
  one hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`;
* `@revoked` keys are refused for every host (stricter than OpenSSH, which
  scopes them by pattern: a revoked key is compromised everywhere);
* `@cert-authority` lines are ignored: host certificates are not supported,
  so such hosts count as unknown.

Any known key for the host that is not the offered key makes the key
"changed", even when it is of another type: otherwise an attacker could offer
a new key type and have `accept-new` record it.
"""

from __future__ import annotations

import base64
import binascii
import errno
import fcntl
import hashlib
import hmac
import os
import re
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Decision = Literal["known", "new", "changed", "revoked"]

_MARKERS = frozenset({"@revoked", "@cert-authority"})
_WILDCARD = re.compile(r"[*?!]")
#: Largest known_hosts file we read; a real one with 10,000 hosts is ~1 MiB.
MAX_FILE_BYTES = 32 * 1024 * 1024


class KnownHostsError(Exception):
    """A known_hosts file could not be read or written. Names the file."""


def known_hosts_name(host: str, port: int) -> str:
    """The name OpenSSH looks up (and records) for a host and port."""
    host = host.lower()
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(blob: bytes) -> str:
    """SHA256 fingerprint exactly as OpenSSH prints it (`SHA256:` + unpadded base64)."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def key_type_of(blob: bytes) -> str | None:
    """The key type named inside a public key blob (`ssh-ed25519`, `ssh-rsa`, ...)."""
    if len(blob) < 4:
        return None
    (length,) = struct.unpack(">I", blob[:4])
    if length == 0 or length > 64 or len(blob) < 4 + length:
        return None
    try:
        return blob[4 : 4 + length].decode("ascii")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    #: Fingerprint of the key the server offered.
    fingerprint: str
    #: For "changed": fingerprints of the keys we know for this host.
    known: tuple[str, ...] = ()
    #: file:line of the entry that decided (known, changed or revoked).
    where: str | None = None

    @property
    def accepted(self) -> bool:
        return self.decision == "known"

    def explain(self, name: str) -> str:
        """A sentence for the report: what was offered, what we know, what to do."""
        if self.decision == "known":
            return f"host key {self.fingerprint} for {name} is known ({self.where})"
        if self.decision == "revoked":
            return f"host key {self.fingerprint} for {name} is marked @revoked ({self.where})"
        if self.decision == "changed":
            was = ", ".join(self.known)
            return (
                f"host key for {name} has CHANGED: offered {self.fingerprint}, known {was} "
                f"({self.where}); check the guest before removing the old entry"
            )
        return (
            f"host key {self.fingerprint} for {name} is unknown; verify it and add it "
            'to known_hosts, or use host_key_policy = "accept-new"'
        )


@dataclass(frozen=True)
class _Entry:
    patterns: tuple[str, ...]
    hashed: tuple[bytes, bytes] | None
    key_type: str
    blob: bytes
    marker: str | None
    where: str

    def matches(self, name: str) -> bool:
        if self.hashed is not None:
            salt, digest = self.hashed
            mine = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
            return hmac.compare_digest(mine, digest)
        return _match_pattern_list(name, self.patterns)


class KnownHosts:
    """Every known_hosts entry we trust, plus xenaudit's own file for `accept-new`.

    Thread-safe: checks may run from many worker threads, and recording a
    first-seen key happens under a lock (and an flock on the file, for other
    xenaudit processes) after a re-read, so two connections to the same new
    host cannot record two different keys.
    """

    def __init__(self, files: Sequence[str | os.PathLike[str]], own_file: str | None) -> None:
        self._files = [Path(os.path.expanduser(os.fspath(f))) for f in files]
        self._own = Path(os.path.expanduser(own_file)) if own_file else None
        self._lock = threading.Lock()
        self._by_name: dict[str, list[_Entry]] = {}
        self._scan: list[_Entry] = []
        self._revoked: dict[bytes, str] = {}
        self._own_lines = 0
        self.problems: list[str] = []
        paths = list(self._files)
        if self._own is not None and self._own not in paths:
            paths.append(self._own)
        for path in paths:
            self._load(path)

    # --- lookups -----------------------------------------------------------------

    def check(self, name: str, blob: bytes) -> Verdict:
        """Decide about `blob` offered by the host known as `name` (see known_hosts_name)."""
        with self._lock:
            return self._check(name.lower(), blob)

    def check_or_record(self, name: str, blob: bytes, accept_new: bool) -> Verdict:
        """Like `check`, and with `accept_new` record a first-seen key in our own file."""
        name = name.lower()
        with self._lock:
            verdict = self._check(name, blob)
            if verdict.decision != "new" or not accept_new:
                return verdict
            if self._own is None:
                return verdict
            return self._record(name, blob, verdict)

    def known_types(self, name: str) -> list[str]:
        """Key types recorded for `name`, to offer those host key algorithms first."""
        with self._lock:
            return sorted({e.key_type for e in self._entries_for(name.lower()) if not e.marker})

    # --- internals ---------------------------------------------------------------

    def _check(self, name: str, blob: bytes) -> Verdict:
        fp = fingerprint(blob)
        if blob in self._revoked:
            return Verdict("revoked", fp, where=self._revoked[blob])
        matching = [e for e in self._entries_for(name) if e.marker is None]
        for entry in matching:
            if entry.blob == blob:
                return Verdict("known", fp, where=entry.where)
        if matching:
            known = tuple(dict.fromkeys(fingerprint(e.blob) for e in matching))
            return Verdict("changed", fp, known=known, where=matching[0].where)
        return Verdict("new", fp)

    def _entries_for(self, name: str) -> Iterable[_Entry]:
        yield from self._by_name.get(name, ())
        for entry in self._scan:
            if entry.matches(name):
                yield entry

    def _record(self, name: str, blob: bytes, verdict: Verdict) -> Verdict:
        own = self._own
        assert own is not None
        key_type = key_type_of(blob) or "unknown"
        line = f"{name} {key_type} {base64.b64encode(blob).decode('ascii')}\n"
        try:
            _make_private_dir(own.parent)
            fd = os.open(own, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise KnownHostsError(f"{own}: cannot create: {exc.strerror or exc}") from None
        try:
            os.fchmod(fd, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Another xenaudit may have recorded this host since we loaded the file.
            self._reload_own(fd)
            again = self._check(name, blob)
            if again.decision != "new":
                return again
            os.write(fd, line.encode("ascii"))
            os.fsync(fd)
        except OSError as exc:
            raise KnownHostsError(f"{own}: cannot record a key: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        lineno = self._own_lines + 1
        self._own_lines = lineno
        self._add(_parse_line(line.strip(), f"{own}:{lineno}"))
        return Verdict("known", verdict.fingerprint, where=f"{own}:{lineno} (recorded now)")

    def _reload_own(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, "file too large")
        data = os.pread(fd, size, 0)
        own = str(self._own)
        self._by_name = {
            k: [e for e in v if not e.where.startswith(own + ":")] for k, v in self._by_name.items()
        }
        self._scan = [e for e in self._scan if not e.where.startswith(own + ":")]
        self._revoked = {k: v for k, v in self._revoked.items() if not v.startswith(own + ":")}
        self._parse_text(data, own)

    def _load(self, path: Path) -> None:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.problems.append(f"{path}: cannot read: {exc.strerror or exc}")
            return
        if len(data) > MAX_FILE_BYTES:
            self.problems.append(f"{path}: larger than {MAX_FILE_BYTES} bytes; ignored")
            return
        self._parse_text(data, str(path))

    def _parse_text(self, data: bytes, label: str) -> None:
        lines = data.decode("utf-8", "replace").splitlines()
        if self._own is not None and label == str(self._own):
            self._own_lines = len(lines)
        for number, raw in enumerate(lines, 1):
            entry = _parse_line(raw.strip(), f"{label}:{number}")
            if entry is not None:
                self._add(entry)

    def _add(self, entry: _Entry | None) -> None:
        if entry is None:
            return
        if entry.marker == "@revoked":
            self._revoked.setdefault(entry.blob, entry.where)
            return
        if entry.marker is not None:
            return
        if entry.hashed is None and not any(_WILDCARD.search(p) for p in entry.patterns):
            for pattern in entry.patterns:
                self._by_name.setdefault(pattern.lower(), []).append(entry)
        else:
            self._scan.append(entry)


def _parse_line(line: str, where: str) -> _Entry | None:
    if not line or line.startswith("#"):
        return None
    fields = line.split()
    marker = None
    if fields[0].startswith("@"):
        if fields[0] not in _MARKERS:
            return None
        marker, fields = fields[0], fields[1:]
    if len(fields) < 3:
        return None
    hosts, key_type, b64 = fields[0], fields[1], fields[2]
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if key_type_of(blob) != key_type:
        return None
    hashed = None
    patterns: tuple[str, ...] = ()
    if hosts.startswith("|1|"):
        parts = hosts.split("|")
        if len(parts) != 4:
            return None
        try:
            hashed = (base64.b64decode(parts[2]), base64.b64decode(parts[3]))
        except (binascii.Error, ValueError):
            return None
    else:
        patterns = tuple(p for p in hosts.lower().split(",") if p)
    return _Entry(patterns, hashed, key_type, blob, marker, where)


def _match_pattern_list(name: str, patterns: Sequence[str]) -> bool:
    """OpenSSH match_hostname(): any negated match wins, else any positive match."""
    found = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if _match_pattern(name, pattern[1:] if negate else pattern):
            if negate:
                return False
            found = True
    return found


def _match_pattern(name: str, pattern: str) -> bool:
    if not _WILDCARD.search(pattern):
        return name == pattern
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


def _make_private_dir(path: Path) -> None:
    """Create `path` (and parents) as 0700 when missing; existing folders are left alone."""
    if path.is_dir():
        return
    _make_private_dir(path.parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)
