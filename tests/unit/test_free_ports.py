"""Ports handed to the local stack's processes (saga_tools/local_stack/ports.py)."""

from __future__ import annotations

import socket

import pytest

from saga_tools.local_stack import ports


@pytest.mark.skipif(ports._ephemeral_low() is None, reason="the ephemeral range is read from Linux's /proc")
def test_free_ports_lie_below_the_range_outgoing_connections_take_their_local_ports_from() -> None:
    low = ports._ephemeral_low()
    assert low is not None
    for _ in range(20):
        assert ports.LOWEST <= ports.free_port() < low


def test_a_free_port_is_bindable_and_never_handed_out_twice() -> None:
    handed = [ports.free_port() for _ in range(50)]
    assert len(set(handed)) == len(handed)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", handed[-1]))


def test_a_port_something_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        picks = iter([taken, taken, *range(ports.LOWEST, ports.LOWEST + 1000)])
        monkeypatch.setattr(ports, "_ephemeral_low", lambda: 65_536)
        monkeypatch.setattr(ports.random, "randrange", lambda low, high: next(picks))
        assert ports.free_port() != taken
