"""Hostile HTTP against a real ``erp-gateway serve``: huge, slow and anonymous bodies.

The process must not buffer what it will refuse: its memory is read from /proc.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cli import migrate
from tests.conftest import gateway_config_yaml
from tests.support.processes import Proc, free_port, process_group, wait_http

pytestmark = pytest.mark.e2e
MB = 1024 * 1024


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, Proc]]:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    migrate(db_url)
    config = tmp_path / "gateway.yaml"
    config.write_text(gateway_config_yaml())
    port = free_port()
    env = {
        "GATEWAY_DATABASE_URL": db_url,
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_API_KEYS": "viewer-key:viewer,operator-key:operator",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_BODY_READ_TIMEOUT_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    with process_group(tmp_path) as group:
        proc = group.start(
            "gateway", [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env
        )
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}", proc


def rss_mb(proc: Proc) -> float:
    for line in Path(f"/proc/{proc.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def post_raw(base: str, path: str, headers: dict[str, str], body_mb: int) -> int:
    """Send a request of ``body_mb`` MB in 1 MB writes; return the status (0: cut off)."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {body_mb * MB}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunk = b"x" * MB
        try:
            for _ in range(body_mb):
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed: what we want
        try:
            answer = sock.recv(4096)
        except OSError:
            return 0
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1") else 0


def test_anonymous_100_mb_bodies_are_refused_without_being_read(
    gateway: tuple[str, Proc],
) -> None:
    base, proc = gateway
    before = rss_mb(proc)
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: statuses.append(
                post_raw(
                    base, "/api/v1/deliveries/replay", {"Content-Type": "application/json"}, 100
                )
            )
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    after = rss_mb(proc)
    assert statuses and set(statuses) <= {401, 0}, statuses
    assert 401 in statuses
    assert after - before < 50, f"the gateway grew from {before:.0f} MB to {after:.0f} MB"


def test_oversized_bodies_get_413_with_a_key_too(gateway: tuple[str, Proc]) -> None:
    base, proc = gateway
    before = rss_mb(proc)
    key = {"Authorization": "Bearer operator-key", "Content-Type": "application/json"}
    assert post_raw(base, "/api/v1/deliveries/replay", key, 20) in (413, 0)

    def chunked() -> Iterator[bytes]:  # no Content-Length: refused once 1 MiB has passed
        for _ in range(50):
            yield b"x" * MB

    try:
        status = httpx.post(
            f"{base}/api/v1/deliveries/replay", content=chunked(), headers=key, timeout=30
        ).status_code
    except httpx.HTTPError:
        status = 0
    assert status in (413, 0)
    assert rss_mb(proc) - before < 50
    webhook = post_raw(base, "/webhooks/shop", {"X-Shopify-Topic": "orders/create"}, 3)
    assert webhook in (413, 0)


def test_a_body_that_trickles_in_is_cut_off(gateway: tuple[str, Proc]) -> None:
    base, _ = gateway
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /webhooks/shop HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b"X-Shopify-Topic: orders/create\r\n\r\n"
        )
        started = time.monotonic()
        answer = b""
        for _ in range(10):  # one byte a second
            try:
                sock.sendall(b"{")
            except OSError:
                break
            sock.settimeout(1.0)
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue
            if answer:
                break
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - started < 5


def test_a_client_that_goes_away_mid_body_is_not_an_error(gateway: tuple[str, Proc]) -> None:
    base, proc = gateway
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b'POST /webhooks/shop HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"id":'
        )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "went away" not in proc.log_path.read_text():
        time.sleep(0.1)
    records = [json.loads(line) for line in proc.log_path.read_text().splitlines() if line]
    (gone,) = [r for r in records if r["event"].startswith("client went away")]
    assert gone["level"] == "info" and gone["path"] == "/webhooks/shop"
    assert not [r for r in records if r["level"] in ("error", "critical")], records
