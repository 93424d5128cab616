"""Ingest under concurrent re-sends, and the health and metrics endpoints."""

from __future__ import annotations

import asyncio
import json

import sqlalchemy as sa

from app.models import CanonicalEventRow, Delivery, InboundEvent
from tests.api.conftest import Gateway
from tests.conftest import SHOP_SECRET
from tests.support.shopify import order_payload, signed


async def count(gw: Gateway, table: type) -> int:
    async with gw.rt.sessions() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def test_concurrent_resends_store_one_event_and_one_delivery(gw: Gateway) -> None:
    body = json.dumps(order_payload(77)).encode()
    headers = signed(body, SHOP_SECRET, webhook_id="same-delivery")
    responses = await asyncio.gather(
        *(gw.client.post("/webhooks/shop", content=body, headers=headers) for _ in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [202]
    assert len({tuple(r.json()["event_ids"]) for r in responses}) == 1
    assert await count(gw, InboundEvent) == 1
    assert await count(gw, CanonicalEventRow) == 1
    assert await count(gw, Delivery) == 1


async def test_other_topics_are_stored_and_acknowledged(gw: Gateway) -> None:
    body = json.dumps({"id": 1, "financial_status": "paid"}).encode()
    response = await gw.client.post(
        "/webhooks/shop", content=body, headers=signed(body, SHOP_SECRET, topic="orders/paid")
    )
    assert response.status_code == 202 and response.json()["event_ids"] == []
    inbound = await gw.ok("/inbound-events")
    assert inbound["items"][0]["topic"] == "orders/paid"
    assert inbound["items"][0]["status"] == "ignored"
    assert await count(gw, Delivery) == 0


async def test_health_readiness_and_metrics(gw: Gateway) -> None:
    assert (await gw.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"

    body = json.dumps(order_payload(78)).encode()
    await gw.client.post("/webhooks/shop", content=body, headers=signed(body, SHOP_SECRET))
    (delivery,) = (await gw.ok("/deliveries"))["items"]
    await gw.wait_status(delivery["id"], "delivered")

    metrics = (await gw.client.get("/metrics")).text
    assert 'gateway_webhooks_received_total{connection="shop",result="accepted"}' in metrics
    assert 'gateway_delivery_outcomes_total{destination="erp",outcome="delivered"}' in metrics
    assert "gateway_end_to_end_seconds_bucket" in metrics
    assert 'gateway_breaker_state{destination="erp"} 0.0' in metrics
    assert 'gateway_queue_depth{destination="erp",status="pending"} 0.0' in metrics


async def test_openapi_documents_the_operator_api(gw: Gateway) -> None:
    spec = (await gw.client.get("/openapi.json")).json()
    for path in (
        "/webhooks/{connection_id}",
        "/api/v1/deliveries",
        "/api/v1/deliveries/{delivery_id}/replay",
        "/api/v1/connections",
        "/api/v1/trace",
    ):
        assert any(p.startswith(path.split("{")[0]) for p in spec["paths"]), path


async def test_a_queue_outage_after_commit_still_answers_202_and_the_sweeper_delivers(
    gw: Gateway,
) -> None:
    queue = gw.rt.require_queue()

    class DownQueue:
        async def enqueue(self, delivery_id: int, **_: object) -> None:
            raise ConnectionError("redis is down")

    gw.rt.queue = DownQueue()  # type: ignore[assignment]
    body = json.dumps(order_payload(79)).encode()
    response = await gw.client.post(
        "/webhooks/shop", content=body, headers=signed(body, SHOP_SECRET)
    )
    gw.rt.queue = queue
    assert response.status_code == 202  # the order is committed; only the nudge was lost
    (delivery,) = (await gw.ok("/deliveries"))["items"]
    await gw.wait_status(delivery["id"], "delivered")


async def test_a_commit_that_fails_is_never_answered_2xx_and_queues_nothing(
    gw: Gateway, monkeypatch: object
) -> None:
    # the endpoint owns its transaction: the answer is built only after the commit returned
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.ingest import one_statement

    queued: list[int] = []

    class CountingQueue:
        async def enqueue(self, delivery_id: int, **_: object) -> None:
            queued.append(delivery_id)

    async def failing_commit(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, ConnectionError("the server closed the connection"))

    queue = gw.rt.require_queue()
    gw.rt.queue = CountingQueue()  # type: ignore[assignment]
    monkeypatch.setattr(AsyncSession, "commit", failing_commit)  # type: ignore[attr-defined]
    # the general path's COMMIT (an order on Postgres is one INSERT statement, no COMMIT: its
    # failures are in tests/integration/test_ingest_round_trips.py)
    monkeypatch.setattr(one_statement, "takes", lambda *_: False)  # type: ignore[attr-defined]
    body = json.dumps(order_payload(80)).encode()
    response = await gw.client.post(
        "/webhooks/shop", content=body, headers=signed(body, SHOP_SECRET)
    )
    monkeypatch.undo()  # type: ignore[attr-defined]
    gw.rt.queue = queue
    assert response.status_code >= 500, response.text  # the sender retries
    assert await count(gw, InboundEvent) == 0 and await count(gw, Delivery) == 0
    assert queued == []
