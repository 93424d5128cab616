"""The network under the shared outbound httpx client: asyncio's own transports.

httpx reaches the network through httpcore, whose asyncio backend goes through anyio: a
cancel scope per read and per write, and TLS done in Python over memory buffers. Measured
here (httpx PUTs against a local nginx, plain and TLS, uvloop): 1.3-2.3 ms of client CPU per
request through anyio, 0.75-1.25 ms through this backend; a worker draining 2,000 orders
into the NetSuite simulator (two calls per order), four alternated pairs: 13.0 -> 12.2 ms
of worker CPU per order. httpcore lets a network backend be plugged in (its
``AsyncNetworkBackend`` interface); no maintained package provides one on plain asyncio,
hence this module: a protocol with a receive buffer, reads and writes bounded by
``asyncio.timeout``, TLS by the event loop (``loop.start_tls``: uvloop's is compiled).

httpcore's rules are kept: a read returns at most ``max_bytes`` and ``b""`` at the end of the
stream, failures are httpcore's Connect/Read/Write errors and timeouts (which httpx turns
into its own), and an idle pooled connection that became readable (the server closed it,
or sent what nobody asked for) is reported readable so the pool drops it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore
import httpx

# Reading pauses when this much is buffered unread, and resumes below half of it.
_HIGH_WATER = 256 * 1024


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: what arrived, unread, and whether more can come."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self._reading_paused = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._writing_paused = False

    # asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, yet behave as one
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_writer()

    # what the stream uses ----------------------------------------------------------------
    async def wait_for_data(self) -> None:
        waiter = self._data_waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._data_waiter = None

    def take(self, max_bytes: int) -> bytes:
        if len(self.buffer) <= max_bytes:  # most reads: all that arrived
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:max_bytes])
            del self.buffer[:max_bytes]
        if self._reading_paused and len(self.buffer) < _HIGH_WATER // 2 and self.transport:
            self.transport.resume_reading()
            self._reading_paused = False
        return data

    @property
    def must_drain(self) -> bool:
        """The transport's write buffer is over its limit (and the connection still open)."""
        return self._writing_paused and not self.eof

    async def drain(self) -> None:
        self._drain_waiter = asyncio.get_running_loop().create_future()
        await self._drain_waiter

    def _wake_reader(self) -> None:
        _release(self._data_waiter)

    def _wake_writer(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        _release(waiter)


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, connection: _Connection) -> None:
        self._connection = connection

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        connection = self._connection
        if not connection.buffer and not connection.eof:
            try:
                async with asyncio.timeout(timeout):
                    while not connection.buffer and not connection.eof:
                        await connection.wait_for_data()
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no data within {timeout} s") from None
        if connection.buffer:
            return connection.take(max_bytes)
        if connection.error is not None:
            raise httpcore.ReadError(_describe(connection.error)) from connection.error
        return b""  # the end of the stream

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        connection = self._connection
        transport = connection.transport
        if transport is None or transport.is_closing():
            raise httpcore.WriteError(_describe(connection.error) if connection.error else "closed")
        try:
            transport.write(buffer)
            if connection.must_drain:  # a timer only when it has to wait
                async with asyncio.timeout(timeout):
                    while connection.must_drain:
                        await connection.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not send within {timeout} s") from None
        except OSError as exc:
            raise httpcore.WriteError(_describe(exc)) from exc

    async def aclose(self) -> None:
        transport = self._connection.transport
        if transport is not None:
            transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        connection = self._connection
        assert connection.transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                upgraded = await loop.start_tls(
                    connection.transport, connection, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            connection.transport.close()
            raise httpcore.ConnectTimeout(f"no TLS handshake within {timeout} s") from None
        except (OSError, ssl.SSLError) as exc:
            connection.transport.close()
            raise httpcore.ConnectError(_describe(exc)) from exc
        if upgraded is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        connection.transport = upgraded
        return self

    def get_extra_info(self, info: str) -> Any:
        connection = self._connection
        transport = connection.transport
        if info == "is_readable":  # checked on idle pooled connections
            return bool(connection.buffer) or connection.eof
        if transport is None:
            return None
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if name in ("ssl_object", "sockname", "peername", "socket"):
            return transport.get_extra_info(name)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    _Connection, host, port, local_addr=local
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(
                f"no connection to {host}:{port} within {timeout} s"
            ) from None
        except OSError as exc:
            raise httpcore.ConnectError(_describe(exc)) from exc
        _set_options(connection, socket_options)
        return AsyncioStream(connection)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_unix_connection(_Connection, path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {path} within {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(_describe(exc)) from exc
        _set_options(connection, socket_options)
        return AsyncioStream(connection)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def asyncio_transport(**kwargs: Any) -> httpx.AsyncHTTPTransport:
    """httpx's own transport (its pool, limits, TLS settings and error mapping) on
    ``AsyncioBackend``."""
    transport = httpx.AsyncHTTPTransport(**kwargs)
    pool = transport._pool  # httpx does not take a network backend as an argument
    if not hasattr(pool, "_network_backend"):  # an httpx/httpcore this was not made for
        raise RuntimeError("httpcore's connection pool has no _network_backend to set")
    pool._network_backend = AsyncioBackend()
    return transport


def _set_options(connection: _Connection, options: Iterable[Any] | None) -> None:
    sock = connection.transport.get_extra_info("socket") if connection.transport else None
    for option in options or ():
        if sock is not None:
            sock.setsockopt(*option)


def _release(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
