"""The outbound client's network backend (``app.delivery.network``) against real sockets:
plain and TLS connections, kept-alive and closed ones, big bodies, and every failure
surfacing as the httpx error the connectors already handle (never a hang). Each case runs
on asyncio's loop and on uvloop (``conftest.py``): the API and the worker run on uvloop."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.delivery.capture import make_http_client
from app.delivery.network import AsyncioBackend, asyncio_transport


@dataclass
class Server:
    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 request (head and Content-Length body); None at the end of the stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


def response(body: bytes, *, close: bool = False) -> bytes:
    connection = b"close" if close else b"keep-alive"
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: "
        + connection
        + b"\r\n\r\n"
    ) + body


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(
        answer: Callable[[bytes], bytes | None] = lambda _: response(b'{"ok": true}'),
        *,
        tls: ssl.SSLContext | None = None,
        close_after: bool = False,
    ) -> Server:
        state = Server("")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            state.connections += 1
            try:
                while (request := await read_request(reader)) is not None:
                    state.requests.append(request)
                    reply = answer(request)
                    if reply is None:  # never answers
                        await reader.read()  # until the client hangs up
                        return
                    writer.write(reply)
                    await writer.drain()
                    if close_after:
                        break
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        state.url = f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}"
        return state

    yield start
    for server in servers:
        server.close()


def client(**kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=asyncio_transport(**kwargs), timeout=2.0)


async def test_the_shared_client_runs_on_the_asyncio_backend() -> None:
    http = make_http_client()
    try:
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool._network_backend, AsyncioBackend)
    finally:
        await http.aclose()


async def test_requests_and_bodies_go_both_ways_on_one_kept_alive_connection(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve(lambda request: response(request.split(b"\r\n\r\n", 1)[1][::-1]))
    async with client() as http:
        first = await http.put(server.url + "/a", content=b"abc")
        second = await http.post(server.url + "/b", content=b"x" * 200_000)
    assert first.content == b"cba" and second.content == b"x" * 200_000
    assert server.connections == 1 and len(server.requests) == 2


async def test_a_body_bigger_than_the_read_buffer_arrives_whole(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: reading pauses and resumes on the way
    server = await serve(lambda _: response(big))
    async with client() as http:
        answer = await http.get(server.url)
    assert answer.content == big


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve(close_after=True)
    async with client() as http:
        assert (await http.get(server.url)).status_code == 200
        # the server's FIN reaches the idle pooled connection: the pool sees it readable
        pool = http._transport._pool  # type: ignore[attr-defined]
        async with asyncio.timeout(5):
            # httpcore's pool state: there is no event to wait on
            while not all(c.has_expired() for c in pool.connections):  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        assert (await http.get(server.url)).status_code == 200
    assert server.connections == 2


async def test_a_server_that_never_answers_is_a_read_timeout(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve(lambda _: None)
    async with httpx.AsyncClient(transport=asyncio_transport(), timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url)


async def test_a_server_that_hangs_up_mid_answer_is_an_error_not_a_hang(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve(lambda _: response(b"x" * 1000)[:-500], close_after=True)
    async with client() as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await http.get(server.url)


async def test_a_refused_connection_is_a_connect_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


def certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for localhost: the server's context and a client's that
    trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cafile=str(cert_file))
    return server, trusting


async def test_tls_connections_are_verified_and_carry_requests(
    serve: Callable[..., Awaitable[Server]], tmp_path: Path
) -> None:
    server_context, trusting = certificate(tmp_path)
    server = await serve(
        lambda request: response(request.split(b"\r\n\r\n", 1)[1]), tls=server_context
    )
    async with client(verify=trusting) as http:
        answers = [await http.put(server.url, content=b"secret %d" % n) for n in range(3)]
    assert [a.content for a in answers] == [b"secret 0", b"secret 1", b"secret 2"]
    assert server.connections == 1
    # a certificate nobody vouches for is refused before anything is sent
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.put(server.url, content=b"never sent")
    assert len(server.requests) == 3


async def test_a_server_that_stops_reading_is_a_write_timeout_not_a_hang() -> None:
    done = asyncio.Event()

    async def never_read(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()  # the socket buffers fill: the client's writes must wait
        writer.close()

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(
            transport=asyncio_transport(), timeout=httpx.Timeout(5.0, write=0.3)
        ) as http:
            with pytest.raises(httpx.WriteTimeout):
                await http.put(f"http://127.0.0.1:{port}/", content=b"x" * (64 << 20))
    finally:
        done.set()
        server.close()
