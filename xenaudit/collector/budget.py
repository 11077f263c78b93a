"""A byte budget on the raw socket, because paramiko buffers whatever a server sends.

paramiko reads the version banner line by line with no length limit, and
reads each packet in full whatever length its header announces (up to 4 GiB).
A hostile guest's sshd could therefore make us hold gigabytes before any
check of ours runs. Wrapping the TCP socket caps what can arrive at all:
a small allowance until the login succeeds, then the guest's byte cap plus
room for SSH framing and the channel window.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

#: What one SSH handshake may take, banner to authenticated (real ones use a few KiB).
HANDSHAKE_BYTES = 256 * 1024


class ByteBudgetExceeded(OSError):
    """The guest sent more than it was allowed; the connection is abandoned."""


class BudgetSocket:
    """Delegates to a socket, refusing to receive more than `budget` bytes in total."""

    def __init__(self, sock: socket.socket, budget: int) -> None:
        self._sock = sock
        self.budget = budget
        self.received = 0
        self.exceeded = False

    def allow(self, more: int) -> None:
        """Let `more` bytes arrive beyond what has arrived so far."""
        self.budget = self.received + more

    def recv(self, size: int) -> bytes:
        room = self.budget - self.received
        if room <= 0:
            self.exceeded = True
            # (errno, text): paramiko formats socket errors as exactly that pair.
            raise ByteBudgetExceeded(errno.EMSGSIZE, f"more than {self.budget} bytes received")
        data = self._sock.recv(min(size, room))
        self.received += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        # send, settimeout, close, getpeername, _closed, ...: the real socket's.
        return getattr(self._sock, name)
