"""A link the plugin can cut: a TCP forwarder on 127.0.0.1 between one service and a server (the broker).

The service is told the forwarder's address; every connection it opens there is copied byte for byte to
the server on this machine. `cut()` stops the copying both ways and holds new connections before they
reach the server: the service's sockets stay open and its requests get no answer, as across a network
partition whose packets are dropped (no reset, no error; its own timeouts are what fire). `repair()`
lets the held bytes and connections through, as TCP's retransmissions do once a partition heals.

Nothing here needs root or a network namespace: it is a thread of the test process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

_CHUNK = 65536


class Link:
    """A forwarder from 127.0.0.1:`port` (chosen when it is made) to 127.0.0.1:`upstream_port`."""

    def __init__(self, upstream_port: int, *, name: str = "link") -> None:
        self.upstream_port = upstream_port
        self.connections = 0  # accepted so far
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = int(self._socket.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._open = asyncio.Event()
        self._open.set()
        self._cut = False
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the link on port {self.port} did not start")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Stop every byte both ways from now on (returns once no more pass)."""
        self._set_open(False)

    def repair(self) -> None:
        """Let the held bytes and connections through (harmless on a link that is not cut)."""
        self._set_open(True)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _set_open(self, open_: bool) -> None:
        async def switch() -> None:
            if open_:
                self._open.set()
            else:
                self._open.clear()

        # Run on the link's loop, and wait for it: once `cut()` returns, every copy waits at the gate.
        asyncio.run_coroutine_threadsafe(switch(), self._loop).result(10)
        self._cut = not open_

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, sock=self._socket))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._open.wait()  # a connection opened while cut reaches the server only after repair
            server_reader, server = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client.close()
            return
        try:
            await asyncio.gather(self._copy(client_reader, server), self._copy(server_reader, client))
        finally:
            for writer in (client, server):
                with contextlib.suppress(Exception):
                    writer.close()

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy until either side ends; a chunk read while cut waits at the gate (the next ones wait in
        the kernel's buffers, which fill and make the sender wait, as an unacknowledged window does)."""
        try:
            while True:
                data = await reader.read(_CHUNK)
                await self._open.wait()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
