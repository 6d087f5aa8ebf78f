"""The three services, each declared once: its name, whose topics it reads, and its HTTP port.

Everything else a service is known by follows from its name, by one rule each, stated once below: it
writes the topic of its name; it connects to Kafka as the principal of its name and consumes in the group
`saga-<name>` (also its Faust app id); its data is the database of its name, owned by the role of its name;
it runs as `python -m <name>`; and the variables `<NAME>_DATABASE_URL`, `<NAME>_HTTP_PORT` and
`<NAME>_URL` configure it.

Read by the settings (their default ports), the consumers (their topics and group), the local stack
(the broker's principals and ACLs, PostgreSQL's databases and roles) and the supervisor (which processes
it runs). docker-compose.yml and docker/ are written by hand and checked against these declarations
(tests/unit/test_docker_compose.py); the Python client keeps its own default URLs, checked too
(tests/unit/test_service_declarations.py).

Pure data: no I/O, and nothing of the platform imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import assert_never


class Service(StrEnum):
    """The three services; each owns one database and writes the topic of the same name."""

    PAYMENT = "payment"
    ORDER = "order"
    DELIVERY = "delivery"


def topic_of(service: Service) -> str:
    """The one topic `service` writes: its name (the event catalogue, `saga tail payment` and the ACLs
    name a topic by the service that writes it)."""
    return service.value


@dataclass(frozen=True)
class ServiceSpec:
    """One service as the platform and its tooling know it."""

    service: Service
    consumes: tuple[Service, ...]  # whose topics it reads (never its own: it acts on others' events)
    http_port: int  # where its HTTP API listens unless `<NAME>_HTTP_PORT` says otherwise

    @property
    def name(self) -> str:
        return self.service.value

    @property
    def topic(self) -> str:
        """The only topic it may write (its outbox's events go there)."""
        return topic_of(self.service)

    @property
    def consumed_topics(self) -> tuple[str, ...]:
        """The topics its consumer group reads, and the only ones its principal may read."""
        return tuple(topic_of(service) for service in self.consumes)

    @property
    def group_id(self) -> str:
        """Its consumer group, which is also its Faust app id (the group its workers share)."""
        return f"saga-{self.name}"

    @property
    def kafka_principal(self) -> str:
        """The SCRAM user it connects to a secured broker as (its ACLs are granted to this name)."""
        return self.name

    @property
    def database(self) -> str:
        """Its own database: no other service reads its data."""
        return self.name

    @property
    def database_role(self) -> str:
        """The role it logs in to PostgreSQL as: its database's owner, allowed into no other."""
        return self.name

    @property
    def module(self) -> str:
        """The package that runs it (`python -m <module>`)."""
        return self.name

    @property
    def database_url_variable(self) -> str:
        return f"{self.name.upper()}_DATABASE_URL"

    @property
    def http_port_variable(self) -> str:
        return f"{self.name.upper()}_HTTP_PORT"

    @property
    def url_variable(self) -> str:
        """Its public base URL (for `Location` headers and the `saga` command)."""
        return f"{self.name.upper()}_URL"


def declared_service(service: Service) -> ServiceSpec:
    """Every service, with the topics it reads and its port. A member added to `Service` without a
    declaration here fails mypy (`assert_never`) and the import of this module."""
    match service:
        case Service.PAYMENT:
            # Charges at checkout (HTTP), refunds when order cancels.
            return ServiceSpec(service, consumes=(Service.ORDER,), http_port=8001)
        case Service.ORDER:
            # The saga: it hears how the payment and the delivery went.
            return ServiceSpec(service, consumes=(Service.PAYMENT, Service.DELIVERY), http_port=8002)
        case Service.DELIVERY:
            # Reserves and ships what order placed, cancels what order asks it to.
            return ServiceSpec(service, consumes=(Service.ORDER,), http_port=8003)
        case _:
            assert_never(service)


# Built on import, in `Service`'s order (the order the stack, the supervisor and the ACLs go through them).
SERVICES: Mapping[Service, ServiceSpec] = MappingProxyType(
    {service: declared_service(service) for service in Service}
)
