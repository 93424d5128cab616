"""``erp-gateway healthcheck``: what it judges healthy, from heartbeats and from the API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.delivery.heartbeat import STALE_AFTER
from app.healthcheck import api_health, judge_workers
from app.models import WorkerHeartbeat, utcnow
from tests.support.processes import free_port

NOW = utcnow()


def beat(worker_id: str, state: str, seconds_ago: float) -> WorkerHeartbeat:
    seen = NOW - timedelta(seconds=seconds_ago)
    return WorkerHeartbeat(
        worker_id=worker_id, kind="arq", started_at=seen, seen_at=seen, state=state
    )


def test_a_recent_consuming_heartbeat_of_this_host_is_healthy() -> None:
    health = judge_workers("box-1", [beat("box-1:7", "consuming", 2)], NOW)
    assert health.ok and health.line == "ok: worker box-1:7 consuming (seen 2 s ago)"


@pytest.mark.parametrize("state", ["starting", "queue_unreachable", "stopping"])
def test_a_worker_that_is_not_consuming_is_unhealthy_and_says_why(state: str) -> None:
    health = judge_workers("box-1", [beat("box-1:7", state, 1)], NOW)
    assert not health.ok and health.line == f"unhealthy: worker box-1:7 is {state}"


def test_a_heartbeat_older_than_the_stale_limit_is_unhealthy() -> None:
    old = STALE_AFTER.total_seconds() + 1
    health = judge_workers("box-1", [beat("box-1:7", "consuming", old)], NOW)
    assert not health.ok
    assert health.line.startswith(f"unhealthy: worker box-1:7 last seen {old:.0f} s ago")


def test_another_hosts_worker_does_not_make_this_one_healthy() -> None:
    rows = [beat("box-2:7", "consuming", 1), beat("box-10:3", "consuming", 1)]
    health = judge_workers("box-1", rows, NOW)
    assert not health.ok and health.line.startswith("unhealthy: no worker on box-1 ")


def test_a_restarted_worker_counts_by_its_newest_heartbeat() -> None:
    rows = [beat("box-1:7", "stopping", 40), beat("box-1:9", "consuming", 1)]
    assert judge_workers("box-1", rows, NOW).ok


@pytest.fixture
def api() -> Iterator[tuple[str, list[int]]]:
    """A stand-in API whose /readyz answers the status at the head of the list."""
    statuses = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status": "ready"}' if statuses[0] == 200 else b'{"status": "not ready"}'
            self.send_response(statuses[0] if self.path == "/readyz" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", statuses
    server.shutdown()
    server.server_close()


def test_the_api_is_healthy_when_readyz_answers_200(api: tuple[str, list[int]]) -> None:
    url, statuses = api
    health = api_health(url)
    assert health.ok and health.line == f"ok: {url}/readyz answered 200 (ready)"
    statuses[0] = 503
    health = api_health(url)
    assert not health.ok and health.line == f"unhealthy: {url}/readyz answered 503 (not ready)"


def test_an_api_that_does_not_answer_is_unhealthy() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    health = api_health(url, timeout=1)
    assert not health.ok and health.line == f"unhealthy: {url}/readyz did not answer (ConnectError)"
