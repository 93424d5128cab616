"""A worker's metrics port: its own counters, none of the API's database gauges."""

from __future__ import annotations

import socket

import httpx

from app.delivery.worker import serve_worker_metrics
from app.observability import metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_worker_serves_its_own_metrics_without_the_database_gauges() -> None:
    metrics.DELIVERY_OUTCOMES.labels("erp", "delivered").inc()
    # what this process last saw itself: stale once another worker closes the breaker
    metrics.BREAKER_STATE.labels("erp").set(2)
    port = free_port()
    server = serve_worker_metrics(port, addr="127.0.0.1")
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    assert 'gateway_delivery_outcomes_total{destination="erp",outcome="delivered"}' in text
    assert "# TYPE gateway_delivery_attempt_seconds histogram" in text
    for name in metrics.DATABASE_GAUGES:
        assert name not in text, name
