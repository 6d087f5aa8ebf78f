"""A network link the test can cut: a Linux network namespace joined to this one by a veth pair.

A server of the test (tests/chaos/relay.py) listens inside the namespace, on the namespace's end of the
pair; a service connects to it from the host's namespace, so its packets cross the pair. Taking the
namespace's end down leaves the host's end without a carrier: the kernel drops every packet the service
sends, SYNs included (the peer's address is a permanent neighbour entry, so no failed ARP answers "no
route to host"). That is a real partition as a process sees one: no RST, no error, connections that stall
and connects that hang until a timeout of its own fires, or the link comes back and TCP retransmits.

Needs root (ip netns, veth). No tc: this kernel has no netem and no classifiers; delay is the relay's.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def require_links() -> None:
    """Skip the calling test, saying why, where links cannot be made (not root, or no `ip`)."""
    import pytest

    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("a network fault needs root and iproute2's `ip` (network namespaces, veth pairs)")


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 in 10.250.0.0/16 that no interface on this machine uses (other runs may hold some)."""
    used = [
        ipaddress.IPv4Interface(word).network
        for line in _ip("-o", "-4", "addr", "show").splitlines()
        for before, word in zip(line.split(), line.split()[1:], strict=False)
        if before == "inet"
    ]
    rng = random.Random()
    while True:
        subnet = ipaddress.IPv4Network(f"10.250.{rng.randrange(256)}.{rng.randrange(64) * 4}/30")
        if not any(subnet.overlaps(network) for network in used):
            return subnet


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


class NetworkLink:
    """A namespace and a veth pair; `address` is the namespace's end, reached from here through the pair."""

    def __init__(self, tag: str) -> None:
        # Interface names have at most 15 characters; the pid keeps two concurrent runs apart.
        self.name = f"sg{os.getpid() % 100000}{tag}"[:12]
        self.host_end, self.far_end = f"{self.name}h", f"{self.name}n"
        subnet = _free_subnet()
        host_ip, far_ip = list(subnet.hosts())
        self.address = str(far_ip)
        self._flapping: threading.Event | None = None
        _ip("netns", "add", self.name)
        try:
            _ip(
                "link", "add", self.host_end, "type", "veth", "peer", "name", self.far_end, "netns", self.name
            )
            _ip("addr", "add", f"{host_ip}/30", "dev", self.host_end)
            _ip("-n", self.name, "addr", "add", f"{far_ip}/30", "dev", self.far_end)
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("-n", self.name, "link", "set", self.far_end, "up")
            _ip("link", "set", self.host_end, "up")
            mac = _ip("-n", self.name, "-o", "link", "show", self.far_end).split("link/ether ")[1].split()[0]
            _ip("neigh", "replace", self.address, "lladdr", mac, "dev", self.host_end, "nud", "permanent")
        except BaseException:
            self.close()
            raise

    @contextmanager
    def inside(self) -> Iterator[None]:
        """Run the block's socket calls in the namespace (this thread only: setns is per thread); sockets
        made there stay in it after the block."""
        here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        there = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(there)
            try:
                yield
            finally:
                _setns(here)
        finally:
            os.close(here)
            os.close(there)

    def cut(self) -> None:
        """Drop every packet between here and the namespace, both ways, until `repair`."""
        _ip("-n", self.name, "link", "set", self.far_end, "down")

    def repair(self) -> None:
        _ip("-n", self.name, "link", "set", self.far_end, "up")

    @property
    def is_cut(self) -> bool:
        return "state DOWN" in _ip("-n", self.name, "link", "show", self.far_end)

    def lose(self, fraction: float, slice_seconds: float = 0.02) -> None:
        """Drop `fraction` of the time's packets: the link goes down for `slice_seconds` at random moments
        (a burst of loss each time, as on a congested path; the kernel here has no netem for independent
        per-packet loss). `lose(0)` stops."""
        if self._flapping is not None:
            self._flapping.set()
            self._flapping = None
        if fraction <= 0:
            return
        stop = threading.Event()
        self._flapping = stop
        mean_gap = slice_seconds * (1 - fraction) / fraction

        def flap() -> None:
            rng = random.Random(5)
            while not stop.wait(rng.expovariate(1 / mean_gap)):
                self.cut()
                time.sleep(slice_seconds)
                self.repair()

        threading.Thread(target=flap, name=f"lose-{self.name}", daemon=True).start()

    def close(self) -> None:
        self.lose(0)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        # The pair goes with the namespace once nothing holds it; removed at once all the same.
        subprocess.run(["ip", "link", "del", self.host_end], capture_output=True)
