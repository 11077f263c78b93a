"""A stand-in Dom0 reached over SSH: a real OpenSSH sshd whose sessions find the fake tools.

The sshd runs in its own mount namespace (for its private /run/sshd) and
gives every session, through `SetEnv`, a PATH that starts with the fake
`xl`, `xm`, `xentop`, `xenstore-ls` and `xenstore-read` beside this file, and
the recordings of one host. So the remote side answers exactly what the
recordings hold, through the same executables the local tests run.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fake_xl.support import FAKE_XL_BIN
from tests.localssh import free_port, keygen


class StandinDom0Error(Exception):
    """The stand-in could not be started (missing root, sshd or unshare)."""


@dataclass(frozen=True)
class StandinDom0:
    port: int
    directory: Path
    client_key: Path
    host_public_key: str
    log: Path

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_public_key}\n"


def available() -> str | None:
    """Why a stand-in Dom0 cannot run here, or None."""
    if not Path("/usr/sbin/sshd").is_file():
        return "no /usr/sbin/sshd"
    if not all(shutil.which(p) for p in ("unshare", "ssh-keygen")):
        return "needs unshare and ssh-keygen"
    import os

    if os.geteuid() != 0:
        return "needs root (sshd in a private mount namespace)"
    return None


@contextmanager
def standin_dom0(directory: Path, recordings: Path) -> Iterator[StandinDom0]:
    """Start an sshd on 127.0.0.1 that serves `recordings`; stopped on exit."""
    why = available()
    if why is not None:
        raise StandinDom0Error(why)
    keygen(directory / "hostkey")
    keygen(directory / "clientkey")
    shutil.copy(directory / "clientkey.pub", directory / "authorized_keys")
    port = free_port()
    log_calls = directory / "calls.log"
    (directory / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory}/hostkey\n"
        f"PidFile {directory}/sshd.pid\nAuthorizedKeysFile {directory}/authorized_keys\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "PrintMotd no\nPrintLastLog no\n"
        f"SetEnv XENAUDIT_FAKE_XL_DIR={recordings} XENAUDIT_FAKE_XL_LOG={log_calls} "
        f"PATH={FAKE_XL_BIN}:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )
    script = (
        "mount -t tmpfs -o mode=0755 tmpfs /run/sshd 2>/dev/null "
        "|| { mkdir -p /run/sshd && mount -t tmpfs -o mode=0755 tmpfs /run/sshd; }; "
        f"exec /usr/sbin/sshd -D -e -f {directory}/sshd_config"
    )
    with (directory / "sshd.log").open("w") as log:
        server = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise StandinDom0Error(
                            f"sshd did not start: {(directory / 'sshd.log').read_text()}"
                        ) from None
                    time.sleep(0.1)
            public = " ".join((directory / "hostkey.pub").read_text().split()[:2])
            yield StandinDom0(port, directory, directory / "clientkey", public, log_calls)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
