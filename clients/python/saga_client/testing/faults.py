"""`saga_faults`: crash, restart and pause the services and the broker of a platform the plugin started.

Whatever a test breaks is mended after it (the broker and the services resumed, what is down started
again), so the next test gets a whole platform. A service that a fault hook stopped is not reported as
having died.

    saga_faults.kill("delivery")              # SIGKILL, as a crash; down until restart()
    saga_faults.stop("delivery")              # SIGTERM: a clean shutdown; down until restart()
    saga_faults.restart("delivery")           # start again (stop first if running), wait until ready
    with saga_faults.down("order"): ...       # stopped inside the block, started again after it

A killed service's consumer group waits for its session to time out (10 s) before another member takes
its partitions; a stopped one leaves the group at once, so `down` is the quicker way to have a service
away for a while, and `kill` the way to test a crash.
    with saga_faults.broker_paused(): ...     # every Kafka node SIGSTOPped inside the block
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from saga_client.config import Service
from saga_client.testing.local import LocalPlatform


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

    def heal(self) -> None:
        self._platform.heal()
