"""A TCP proxy between the gateway and a real Redis or Postgres, for outage tests.

``down()`` is a stopped server as clients see it: open connections are reset, new ones are
refused. ``hang()`` is a server that stopped answering: connections open, bytes go nowhere,
until ``up()``. It runs on its own event loop in a thread, so sync tests can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.processes import free_port

CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    # --- control (from the test's thread) ---------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def down(self) -> None:
        """Refuse new connections and reset the open ones (a stopped server)."""
        self._call(self._down())

    def hang(self) -> None:
        """Keep connections open but pass no bytes (a server that stopped answering)."""
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def up(self) -> None:
        self._call(self._up())

    def close(self) -> None:
        self._call(self._down())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def url_for(self, url: str) -> str:
        """``url`` with its host:port replaced by the proxy's."""
        host, port = self.target
        return url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}", 1)

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    # --- the proxy (on its loop) ------------------------------------------------------------

    async def _listen(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()
        self._writers.clear()

    async def _up(self) -> None:
        self._flowing.set()
        if self._server is None:
            await self._listen()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            with contextlib.suppress(Exception):
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            await self._flowing.wait()
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(Exception):
            writer.write_eof()


@contextmanager
def tcp_proxy(target_url_host: str, target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_url_host, target_port).start()
    try:
        yield proxy
    finally:
        proxy.close()
