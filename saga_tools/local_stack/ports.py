"""Free TCP ports on the loopback interface, and waiting for a port to accept connections."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

# Where Linux says which ports it gives outgoing connections (their local end), e.g. "32768 60999".
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# The lowest port handed out when the ephemeral range leaves room below it (above the well-known
# services' ports: PostgreSQL's 5432, Kafka's 9092, the platform's 8001-8004).
LOWEST = 10_000
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on right now, not one this process handed out before.

    Taken below the range the OS gives outgoing connections where that range is known (Linux). A port
    the OS picked (bind to 0) comes from that range, and between the pick and the server's bind, seconds
    later, any connection the starting processes open (to Kafka, to PostgreSQL) may take it as its local
    port: a service then failed to start with "address already in use" (order's HTTP port in the
    client's platform tests). A tiny race with other processes picking ports remains until it is bound.
    """
    low = _ephemeral_low()
    if low is not None and low > LOWEST:
        for _ in range(1000):
            port = random.randrange(LOWEST, low)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    while True:  # elsewhere, or nothing free below: the OS picks
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _ephemeral_low() -> int | None:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(port: int, timeout: float, *, alive: object = None) -> bool:
    """Poll until `port` accepts connections; False on timeout or when `alive()` says the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(port):
            return True
        if callable(alive) and not alive():
            return False
        time.sleep(0.1)
    return False
