"""A webhook whose signature is valid but whose body the parser cannot handle is kept in
quarantine, answered 200, reported (finding, metric, operator API) and replayed after a fix:
nothing lost, nothing doubled.

The body is Shopify's documented orders/create sample (../shared/payloads/
shopify_orders_create.json, copied to tests/fixtures) with one SKU longer than the canonical
model takes (128 characters). Today's gateway answered 422 to it: Shopify retries a 4xx 8
times over 4 hours and then deletes an API-made subscription
(https://shopify.dev/changelog/updates-to-webhook-retry-mechanism), so the order was lost.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.models import CanonicalEventRow, Finding, InboundEvent
from app.runtime import Runtime
from connectors.shopify import webhooks
from tests.conftest import SHOP_SECRET, make_config, make_settings, running_app, wait_for
from tests.support.fake_connector import FakeConnector
from tests.support.shopify import signed

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "shopify_orders_create.json"
LONG_SKU = "AVIATOR-" + "X" * 192  # 200 characters; the canonical Sku stops at 128
OPERATOR = {"Authorization": "Bearer operator-key"}
VIEWER = {"Authorization": "Bearer viewer-key"}


@dataclass
class World:
    client: httpx.AsyncClient
    rt: Runtime
    erp: FakeConnector

    async def post(
        self, order: Mapping[str, Any], *, webhook_id: str, topic: str = "orders/create"
    ) -> httpx.Response:
        body = json.dumps(order).encode()
        headers = signed(body, SHOP_SECRET, topic=topic, webhook_id=webhook_id)
        return await self.client.post("/webhooks/shop", content=body, headers=headers)

    async def count(self, model: Any, *where: Any) -> int:
        async with self.rt.sessions() as session:
            stmt = sa.select(sa.func.count()).select_from(model).where(*where)
            return int(await session.scalar(stmt) or 0)

    async def orders_delivered(self) -> list[tuple[str, str]]:
        return [d for d in self.erp.delivered if d[0].startswith("order.")]


@pytest.fixture
async def world(clean_db: str) -> AsyncIterator[World]:
    erp = FakeConnector("erp")
    settings = make_settings(clean_db, schedule_tick_seconds=3600)
    async with running_app(settings, make_config(), connectors={"erp": erp}) as (app, client):
        yield World(client, app.state.runtime, erp)


def sample_order(n: int, sku: str = LONG_SKU) -> dict[str, Any]:
    order = copy.deepcopy(json.loads(SAMPLE.read_text()))
    order["id"] = 7_000_000_000_000 + n
    order["cancelled_at"] = None  # the sample is a voided test order; this one is live
    order["line_items"][0]["sku"] = sku
    return order


def the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new gateway version: SKUs over 128 characters are taken (as a stable short key)."""
    parse = webhooks.parse_order

    def fixed(payload: Mapping[str, Any], source: str) -> Any:
        payload = copy.deepcopy(dict(payload))
        for line in payload.get("line_items") or []:
            sku = line.get("sku") or ""
            if len(sku) > 128:
                line["sku"] = sku[:64] + "~" + hashlib.sha256(sku.encode()).hexdigest()[:16]
        return parse(payload, source)

    monkeypatch.setattr(webhooks, "parse_order", fixed)


async def test_a_signed_order_the_parser_refuses_is_kept_reported_and_replayed_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = sample_order(1)
    answer = await world.post(order, webhook_id="wh-1")
    # 200, not 422: kept, so Shopify neither retries nor deletes the subscription
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["quarantined"] is True and body["event_ids"] == []
    assert "lines[0].sku" in body["reason"]
    inbound_id = body["inbound_event_id"]
    async with world.rt.sessions() as session:
        row = await session.get(InboundEvent, inbound_id)
        finding = await session.scalar(sa.select(Finding))
    assert row is not None and row.status == "quarantined" and row.topic == "orders/create"
    assert "lines[0].sku" in (row.note or "")
    assert finding is not None and finding.kind == "webhook_quarantined"
    assert f"/api/v1/quarantine/{inbound_id}/replay" in finding.message
    assert await world.count(CanonicalEventRow) == 0
    metrics = (await world.client.get("/metrics")).text
    assert 'gateway_webhooks_quarantined{connection="shop"} 1.0' in metrics
    assert 'gateway_webhooks_received_total{connection="shop",result="quarantined"}' in metrics

    # Shopify's retry of the same delivery is the same stored row
    again = await world.post(order, webhook_id="wh-1")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["quarantined"] is True
    assert await world.count(InboundEvent) == 1

    # viewers list it; only operators replay
    listed = await world.client.get("/api/v1/quarantine", headers=VIEWER)
    assert listed.status_code == 200
    assert [i["id"] for i in listed.json()["items"]] == [inbound_id]
    replay_url = f"/api/v1/quarantine/{inbound_id}/replay"
    assert (await world.client.post(replay_url, headers=VIEWER)).status_code == 403

    # before the fix: still quarantined, with the (same) error
    still = await world.client.post(replay_url, headers=OPERATOR)
    assert still.status_code == 200 and still.json()["outcome"] == "quarantined"
    assert "lines[0].sku" in still.json()["error"]

    the_fix(monkeypatch)
    done = await world.client.post(replay_url, headers=OPERATOR)
    assert done.status_code == 200, done.text
    assert done.json()["outcome"] == "recorded" and len(done.json()["event_ids"]) == 1
    entity = f"shop:order:{order['id']}"
    await wait_for(world.orders_delivered, message="the replayed order in the ERP")
    assert await world.orders_delivered() == [("order.created", entity)]

    # replayed once: no longer in quarantine, a second replay finds nothing
    assert (await world.client.post(replay_url, headers=OPERATOR)).status_code == 404
    async with world.rt.sessions() as session:
        row = await session.get(InboundEvent, inbound_id)
    assert row is not None and row.status == "accepted" and "replayed" in (row.note or "")
    listed = await world.client.get("/api/v1/quarantine", headers=OPERATOR)
    assert listed.json()["items"] == []
    metrics = (await world.client.get("/metrics")).text
    assert 'gateway_webhooks_quarantined{connection="shop"} 0.0' in metrics
    # and Shopify re-sending it now changes nothing
    late = await world.post(order, webhook_id="wh-1")
    assert late.json()["duplicate"] is True and late.json()["quarantined"] is False
    assert await world.orders_delivered() == [("order.created", entity)]


async def test_bulk_replay_records_what_the_fix_reads_and_keeps_the_rest(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixable = [sample_order(n) for n in (11, 12)]
    hopeless = sample_order(13)
    hopeless["line_items"][0]["price"] = "-1.00"  # no version takes a negative price
    for n, order in enumerate([*fixable, hopeless]):
        assert (await world.post(order, webhook_id=f"wh-{n}")).json()["quarantined"] is True
    the_fix(monkeypatch)

    replayed = await world.client.post(
        "/api/v1/quarantine/replay", json={"connection_id": "shop"}, headers=OPERATOR
    )
    assert replayed.status_code == 200, replayed.text
    outcomes = [item["outcome"] for item in replayed.json()["items"]]
    assert outcomes == ["recorded", "recorded", "quarantined"]
    assert "price" in replayed.json()["items"][2]["error"]
    assert replayed.json()["remaining"] == 1
    await wait_for(lambda: _count_is(world, 2), message="both fixed orders delivered to the ERP")
    assert sorted(await world.orders_delivered()) == sorted(
        ("order.created", f"shop:order:{o['id']}") for o in fixable
    )


async def _count_is(world: World, n: int) -> bool:
    return len(await world.orders_delivered()) == n


async def test_a_replay_of_an_order_that_arrived_meanwhile_records_nothing_twice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = sample_order(21)
    first = await world.post(order, webhook_id="wh-create")
    inbound_id = first.json()["inbound_event_id"]
    the_fix(monkeypatch)
    # meanwhile the same version arrives again (orders/updated after the new version is up)
    update = await world.post(order, webhook_id="wh-update", topic="orders/updated")
    assert update.status_code == 202 and len(update.json()["event_ids"]) == 1
    done = await world.client.post(f"/api/v1/quarantine/{inbound_id}/replay", headers=OPERATOR)
    assert done.json() == {
        "id": inbound_id,
        "outcome": "recorded",
        "event_ids": [],  # the same version is recorded already
        "error": None,
        "duplicate_of": None,
    }
    await wait_for(world.orders_delivered, message="the order in the ERP")
    assert len(await world.orders_delivered()) == 1
    assert await world.count(CanonicalEventRow) == 1


async def test_a_parser_crash_on_a_signed_body_is_kept_as_a_gateway_bug(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(payload: Mapping[str, Any], source: str) -> Any:
        raise KeyError("total_price_set")

    monkeypatch.setattr(webhooks, "parse_order", crash)
    answer = await world.post(sample_order(31, sku="SKU-RED-M"), webhook_id="wh-crash")
    assert answer.status_code == 200, answer.text  # was a 500: Shopify retried, then unsubscribed
    assert answer.json()["quarantined"] is True
    assert "KeyError" in answer.json()["reason"] and "gateway bug" in answer.json()["reason"]
    monkeypatch.undo()
    inbound_id = answer.json()["inbound_event_id"]
    done = await world.client.post(f"/api/v1/quarantine/{inbound_id}/replay", headers=OPERATOR)
    assert done.json()["outcome"] == "recorded" and len(done.json()["event_ids"]) == 1


async def test_a_forged_request_without_shopifys_headers_is_refused_not_kept(
    world: World,
) -> None:
    body = json.dumps(sample_order(41)).encode()
    headers = signed(body, SHOP_SECRET)
    del headers["X-Shopify-Topic"]  # the signature covers the body only
    answer = await world.client.post("/webhooks/shop", content=body, headers=headers)
    assert answer.status_code == 400
    assert await world.count(InboundEvent) == 0
