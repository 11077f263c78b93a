#!/usr/bin/python3
"""udpflood HOST PORT SECONDS COUNT: send 1400-byte UDP datagrams to HOST:PORT.

Bounded by both time and count, and only ever pointed at a DomU on Dom0's own
bridge inside the emulated machine. Prints how many datagrams went out.
"""

import socket
import sys
import time


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    seconds, count = float(sys.argv[3]), int(sys.argv[4])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"x" * 1400
    end = time.monotonic() + seconds
    sent = 0
    while sent < count and time.monotonic() < end:
        try:
            sock.sendto(payload, (host, port))
            sent += 1
        except OSError:
            time.sleep(0.001)  # the guest stopped answering ARP, or the queue is full
    print(f"udpflood: sent {sent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
