"""/metrics: request durations per route, and the database's gauges in one scrape."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from tests.api.conftest import Gateway
from tests.conftest import SHOP_SECRET
from tests.support.shopify import order_payload, signed

WEBHOOK = {"method": "POST", "route": "/webhooks/{connection_id}"}


def requests_timed(**labels: str) -> float:
    return REGISTRY.get_sample_value("gateway_http_request_duration_seconds_count", labels) or 0


async def test_every_request_is_timed_under_its_route_template(gw: Gateway) -> None:
    before = requests_timed(**WEBHOOK)
    body = json.dumps(order_payload(90)).encode()
    accepted = await gw.client.post("/webhooks/shop", content=body, headers=signed(body, "x"))
    assert accepted.status_code == 401  # refused answers are timed too
    ok = await gw.client.post("/webhooks/shop", content=body, headers=signed(body, SHOP_SECRET))
    assert ok.status_code == 202
    assert requests_timed(**WEBHOOK) == before + 2

    # label values stay bounded whatever a client sends: no path, no invented method
    unmatched = requests_timed(method="other", route="unmatched")
    await gw.client.request("BREW", "/coffee/pot-42")
    assert requests_timed(method="other", route="unmatched") == unmatched + 1
    text = (await gw.client.get("/metrics")).text
    assert "pot-42" not in text and "BREW" not in text
    assert (
        'gateway_http_request_duration_seconds_bucket{le="5.0",method="POST",'
        'route="/webhooks/{connection_id}"}'
    ) in text


async def test_one_scrape_of_the_api_has_queues_breakers_polls_findings_workers(
    gw: Gateway,
) -> None:
    text = (await gw.client.get("/metrics")).text
    for line in (
        'gateway_queue_depth{destination="erp",status="pending"}',
        'gateway_queue_oldest_age_seconds{destination="erp",status="pending"}',
        'gateway_breaker_state{destination="erp"}',
        'gateway_webhooks_quarantined{connection="shop"}',
        'gateway_workers{state="consuming"}',
    ):
        assert line in text, line


async def test_a_database_that_does_not_answer_leaves_the_scrape_answering(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import health

    async def hung(_: object) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(health, "DATABASE_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(health, "refresh_database_gauges", hung)
    scrape = await gw.client.get("/metrics")
    assert scrape.status_code == 200
    assert "gateway_metrics_database_fresh 0.0" in scrape.text
    assert "gateway_http_request_duration_seconds" in scrape.text  # the process's own

    async def down(_: object) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(health, "refresh_database_gauges", down)
    assert "gateway_metrics_database_fresh 0.0" in (await gw.client.get("/metrics")).text
    monkeypatch.undo()
    assert "gateway_metrics_database_fresh 1.0" in (await gw.client.get("/metrics")).text
