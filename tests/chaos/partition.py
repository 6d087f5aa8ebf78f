"""Which services reach which server across a link the test can cut (tests/chaos/netns.py, relay.py).

A service chosen here reaches the broker, or its database, only through a relay on a link of its own:
the broker gets one more listener per such service, advertised at the relay (a Kafka client goes where
the metadata sends it, not only to its bootstrap address), and the service's database URL names the
relay instead of the server's socket. Every other process, the invariant checker included, reaches the
servers directly, so a cut partitions exactly one service from exactly one server.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import quote

from common.config import Service, database_env_var
from saga_tools.local_stack.ports import free_port
from saga_tools.local_stack.postgres import PostgresServer
from tests.chaos.netns import NetworkLink, require_links
from tests.chaos.relay import Relay


class Partitions:
    def __init__(self, broker: Collection[Service] = (), database: Collection[Service] = ()) -> None:
        if broker or database:
            require_links()
        self.broker: dict[Service, Relay] = {}
        self.database: dict[Service, Relay] = {}
        self._database_services = list(database)
        self._links: list[NetworkLink] = []
        try:
            for service in broker:
                self.broker[service] = Relay(self._link(f"k{service.value[0]}"), free_port())
        except BaseException:
            self.close()
            raise

    def kafka_listeners(self) -> dict[str, tuple[int, str]]:
        """The broker's extra listeners: one per service cut off from it, advertised at its relay."""
        return {
            f"CUT{service.value.upper()}": (relay.upstream_port, relay.address)
            for service, relay in self.broker.items()
        }

    def connect_databases(self, postgres: PostgresServer) -> None:
        """The relays to the database server (once it runs: they forward to its TCP port)."""
        for service in self._database_services:
            self.database[service] = Relay(self._link(f"d{service.value[0]}"), postgres.port)
        self._password_file = postgres.password_file

    def environment(self, service: Service) -> dict[str, str]:
        """What `service`'s processes are told instead of the servers' own addresses."""
        env = {}
        if service in self.broker:
            env["KAFKA_BOOTSTRAP_SERVERS"] = self.broker[service].address
        if service in self.database:
            relay, name = self.database[service], service.value
            env[database_env_var(service)] = (
                f"postgresql+psycopg://{name}@{relay.address}/{name}?passfile={quote(str(self._password_file))}"
            )
        return env

    def close(self) -> None:
        for relay in [*self.broker.values(), *self.database.values()]:
            relay.stop()
        for link in self._links:
            link.close()

    def _link(self, tag: str) -> NetworkLink:
        link = NetworkLink(tag)
        self._links.append(link)
        return link
