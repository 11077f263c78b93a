"""A stand-in guest whose SSH server announces itself with a hostile banner.

sshd always sends its own version line, so this guest is a plain TCP
listener on 127.0.0.1 that sends the given banner bytes to every client
(the way a compromised or impostor guest could) and then keeps the
connection open until the client gives up. Nothing else is served.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class BannerGuest:
    """`with BannerGuest(b"SSH-2.0\\x1b]0;pwned\\x07-x\\r\\n") as guest: guest.port`."""

    def __init__(self, banner: bytes) -> None:
        self.banner = banner
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(8)
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            self.connections += 1
            with conn, contextlib.suppress(OSError):
                conn.sendall(self.banner)
                conn.settimeout(5.0)
                while conn.recv(4096):
                    pass

    def __enter__(self) -> BannerGuest:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._server.close()
