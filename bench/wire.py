"""Counting proxies between the gateway's processes and Postgres / Redis.

Round trips are counted on the wire, so the count holds whatever talks to the database
(SQLAlchemy, asyncpg directly, arq) and whoever else uses the shared servers. Postgres: one
round trip per Sync or simple Query message (each is answered by one ReadyForQuery), one
statement per Execute or Query. Redis: one command per RESP array, one round trip per turn
(the client speaking again after the server answered). Each process gets its own listening
port, so the counts are per process. The proxies add latency, so only the round-trip pass
goes through them, never the throughput runs.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102


@dataclass
class Counts:
    round_trips: int = 0
    statements: int = 0  # Postgres statements; Redis commands
    unreadable: bool = False  # the stream was encrypted: counts are incomplete

    def minus(self, other: Counts) -> Counts:
        return Counts(
            self.round_trips - other.round_trips,
            self.statements - other.statements,
            self.unreadable or other.unreadable,
        )


class PostgresStream:
    """Reads the frontend messages of one Postgres connection."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buffer = bytearray()
        self.in_startup = True
        self.asked_ssl = False

    def client(self, data: bytes) -> None:
        if self.counts.unreadable:
            return
        self.buffer += data
        while True:
            if self.in_startup:  # untyped messages: int32 length, int32 code
                if len(self.buffer) < 8:
                    return
                length = int.from_bytes(self.buffer[:4], "big")
                if len(self.buffer) < length:
                    return
                code = int.from_bytes(self.buffer[4:8], "big")
                self.asked_ssl = code in (SSL_REQUEST, GSS_REQUEST)
                self.in_startup = code in (SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST)
                del self.buffer[:length]
                continue
            if len(self.buffer) < 5:
                return
            length = int.from_bytes(self.buffer[1:5], "big")
            if len(self.buffer) < 1 + length:
                return
            kind = self.buffer[0:1]
            if kind in (b"S", b"Q"):
                self.counts.round_trips += 1
            if kind in (b"E", b"Q"):
                self.counts.statements += 1
            del self.buffer[: 1 + length]

    def server(self, data: bytes) -> None:
        if self.asked_ssl:
            self.asked_ssl = False
            if data[:1] in (b"S", b"G"):  # the server took TLS: nothing more is readable
                self.counts.unreadable = True


class RedisStream:
    """Reads the commands of one Redis connection (RESP arrays, or inline lines)."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buffer = bytearray()
        self.answered = True

    def client(self, data: bytes) -> None:
        if self.answered:
            self.counts.round_trips += 1
            self.answered = False
        self.buffer += data
        while (end := self._command_end()) is not None:
            self.counts.statements += 1
            del self.buffer[:end]

    def server(self, _data: bytes) -> None:
        self.answered = True

    def _command_end(self) -> int | None:
        """Where the first complete command in the buffer ends, if one is complete."""
        line_end = self.buffer.find(b"\r\n")
        if line_end < 0:
            return None
        if self.buffer[:1] != b"*":
            return line_end + 2
        position = line_end + 2
        for _ in range(int(self.buffer[1:line_end])):
            header_end = self.buffer.find(b"\r\n", position)
            if header_end < 0:
                return None
            position = header_end + 2 + int(self.buffer[position + 1 : header_end]) + 2
            if position > len(self.buffer):
                return None
        return position


@dataclass
class Proxy:
    """One listening port in front of one server, counting what passes."""

    port: int
    upstream_port: int
    protocol: str  # "postgres" or "redis"
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.counts = Counts()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        stream = (PostgresStream if self.protocol == "postgres" else RedisStream)(self.counts)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, client: bool) -> None:
            try:
                while data := await src.read(65536):
                    (stream.client if client else stream.server)(data)
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                if not dst.is_closing():
                    dst.close()

        try:
            await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))
        except asyncio.CancelledError:  # the proxies are shutting down: end quietly
            writer.close()
            up_writer.close()

    def snapshot(self) -> Counts:
        return Counts(self.counts.round_trips, self.counts.statements, self.counts.unreadable)


class Proxies:
    """The proxies, served by an event loop of their own in a background thread."""

    def __init__(self, proxies: dict[str, Proxy]) -> None:
        self.proxies = proxies
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.servers: list[asyncio.Server] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        for proxy in self.proxies.values():
            self.servers.append(
                self.loop.run_until_complete(
                    asyncio.start_server(proxy.handle, proxy.host, proxy.port)
                )
            )
        self.ready.set()
        self.loop.run_forever()
        self.loop.close()

    async def _shutdown(self) -> None:
        for server in self.servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.loop.stop()

    def __enter__(self) -> Proxies:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        self.thread.join(10)

    def snapshot(self) -> dict[str, Counts]:
        return {name: proxy.snapshot() for name, proxy in self.proxies.items()}
