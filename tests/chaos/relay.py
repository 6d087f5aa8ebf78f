"""A TCP relay across a link the test can cut: what one service's connections to a server go through.

The relay listens inside a `NetworkLink`'s namespace and forwards each connection to the server on this
machine's 127.0.0.1, byte for byte. The service is told the relay's address (its database URL, or the
broker's listener advertised there), so all its traffic to that server crosses the link: `link.cut()`
partitions the service from that server and from nothing else. The relay can also hold every answer back
by `delay` seconds (the server-to-service direction, so a round trip takes that much longer, as netem's
`delay` on one end of a path would), order kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

from tests.chaos.netns import NetworkLink

_CHUNK = 65536


class Relay:
    def __init__(self, link: NetworkLink, upstream_port: int, port: int = 0) -> None:
        """`port`: where the relay listens on the link's address (0: any free port)."""
        self.link = link
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.connections = 0  # accepted so far
        with link.inside():
            self._socket = socket.create_server((link.address, port), backlog=128)
        self.port = int(self._socket.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"relay-{self.port}", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def address(self) -> str:
        return f"{self.link.address}:{self.port}"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, sock=self._socket))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client.close()
            return
        try:
            await asyncio.gather(
                self._pipe(client_reader, server, delayed=False),
                self._pipe(server_reader, client, delayed=True),
            )
        finally:
            for writer in (client, server):
                writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        """Copy until either side ends; when `delayed`, each chunk leaves `self.delay` after it came."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    return
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while not sender.done():
                data = await reader.read(_CHUNK)
                queue.put_nowait((time.monotonic() + (self.delay if delayed else 0.0), data))
                if not data:
                    break
            await sender
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(Exception):
                writer.close()
