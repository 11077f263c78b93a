"""Deadlines and bounded parallelism (runner.py), and SshCollector failures that need no sshd.

Fake servers here are plain sockets that misbehave on purpose: one never
speaks, one hangs up at once. Assertions are about outcomes, never about
how long something took.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import paramiko
import pytest

from xenaudit.collector.interface import GuestTarget
from xenaudit.collector.runner import Watchdog, run_bounded
from xenaudit.collector.ssh import SshCollector
from xenaudit.inventory.interface import SshSettings


class Closeable:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


def test_watchdog_closes_what_a_guard_holds_when_its_deadline_passes() -> None:
    watchdog = Watchdog()
    try:
        guard = watchdog.guard(time.monotonic() + 0.05)
        thing = Closeable()
        guard.add(thing)
        assert thing.closed.wait(timeout=10)
        assert guard.expired and guard.passed
        late = Closeable()
        guard.add(late)  # added after expiry: closed at once
        assert late.closed.is_set()
    finally:
        watchdog.stop()


def test_released_guards_are_left_alone_and_expire_all_hits_the_rest() -> None:
    watchdog = Watchdog()
    try:
        released = watchdog.guard(time.monotonic() + 3600)
        kept = watchdog.guard(time.monotonic() + 3600)
        a, b = Closeable(), Closeable()
        released.add(a)
        kept.add(b)
        released.release()
        watchdog.expire_all()
        assert b.closed.is_set() and kept.expired
        assert not a.closed.is_set() and not released.expired
    finally:
        watchdog.stop()


def test_run_bounded_never_exceeds_its_concurrency() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def work(item: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1
        return item * 2

    results = list(
        run_bounded(
            list(range(20)),
            work,
            concurrency=3,
            deadline=time.monotonic() + 60,
            grace_s=1,
            fallback=lambda item, exc: -1,
        )
    )
    assert sorted(results) == [i * 2 for i in range(20)]
    assert 1 <= peak <= 3


def test_stuck_and_failing_work_get_fallbacks_and_the_run_still_ends() -> None:
    release = threading.Event()
    abandoned = threading.Event()

    def work(item: str) -> str:
        if item == "stuck":
            release.wait(timeout=60)
            return "too late"
        if item == "broken":
            raise RuntimeError("bug")
        return f"{item}: done"

    try:
        results = list(
            run_bounded(
                ["fine", "stuck", "broken"],
                work,
                concurrency=3,
                deadline=time.monotonic() + 0.2,
                grace_s=0.1,
                fallback=lambda item, exc: f"{item}: fallback ({exc})",
                on_abandon=abandoned.set,
            )
        )
    finally:
        release.set()
    assert sorted(results) == ["broken: fallback (bug)", "fine: done", "stuck: fallback (None)"]
    assert abandoned.is_set()


def test_stopping_early_tells_running_work_to_give_up() -> None:
    abandoned = threading.Event()
    results = run_bounded(
        [1, 2, 3],
        lambda item: item,
        concurrency=1,
        deadline=time.monotonic() + 60,
        grace_s=1,
        fallback=lambda item, exc: 0,
        on_abandon=abandoned.set,
    )
    next(results)
    results.close()
    assert abandoned.is_set()


# --- SshCollector without sshd -------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts connections and never says a word (no SSH banner)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.fixture
def hangup_server() -> Iterator[tuple[int, list[int]]]:
    """Accepts each connection and closes it at once, like a busy sshd (MaxStartups)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    count = [0]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            count[0] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], count
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def flooding_server() -> Iterator[Callable[[bytes], int]]:
    """Sends `prefix` and then zeros without end to whoever connects."""
    servers: list[socket.socket] = []
    stop = threading.Event()

    def start(prefix: bytes) -> int:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        servers.append(server)

        def serve() -> None:
            server.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                with conn:
                    try:
                        conn.sendall(prefix)
                        while not stop.is_set():
                            conn.sendall(b"\0" * 65536)
                    except OSError:
                        pass

        threading.Thread(target=serve, daemon=True).start()
        return server.getsockname()[1]

    yield start
    stop.set()
    for server in servers:
        server.close()


@pytest.mark.parametrize(
    "prefix",
    [
        b"",  # a "version line" that never ends
        b"SSH-2.0-flood\r\n\xff\xff\xff\xf4",  # then a packet that claims to be 4 GiB
    ],
    ids=["endless-banner", "huge-packet"],
)
def test_a_flooding_server_is_cut_off_before_the_handshake_ends(flooding_server, prefix) -> None:
    port = flooding_server(prefix)
    target = GuestTarget("flood", "dom0a", "127.0.0.1", ssh_port=port)
    (snap,) = offline(guest_timeout_s=60).collect([target])
    assert snap.status == "unreachable"
    assert "bytes before the login finished" in snap.error


def offline(**settings) -> SshCollector:
    base = SshSettings(
        known_hosts="/nonexistent", own_known_hosts="/nonexistent/own", ssh_config=None
    )
    values = {**base.__dict__, **settings}
    return SshCollector(SshSettings(**values), global_known_hosts=None, use_agent=False)


def test_a_server_that_never_speaks_times_out(silent_server) -> None:
    port, _ = silent_server
    target = GuestTarget("mute", "dom0a", "127.0.0.1", ssh_port=port)
    (snap,) = offline(guest_timeout_s=0.5).collect([target])
    assert snap.status == "timeout"
    assert "guest_timeout_s=0.5" in snap.error
    assert "key exchange" in snap.error


def test_connections_closed_before_the_banner_are_retried_then_unreachable(hangup_server) -> None:
    port, count = hangup_server
    target = GuestTarget("busy", "dom0a", "127.0.0.1", ssh_port=port)
    (snap,) = offline(retries=2).collect([target])
    assert snap.status == "unreachable"
    assert "SSH negotiation failed" in snap.error
    assert count[0] == 3  # the first attempt and two retries


def test_invalid_host_names_are_refused_without_connecting() -> None:
    target = GuestTarget("evil", "dom0a", "-oProxyCommand=reboot")
    (snap,) = offline().collect([target])
    assert snap.status == "unreachable"
    assert "not a valid host name" in snap.error


def test_an_exhausted_run_deadline_times_out_every_guest() -> None:
    targets = [GuestTarget(f"g{i}", "dom0a", "127.0.0.1", ssh_port=1) for i in range(3)]
    snaps = list(offline(deadline_s=0.0).collect(targets))
    assert sorted(s.domain for s in snaps) == ["g0", "g1", "g2"]
    assert {s.status for s in snaps} == {"timeout"}
    assert all("run deadline" in s.error for s in snaps)


def test_no_targets_no_work() -> None:
    assert list(offline().collect([])) == []


class _FloodAfterLogin(paramiko.ServerInterface):
    """Lets anyone in, then answers `exec` with an endless stream of SSH_MSG_IGNORE."""

    def __init__(self, transport: paramiko.Transport) -> None:
        self.transport = transport

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        def flood() -> None:
            try:
                while self.transport.is_active():
                    self.transport.send_ignore(32768)
            except Exception:
                return

        threading.Thread(target=flood, daemon=True).start()
        return True


def test_a_guest_flooding_ssh_traffic_after_login_is_cut_off(tmp_path) -> None:
    host_key = paramiko.ECDSAKey.generate()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        conn, _ = server.accept()
        transport = paramiko.Transport(conn)
        transports.append(transport)
        transport.add_server_key(host_key)
        transport.start_server(server=_FloodAfterLogin(transport))

    threading.Thread(target=serve, daemon=True).start()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    client_key = tmp_path / "id_ecdsa"
    paramiko.ECDSAKey.generate().write_private_key_file(str(client_key))
    try:
        collector = offline(
            known_hosts=str(known), identity_file=str(client_key), max_bytes_per_guest=64 * 1024
        )
        (snap,) = collector.collect([GuestTarget("flood", "dom0a", "127.0.0.1", ssh_port=port)])
    finally:
        for transport in transports:
            transport.close()
        server.close()
    assert snap.status == "partial"
    assert "bytes of SSH traffic" in snap.error, snap.error
