"""The link `saga_faults` cuts between a service and the broker (`saga_client.testing.links`), against a
small echo server: what crosses it open, what a cut holds (no reset, no error), what the repair lets
through; and when a platform the plugin starts can have such links at all."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from saga_client.testing.links import Link
from saga_client.testing.local import broker_links_refused


class EchoServer:
    """Answers every byte it is sent with the same byte, and counts the connections it accepted."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._echo, args=(connection,), daemon=True).start()

    @staticmethod
    def _echo(connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(4096):
                connection.sendall(data)

    def close(self) -> None:
        self._socket.close()


@pytest.fixture()
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture()
def link(echo: EchoServer) -> Iterator[Link]:
    made = Link(echo.port)
    yield made
    made.close()


def connect(link: Link) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", link.port), timeout=5)
    connection.settimeout(0.3)
    return connection


def test_an_open_link_copies_every_byte_both_ways(link: Link) -> None:
    with connect(link) as connection:
        connection.sendall(b"x" * 200_000)
        received = b""
        while len(received) < 200_000:
            received += connection.recv(65536)

    assert received == b"x" * 200_000
    assert link.connections == 1


def test_a_cut_link_holds_a_request_without_an_error_and_the_repair_delivers_its_answer(link: Link) -> None:
    with connect(link) as connection:
        connection.sendall(b"before")
        assert connection.recv(100) == b"before"

        link.cut()
        connection.sendall(b"during")  # accepted by the socket: nothing tells the sender
        with pytest.raises(TimeoutError):
            connection.recv(100)
        assert link.is_cut

        link.repair()
        connection.settimeout(5)
        assert connection.recv(100) == b"during"  # the same connection, as after a partition heals
        assert not link.is_cut


def test_a_connection_opened_through_a_cut_link_reaches_the_server_only_after_the_repair(
    link: Link, echo: EchoServer
) -> None:
    link.cut()
    with connect(link) as connection:
        connection.sendall(b"hello")
        with pytest.raises(TimeoutError):
            connection.recv(100)
        assert echo.accepted == 0

        link.repair()
        connection.settimeout(5)
        assert connection.recv(100) == b"hello"
        assert echo.accepted == 1


@pytest.mark.parametrize(
    ("environ", "secure", "wanted", "refused"),
    [
        ({}, False, True, None),
        ({}, False, False, "broker_links=True"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}, False, True, "KAFKA_BOOTSTRAP_SERVERS names one"),
        ({}, True, True, "runs secured"),
    ],
)
def test_links_to_the_broker_are_asked_for_and_need_the_plugins_own_plain_broker(
    environ: dict[str, str], secure: bool, wanted: bool, refused: str | None
) -> None:
    reason = broker_links_refused(environ, secure=secure, wanted=wanted)

    assert (reason is None) if refused is None else (reason is not None and refused in reason)
