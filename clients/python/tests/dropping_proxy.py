"""A TCP proxy that loses answers: it forwards each request, waits until the server starts answering
(so the request was applied), then closes the client's connection without relaying a byte of it."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

KEY = re.compile(rb"(?im)^idempotency-key:\s*(\S+)\r$")


class DroppingProxy:
    def __init__(self, target_url: str, drops: int) -> None:
        target = urlsplit(target_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 80)
        self.drops = drops
        self.keys_seen: list[bytes] = []  # the Idempotency-Key of each request that went through
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        server = self._loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _connection(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection(*self.target)
        requests = asyncio.ensure_future(self._requests(client_in, server_out))
        try:
            while answer := await server_in.read(65536):
                if self.drops > 0:
                    self.drops -= 1
                    return  # the server answered, so it applied the request; the client never hears it
                client_out.write(answer)
                await client_out.drain()
        finally:
            requests.cancel()
            client_out.close()
            server_out.close()

    async def _requests(self, client_in: asyncio.StreamReader, server_out: asyncio.StreamWriter) -> None:
        seen = b""
        while chunk := await client_in.read(65536):
            seen += chunk
            self.keys_seen.extend(KEY.findall(seen))
            seen = seen[-1024:] if not KEY.search(seen) else b""
            server_out.write(chunk)
            await server_out.drain()

    @contextmanager
    def running(self) -> Iterator[DroppingProxy]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        self._started.wait(10)
        try:
            yield self
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(5)
