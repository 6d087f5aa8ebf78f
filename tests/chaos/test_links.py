"""The fault suite's cuttable link and relay, on a plain echo server: what a cut looks like to a client
(no error, no RST: a stall and a connect that hangs), that a repair resumes the same connection, and that
a delay holds every answer back; and the links between three Kafka nodes, of which one is cut off."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.chaos.netns import NetworkLink, require_links
from tests.chaos.peer_links import PeerLinks
from tests.chaos.relay import Relay


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()


@pytest.fixture
def relay(echo_port: int) -> Iterator[Relay]:
    require_links()
    link = NetworkLink("t")
    relay = Relay(link, echo_port)
    yield relay
    relay.stop()
    link.close()


def _round_trip(conn: socket.socket, data: bytes) -> bytes:
    conn.sendall(data)
    return conn.recv(4096)


def test_a_cut_link_stalls_open_connections_and_hangs_new_ones_until_it_is_repaired(relay: Relay) -> None:
    host, port = relay.link.address, relay.port
    conn = socket.create_connection((host, port), timeout=2)
    assert _round_trip(conn, b"before") == b"before"

    relay.link.cut()
    assert relay.link.is_cut
    conn.settimeout(1)
    with pytest.raises(TimeoutError):  # no answer, and no error either
        _round_trip(conn, b"during")
    began = time.monotonic()
    with pytest.raises(TimeoutError):  # the SYN is dropped: no "refused", no "no route"
        socket.create_connection((host, port), timeout=1)
    assert time.monotonic() - began >= 0.9

    relay.link.repair()
    conn.settimeout(10)
    assert conn.recv(4096) == b"during"  # TCP retransmitted it: the same connection carries on
    assert _round_trip(conn, b"after") == b"after"
    assert _round_trip(socket.create_connection((host, port), timeout=2), b"new") == b"new"


def test_a_delay_holds_every_answer_back_by_that_much(relay: Relay) -> None:
    conn = socket.create_connection((relay.link.address, relay.port), timeout=5)
    assert _round_trip(conn, b"warm") == b"warm"
    relay.delay = 0.2
    began = time.monotonic()
    assert _round_trip(conn, b"slow") == b"slow"
    assert 0.2 <= time.monotonic() - began < 1.0
    relay.delay = 0.0
    began = time.monotonic()
    assert _round_trip(conn, b"fast") == b"fast"
    assert time.monotonic() - began < 0.1


def test_a_lossy_link_drops_that_share_of_the_time_and_the_connection_survives(relay: Relay) -> None:
    conn = socket.create_connection((relay.link.address, relay.port), timeout=10)
    relay.link.lose(0.2)
    down = sum(relay.link.is_cut for _ in range(100))
    for index in range(50):
        assert _round_trip(conn, f"{index:04d}".encode()) == f"{index:04d}".encode()
    relay.link.lose(0)
    assert 5 <= down <= 45, down  # of 100 looks, about a fifth found it down


def test_isolating_a_node_cuts_its_links_to_both_peers_and_leaves_theirs_alone(echo_port: int) -> None:
    require_links()
    links = PeerLinks(3)
    try:
        # Three "nodes" sharing one echo server: each pair's connections both ways.
        pairs = [(a, b) for a in range(3) for b in range(3) if a != b]
        conns = {}
        for source, target in pairs:
            host, port = links.route(source, target, echo_port).rsplit(":", 1)
            conns[source, target] = socket.create_connection((host, int(port)), timeout=2)
            assert _round_trip(conns[source, target], b"hello") == b"hello"
        assert links.route(0, 1, echo_port) == links.route(0, 1, echo_port)  # one relay per route

        links.isolate(0)
        for (source, target), conn in conns.items():
            if 0 in (source, target):  # dropped both ways, no error
                conn.settimeout(0.5)
                with pytest.raises(TimeoutError):
                    _round_trip(conn, b"cut")
            else:  # the other two still talk
                assert _round_trip(conn, b"still") == b"still"
        host, port = links.route(2, 0, echo_port).rsplit(":", 1)
        with pytest.raises(TimeoutError):  # a new connection to the isolated node hangs too
            socket.create_connection((host, int(port)), timeout=0.5)

        links.rejoin(0)
        for (source, target), conn in conns.items():
            conn.settimeout(10)
            if 0 in (source, target):  # what was sent during the cut arrives: the same connection goes on
                assert conn.recv(4096) == b"cut"
            assert _round_trip(conn, b"after") == b"after"
    finally:
        links.close()
