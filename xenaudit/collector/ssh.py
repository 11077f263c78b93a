"""Collect guests over SSH: one connection and one exec per guest.

Cost model (why the code looks like this): on a Dom0 the run is bound by
CPU, shared with the guests' sshd. Per guest we pay one TCP connect, one key
exchange, one signature, one session and one exec of `sh`; everything else
(known_hosts, keys, ssh_config, the probe template) is prepared once per
run. Algorithms are chosen for cheap and safe handshakes: curve25519 key
exchange first (every OpenSSH since 6.5 has it; the ML-KEM hybrid comes
next, for servers that offer nothing older), Ed25519 host keys first
(restricted to the types known_hosts holds for the host, as OpenSSH does,
so a changed key is never mistaken for a new one), AES-GCM so each packet
needs one primitive rather than a cipher plus an HMAC. Measured here, the
client side costs about 7 ms of CPU per guest; the guest's sshd login costs
twenty times that, so the rest of the run is bound by the guests.

Statuses: `ok`, `partial` (some sections missing, cut or failed, or the
byte cap hit), `unreachable`, `auth_failed`, `host_key_rejected` and
`timeout`. Every failure becomes a snapshot; nothing raises for one guest.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paramiko
from paramiko.common import DEFAULT_WINDOW_SIZE

from xenaudit.collector.budget import HANDSHAKE_BYTES, BudgetSocket
from xenaudit.collector.credentials import KeyRing, LoadedKey, agent_keys
from xenaudit.collector.interface import (
    CollectionStatus,
    GuestCollector,
    GuestSnapshot,
    GuestTarget,
)
from xenaudit.collector.knownhosts import KnownHosts, KnownHostsError
from xenaudit.collector.probe import PROBE_COMMAND, build_probe, new_token
from xenaudit.collector.runner import Guard, Watchdog, run_bounded
from xenaudit.collector.sshconfig import Hop, RouteError, SshConfigView
from xenaudit.collector.stream import ProbeOutput, ProbeStream
from xenaudit.inventory.interface import SshSettings

# paramiko logs every failed connection at ERROR; without a handler Python's
# last-resort handler would print them on stderr in the middle of the progress
# lines. The statuses and messages we return say the same, once.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"

_KEX = (
    "curve25519-sha256@libssh.org",
    "mlkem768x25519-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group14-sha256",
)
_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr")
_MACS = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-512",
)
#: Host key algorithm -> the key type known_hosts records for it.
_HOST_KEY_ALGS = (
    ("ssh-ed25519", "ssh-ed25519"),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
    ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
    ("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"),
    ("rsa-sha2-512", "ssh-rsa"),
    ("rsa-sha2-256", "ssh-rsa"),
)
_READ_CHUNK = 64 * 1024
#: Extra time the guest's own `timeout` allows its commands beyond ours, so
#: we always give up first and leftovers on the guest still end.
_GUEST_SIDE_MARGIN_S = 5
#: How long after the run deadline we wait for workers that are stuck where
#: closing a socket cannot reach them (a DNS lookup).
_DEADLINE_GRACE_S = 5.0


def _supported(names: Iterable[str], table: Iterable[str]) -> tuple[str, ...]:
    known = set(table)
    return tuple(n for n in names if n in known)


_USE_KEX = _supported(_KEX, paramiko.Transport._kex_info)  # type: ignore[attr-defined]
_USE_CIPHERS = _supported(_CIPHERS, paramiko.Transport._cipher_info)  # type: ignore[attr-defined]
_USE_MACS = _supported(_MACS, paramiko.Transport._mac_info)  # type: ignore[attr-defined]
_USE_HOST_KEY_ALGS = tuple(
    (alg, kind)
    for alg, kind in _HOST_KEY_ALGS
    if alg in paramiko.Transport._key_info  # type: ignore[attr-defined]
)


class _Fail(Exception):
    """One guest's failure, already classified."""

    def __init__(
        self,
        status: CollectionStatus,
        message: str,
        *,
        fingerprint: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.status: CollectionStatus = status
        self.message = message
        self.fingerprint = fingerprint
        self.transient = transient


@dataclass
class _Progress:
    """Where a guest's collection is, for timeout messages."""

    phase: str = "waiting for a worker"
    stream: ProbeStream | None = None
    #: The TCP connection to the first hop, with its byte budget.
    socket: BudgetSocket | None = None


@dataclass
class _Run:
    """What one `collect` call prepares once and shares between guests."""

    settings: SshSettings
    known_hosts: KnownHosts
    keys: KeyRing
    config: SshConfigView
    watchdog: Watchdog
    deadline: float
    password_for: Callable[[str, str], str | None] | None
    problems: list[str] = field(default_factory=list)


class SshCollector(GuestCollector):
    """Reads guests over SSH with paramiko, bounded in time, bytes and parallelism."""

    def __init__(
        self,
        settings: SshSettings,
        *,
        password_for: Callable[[str, str], str | None] | None = None,
        global_known_hosts: str | None = GLOBAL_KNOWN_HOSTS,
        use_agent: bool = True,
    ) -> None:
        """`password_for(user, host)` is asked only when `settings.allow_password` is set."""
        self.settings = settings
        self._password_for = password_for if settings.allow_password else None
        self._global_known_hosts = global_known_hosts
        self._use_agent = use_agent

    def collect(
        self,
        targets: Iterable[GuestTarget],
        on_done: Callable[[GuestSnapshot], None] | None = None,
    ) -> Iterator[GuestSnapshot]:
        settings = self.settings
        targets = list(targets)
        if not targets:
            return
        run = self._prepare(time.monotonic() + settings.deadline_s)
        try:
            results = run_bounded(
                targets,
                lambda target: _collect_one(run, target),
                concurrency=settings.concurrency,
                deadline=run.deadline,
                grace_s=_DEADLINE_GRACE_S,
                fallback=lambda target, exc: _abandoned(run, target, exc),
                on_abandon=run.watchdog.expire_all,
            )
            for snapshot in results:
                if on_done is not None:
                    on_done(snapshot)
                yield snapshot
                del snapshot  # the consumer may drop a big kernel log; do not keep it alive
        finally:
            run.watchdog.expire_all()
            run.watchdog.stop()

    def _prepare(self, deadline: float) -> _Run:
        settings = self.settings
        files = [settings.known_hosts]
        if self._global_known_hosts:
            files.append(self._global_known_hosts)
        known = KnownHosts(files, settings.own_known_hosts)
        return _Run(
            settings=settings,
            known_hosts=known,
            keys=KeyRing(use_agent=self._use_agent),
            config=SshConfigView(settings.ssh_config),
            watchdog=Watchdog(),
            deadline=deadline,
            password_for=self._password_for,
            problems=list(known.problems),
        )


# --- one guest -------------------------------------------------------------------


def _collect_one(run: _Run, target: GuestTarget) -> GuestSnapshot:
    settings = run.settings
    start = time.monotonic()
    if start >= run.deadline:
        return _snapshot(
            target,
            "timeout",
            f"not started before the run deadline (deadline_s={settings.deadline_s:g})",
        )
    deadline = min(start + settings.guest_timeout_s, run.deadline)
    limit = (
        f"guest_timeout_s={settings.guest_timeout_s:g}"
        if deadline < run.deadline
        else f"deadline_s={settings.deadline_s:g}"
    )
    guard = run.watchdog.guard(deadline)
    progress = _Progress(phase="resolving the route")
    transports: list[paramiko.Transport] = []
    try:
        try:
            hops = run.config.route(target, settings)
        except RouteError as exc:
            raise _Fail("unreachable", str(exc)) from None
        _connect_with_retries(run, hops, guard, progress, transports)
        output = _run_probe(run, transports[-1], guard, progress)
    except _Fail as fail:
        if guard.passed and fail.status in ("unreachable", "timeout"):
            return _timeout(target, progress, limit)
        return _snapshot(target, fail.status, fail.message, fingerprint=fail.fingerprint)
    except Exception as exc:
        if guard.passed:
            return _timeout(target, progress, limit)
        return _snapshot(
            target, "unreachable", f"{progress.phase}: {type(exc).__name__}: {exc}".strip()
        )
    finally:
        guard.release()
        for transport in reversed(transports):
            _close(transport)
    if guard.passed and not output.complete:
        return _timeout(target, progress, limit, output)
    return _from_output(target, output)


def _connect_with_retries(
    run: _Run,
    hops: tuple[Hop, ...],
    guard: Guard,
    progress: _Progress,
    transports: list[paramiko.Transport],
) -> None:
    attempt = 0
    while True:
        try:
            _connect(run, hops, guard, progress, transports)
            return
        except _Fail as fail:
            for transport in reversed(transports):
                _close(transport)
            transports.clear()
            if not fail.transient or guard.passed or attempt >= run.settings.retries:
                raise
            delay = min(2.0, 0.25 * 2**attempt) * random.uniform(1.0, 1.5)
            if delay >= guard.remaining():
                raise
            progress.phase = f"waiting to retry ({fail.message})"
            time.sleep(delay)
            attempt += 1


def _connect(
    run: _Run,
    hops: tuple[Hop, ...],
    guard: Guard,
    progress: _Progress,
    transports: list[paramiko.Transport],
) -> None:
    settings = run.settings
    for index, hop in enumerate(hops):
        where = "" if index == len(hops) - 1 else f"jump host {hop.label}: "
        remaining = guard.remaining()
        if remaining <= 0:
            raise _Fail("timeout", f"{where}out of time")
        if index == 0:
            progress.phase = f"{where}connecting to {hop.hostname}:{hop.port}"
            raw = _open_socket(hop, min(settings.connect_timeout_s, remaining), where)
            guard.add(raw)
            progress.socket = BudgetSocket(raw, HANDSHAKE_BYTES * len(hops))
            channel: BudgetSocket | paramiko.Channel = progress.socket
        else:
            progress.phase = f"{where}opening a tunnel to {hop.hostname}:{hop.port}"
            try:
                channel = transports[-1].open_channel(
                    "direct-tcpip",
                    (hop.hostname, hop.port),
                    ("127.0.0.1", 0),
                    timeout=min(settings.connect_timeout_s, remaining),
                )
            except paramiko.ChannelException as exc:
                raise _Fail(
                    "unreachable",
                    f"{hops[index - 1].label} could not connect to "
                    f"{hop.hostname}:{hop.port}: {exc.text}",
                ) from None
            except (paramiko.SSHException, OSError) as exc:
                raise _Fail("unreachable", f"{where}tunnel failed: {exc}") from None
        transport = paramiko.Transport(channel)  # type: ignore[arg-type]
        transports.append(transport)
        guard.add(transport)
        _handshake(run, transport, hop, guard, progress, where)
    if progress.socket is not None:
        # Logged in: now the guest may send its sections, plus SSH framing and one window.
        cap = settings.max_bytes_per_guest
        progress.socket.allow(cap + cap // 16 + DEFAULT_WINDOW_SIZE + HANDSHAKE_BYTES)


def _open_socket(hop: Hop, timeout: float, where: str) -> socket.socket:
    try:
        sock = socket.create_connection((hop.hostname, hop.port), timeout=timeout)
    except (ConnectionRefusedError, ConnectionResetError) as exc:
        raise _Fail(
            "unreachable",
            f"{where}{hop.hostname}:{hop.port}: {exc.strerror or 'connection refused'}",
            transient=True,
        ) from None
    except TimeoutError:
        raise _Fail(
            "unreachable", f"{where}{hop.hostname}:{hop.port}: no answer within {timeout:.3g}s"
        ) from None
    except socket.gaierror as exc:
        raise _Fail("unreachable", f"{where}cannot resolve {hop.hostname}: {exc}") from None
    except OSError as exc:
        raise _Fail(
            "unreachable", f"{where}{hop.hostname}:{hop.port}: {exc.strerror or exc}"
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _handshake(
    run: _Run,
    transport: paramiko.Transport,
    hop: Hop,
    guard: Guard,
    progress: _Progress,
    where: str,
) -> None:
    name = hop.known_hosts_name
    options = transport.get_security_options()
    options.kex = _USE_KEX
    options.ciphers = _USE_CIPHERS
    options.digests = _USE_MACS
    options.key_types = _host_key_algorithms(run.known_hosts.known_types(name))
    remaining = max(0.1, guard.remaining())
    transport.banner_timeout = remaining
    transport.handshake_timeout = remaining
    transport.auth_timeout = remaining
    progress.phase = f"{where}key exchange with {hop.hostname}:{hop.port}"
    try:
        transport.start_client(timeout=remaining)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        if progress.socket is not None and progress.socket.exceeded:
            raise _Fail(
                "unreachable",
                f"{where}the server sent more than {progress.socket.budget} bytes "
                "before the login finished; not an SSH server we can trust",
            ) from None
        if isinstance(exc, paramiko.SSHException):
            raise _Fail(
                "unreachable", f"{where}SSH negotiation failed: {exc}", transient=_was_reset(exc)
            ) from None
        raise _Fail(
            "unreachable", f"{where}connection lost during key exchange: {exc}", transient=True
        ) from None
    blob = transport.get_remote_server_key().asbytes()
    policy_new = run.settings.host_key_policy == "accept-new"
    try:
        verdict = run.known_hosts.check_or_record(name, blob, accept_new=policy_new)
    except KnownHostsError as exc:
        raise _Fail("host_key_rejected", f"{where}{exc}") from None
    if not verdict.accepted:
        # An unreadable known_hosts file explains many "unknown" keys at once.
        notes = f" (note: {'; '.join(run.problems)})" if run.problems else ""
        raise _Fail(
            "host_key_rejected",
            where + verdict.explain(name) + notes,
            fingerprint=verdict.fingerprint,
        )
    progress.phase = f"{where}authenticating as {hop.user}"
    _authenticate(run, transport, hop, where)


def _host_key_algorithms(known_types: list[str]) -> tuple[str, ...]:
    """Offer the algorithms of the key types we know for the host first (or only them)."""
    if known_types:
        mine = tuple(alg for alg, kind in _USE_HOST_KEY_ALGS if kind in known_types)
        if mine:
            return mine
    return tuple(alg for alg, _ in _USE_HOST_KEY_ALGS)


def _authenticate(run: _Run, transport: paramiko.Transport, hop: Hop, where: str) -> None:
    tried: list[str] = []
    allowed: list[str] | None = None
    agents: list[paramiko.Agent] = []

    def from_agent() -> list[LoadedKey]:
        agent, keys = agent_keys()
        if agent is not None:
            agents.append(agent)
        return keys

    try:
        for key in _candidate_keys(run, hop, from_agent):
            if allowed is not None and "publickey" not in allowed:
                break
            try:
                more = transport.auth_publickey(hop.user, key.key)
            except paramiko.BadAuthenticationType as exc:
                allowed = list(exc.allowed_types)
                break
            except paramiko.AuthenticationException:
                tried.append(key.label)
                continue
            if not more:
                return
            raise _Fail(
                "auth_failed",
                f"{where}{hop.label} wants more authentication ({', '.join(more)}) "
                "after the key; not supported",
            )
        if run.password_for is not None and (allowed is None or "password" in allowed):
            password = run.password_for(hop.user, hop.hostname)
            if password is not None:
                try:
                    if not transport.auth_password(hop.user, password, fallback=False):
                        return
                except paramiko.AuthenticationException:
                    tried.append("password")
    finally:
        for agent in agents:
            agent.close()

    problems = run.keys.problems(hop.identity_files)
    detail = f"tried {', '.join(tried)}" if tried else "no usable key"
    if allowed is not None:
        detail += f"; server allows only: {', '.join(allowed) or 'nothing'}"
    if problems:
        detail += f" ({'; '.join(problems)})"
    raise _Fail("auth_failed", f"{where}{hop.label}: authentication failed: {detail}")


def _candidate_keys(
    run: _Run, hop: Hop, from_agent: Callable[[], list[LoadedKey]]
) -> Iterator[LoadedKey]:
    seen: set[bytes] = set()

    def fresh(keys: Iterable[LoadedKey]) -> Iterator[LoadedKey]:
        for key in keys:
            blob = key.key.asbytes()
            if blob not in seen:
                seen.add(blob)
                yield key

    if hop.identity_files:
        yield from fresh(run.keys.file_keys(hop.identity_files))
    if run.keys.use_agent and not hop.identities_only:
        yield from fresh(from_agent())
    if not hop.identity_files:
        yield from fresh(run.keys.file_keys(()))


def _run_probe(
    run: _Run, transport: paramiko.Transport, guard: Guard, progress: _Progress
) -> ProbeOutput:
    settings = run.settings
    token = new_token()
    script = build_probe(
        token,
        kernlog_max_bytes=settings.kernlog_max_bytes,
        command_timeout_s=math.ceil(settings.guest_timeout_s) + _GUEST_SIDE_MARGIN_S,
        use_sudo=settings.use_sudo,
    )
    stream = ProbeStream(token, settings.max_bytes_per_guest, settings.kernlog_max_bytes)
    progress.stream = stream
    progress.phase = "opening a session"
    try:
        channel = transport.open_session(timeout=max(0.1, guard.remaining()))
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise _Fail("unreachable", f"the guest refused a session: {exc}") from None
    guard.add(channel)
    try:
        channel.set_combine_stderr(True)
        progress.phase = "starting the probe"
        channel.exec_command(PROBE_COMMAND)
        channel.sendall(script.encode("ascii"))
        channel.shutdown_write()
        progress.phase = "reading"
        while not stream.finished:
            remaining = guard.remaining()
            if remaining <= 0:
                break
            channel.settimeout(min(remaining, 5.0))
            try:
                data = channel.recv(_READ_CHUNK)
            except TimeoutError:
                continue
            if not data:
                break
            stream.feed(data)
        output = stream.result()
        if not output.complete and not output.capped and not guard.passed:
            output.problems.append(_why_it_ended(transport, channel, progress.socket))
        return output
    except (paramiko.SSHException, OSError, EOFError) as exc:
        if guard.passed:
            raise _Fail("timeout", str(exc)) from None
        output = stream.result()
        output.problems.append(f"connection lost: {exc}")
        return output
    finally:
        _close(channel)


# --- results -----------------------------------------------------------------------


def _from_output(target: GuestTarget, output: ProbeOutput) -> GuestSnapshot:
    if output.complete and not output.problems:
        status: CollectionStatus = "ok"
        error = None
    else:
        status = "partial"
        problems = list(output.problems)
        if not output.section_status:
            said = f"; it printed: {output.preamble}" if output.preamble else ""
            problems.insert(0, f"the probe produced no sections{said}")
        error = "; ".join(problems)
    return _snapshot(
        target,
        status,
        error,
        sections=output.sections,
        section_status=output.section_status,
        kernlog_source=output.kernlog_source,
    )


def _timeout(
    target: GuestTarget, progress: _Progress, limit: str, output: ProbeOutput | None = None
) -> GuestSnapshot:
    if output is None and progress.stream is not None:
        output = progress.stream.result()
    where = progress.phase
    if output is not None and progress.phase == "reading":
        current = next(
            (n for n, s in output.section_status.items() if s == "truncated"),
            None,
        )
        where = f"reading {current}" if current else "reading the probe output"
    message = f"no answer within {limit} ({where})"
    if output is None:
        return _snapshot(target, "timeout", message)
    return _snapshot(
        target,
        "timeout",
        message,
        sections=output.sections,
        section_status=output.section_status,
        kernlog_source=output.kernlog_source,
    )


def _abandoned(run: _Run, target: GuestTarget, exc: BaseException | None) -> GuestSnapshot:
    if exc is None:
        return _snapshot(
            target,
            "timeout",
            f"still running {_DEADLINE_GRACE_S:g}s after the run deadline "
            f"(deadline_s={run.settings.deadline_s:g}); abandoned",
        )
    return _snapshot(target, "unreachable", f"internal error: {type(exc).__name__}: {exc}")


def _snapshot(
    target: GuestTarget,
    status: CollectionStatus,
    error: str | None,
    *,
    fingerprint: str | None = None,
    sections: dict[str, str] | None = None,
    section_status: dict | None = None,
    kernlog_source: str | None = None,
) -> GuestSnapshot:
    return GuestSnapshot(
        domain=target.domain,
        host=target.host,
        status=status,
        collected_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        error=error,
        sections=dict(sections or {}),
        section_status=dict(section_status or {}),
        kernlog_source=kernlog_source,
        host_key_fingerprint=fingerprint,
    )


def _why_it_ended(
    transport: paramiko.Transport, channel: paramiko.Channel, sock: BudgetSocket | None
) -> str:
    """Why the output stopped early, for the error message."""
    if sock is not None and sock.exceeded:
        return f"the guest sent more than {sock.budget} bytes of SSH traffic"
    if channel.exit_status_ready() and channel.exit_status > 0:
        return f"the probe exited with status {channel.exit_status}"
    error = transport.get_exception()
    if error is not None and not isinstance(error, EOFError):
        return f"connection error: {error}"
    return "the guest closed the connection"


def _was_reset(exc: BaseException) -> bool:
    """A connection closed or reset before the SSH banner: sshd busy (MaxStartups) or restarting."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, ConnectionResetError | EOFError | BrokenPipeError):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _close(thing: paramiko.Transport | paramiko.Channel) -> None:
    # Closing a dead transport can raise; it is closed either way.
    with contextlib.suppress(Exception):
        thing.close()
