"""`saga_faults`: crash, restart, pause and cut off the parts of a platform the plugin started.

Whatever a test breaks is mended after it (the database and the broker back, the links repaired, the
services resumed, what is down started again), so the next test gets a whole platform. A service that
a fault hook stopped is not reported as having died.

    saga_faults.kill("delivery")              # SIGKILL, as a crash; down until restart()
    saga_faults.stop("delivery")              # SIGTERM: a clean shutdown; down until restart()
    saga_faults.restart("delivery")           # start again (stop first if running), wait until ready
    with saga_faults.down("order"): ...       # stopped inside the block, started again after it

A killed service's consumer group waits for its session to time out (10 s) before another member takes
its partitions; a stopped one leaves the group at once, so `down` is the quicker way to have a service
away for a while, and `kill` the way to test a crash.

    with saga_faults.broker_paused(): ...     # every Kafka node SIGSTOPped inside the block
    with saga_faults.database_down(): ...     # PostgreSQL SIGKILLed (a crash), restarted after the block
    with saga_faults.database_paused(): ...   # PostgreSQL SIGSTOPped: connections open, nothing answers
    with saga_faults.cut_off_from_broker("order"): ...  # that service's link to Kafka cut (a partition)

One PostgreSQL server holds the three services' databases, so a database fault reaches all three. While
it is down the checkout answers `503` with `Retry-After` at once; while it is paused, `503` within 5 s
(the platform's answer deadline). After the block the services carry on without a restart: their pools
connect anew. A service cut off from the broker keeps its HTTP API and its database; what it should
publish waits in its outbox, and what it should consume waits on the topics, until the link is repaired.
The link is a forwarder on 127.0.0.1 in the test process (no root, nothing to install), there only when
the session asks for it (`PlatformSettings(broker_links=True)`, ini `saga_broker_links = true`): every
message of the services crosses it, which slows each saga a little.

A fault the platform cannot take (its databases or broker are not the plugin's: *_DATABASE_URL or
KAFKA_BOOTSTRAP_SERVERS named others; no links asked for) skips the test, saying why.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from saga_client.config import Service
from saga_client.testing.local import FaultUnavailable, LocalPlatform


def _skip(error: FaultUnavailable) -> NoReturn:
    import pytest  # the plugin's users have it; the module imports without it

    pytest.skip(f"saga_faults: {error}")


class Faults:
    def __init__(self, platform: LocalPlatform) -> None:
        self._platform = platform

    def kill(self, service: Service | str) -> None:
        self._platform.kill(Service(service))

    def stop(self, service: Service | str) -> None:
        self._platform.stop_service(Service(service))

    def restart(self, service: Service | str) -> None:
        self._platform.restart(Service(service))

    def pause(self, service: Service | str) -> None:
        """SIGSTOP the service: its sockets stay open and nothing answers (a long GC, a stalled host)."""
        self._platform.pause(Service(service))

    def resume(self, service: Service | str) -> None:
        self._platform.resume(Service(service))

    def pause_broker(self) -> None:
        self._platform.pause_broker()

    def resume_broker(self) -> None:
        self._platform.resume_broker()

    def kill_database(self) -> None:
        """SIGKILL the PostgreSQL server and its backends, as a crash would; down until
        `restart_database()`."""
        try:
            self._platform.kill_database()
        except FaultUnavailable as error:
            _skip(error)

    def restart_database(self) -> None:
        """Start the database server again (crash recovery after a kill); returns once it accepts
        connections."""
        try:
            self._platform.restart_database()
        except FaultUnavailable as error:
            _skip(error)

    def pause_database(self) -> None:
        """SIGSTOP the database server and every backend: a frozen VM, or packets dropped on the way."""
        try:
            self._platform.pause_database()
        except FaultUnavailable as error:
            _skip(error)

    def resume_database(self) -> None:
        self._platform.resume_database()

    def cut_from_broker(self, service: Service | str) -> None:
        """Cut the service's link to Kafka: its connections stay open and get no answer (no reset, no
        error), as in a network partition; every other service still reaches the broker."""
        try:
            self._platform.cut_from_broker(Service(service))
        except FaultUnavailable as error:
            _skip(error)

    def reconnect_to_broker(self, service: Service | str) -> None:
        """Repair the link: what waited on it goes through, as after a partition heals."""
        try:
            self._platform.reconnect_to_broker(Service(service))
        except FaultUnavailable as error:
            _skip(error)

    @contextmanager
    def down(self, service: Service | str) -> Iterator[None]:
        self.stop(service)
        try:
            yield
        finally:
            self.restart(service)

    @contextmanager
    def broker_paused(self) -> Iterator[None]:
        self.pause_broker()
        try:
            yield
        finally:
            self.resume_broker()

    @contextmanager
    def database_down(self) -> Iterator[None]:
        """The database crashed inside the block (SIGKILL), started again after it."""
        self.kill_database()
        try:
            yield
        finally:
            self.restart_database()

    @contextmanager
    def database_paused(self) -> Iterator[None]:
        """The database frozen inside the block (SIGSTOP), resumed after it."""
        self.pause_database()
        try:
            yield
        finally:
            self.resume_database()

    @contextmanager
    def cut_off_from_broker(self, service: Service | str) -> Iterator[None]:
        """The service's link to Kafka cut inside the block, repaired after it."""
        self.cut_from_broker(service)
        try:
            yield
        finally:
            self.reconnect_to_broker(service)

    def heal(self) -> None:
        self._platform.heal()
