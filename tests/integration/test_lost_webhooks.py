"""No lost webhooks (issue 10 item 12): the gateway against the Shopify simulator, which
keeps the app's subscriptions and scopes, drops a delivery when told to and deletes a
subscription after 8 failed deliveries in a row, as Shopify does
(https://shopify.dev/changelog/updates-to-webhook-retry-mechanism).

- a webhook that never arrives: the order still reaches the ERP within one backfill
  interval, exactly once, and the late retry of that webhook records nothing again;
- a subscription Shopify deleted is re-created at the next check (and at start);
- without the scope a topic needs, a finding says what to do, once (not every check).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.config import parse_config
from app.models import CanonicalEventRow, Finding, PollCursor
from app.runtime import Runtime
from app.scheduling.jobs import run_due_jobs
from connectors.shopify.connector import ShopifyConnector
from simulators.shopify.samples import make_order
from simulators.shopify.shop import ShopifySimulator
from simulators.shopify.simulator import create_app
from tests.conftest import make_settings, running_app, wait_for
from tests.integration.test_quarantine import the_fix
from tests.support.connectors import connect
from tests.support.fake_connector import FakeConnector

TOKEN = "shpat_lost_webhooks"
SECRET = "shpss_lost_webhooks"  # the app's client secret: it signs every delivery
PUBLIC_URL = "https://gateway.test"
CALLBACK = f"{PUBLIC_URL}/webhooks/shop"
INTERVAL = 0.5  # the backfill interval of these tests (seconds)
CONFIG = f"""
connections:
  - id: shop
    type: shopify
    base_url: https://sim-shop.myshopify.com
    credentials: {{webhook_secret: {SECRET}, access_token: {TOKEN}}}
    options: {{public_url: "{PUBLIC_URL}"}}
    poll: {{streams: [orders, customers], interval_seconds: {INTERVAL}, page_size: 50}}
  - id: erp
    type: netsuite
    base_url: http://127.0.0.1:9/ns
    credentials: {{account_id: "1", consumer_key: a, consumer_secret: b, token_id: c,
                   token_secret: d}}
    options: {{discount_item_id: "900"}}
routes:
  - {{flow: orders, from: shop, to: erp}}
  - {{flow: customers, from: shop, to: erp}}
"""


@dataclass
class World:
    rt: Runtime
    sim: ShopifySimulator
    control: httpx.AsyncClient
    erp: FakeConnector
    gateway: httpx.AsyncClient

    async def order(self, n: int) -> dict[str, Any]:
        """A shopper's order, placed now; Shopify notifies the subscriptions."""
        order = make_order(n, created_at=datetime.now(UTC).replace(microsecond=0))
        answer = await self.control.post("/_sim/orders", json={"order": order})
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]

    async def delivered(self, entity_key: str) -> list[str]:
        return [kind for kind, key in self.erp.delivered if key == entity_key]

    async def findings(self, kind: str) -> list[Finding]:
        async with self.rt.sessions() as session:
            rows = await session.scalars(sa.select(Finding).where(Finding.kind == kind))
            return list(rows)

    async def events_of(self, entity_key: str) -> list[str]:
        async with self.rt.sessions() as session:
            rows = await session.scalars(
                sa.select(CanonicalEventRow.event_type)
                .where(CanonicalEventRow.entity_key == entity_key)
                .order_by(CanonicalEventRow.id)
            )
            return list(rows)

    def subscribed(self) -> set[str]:
        return {s["topic"] for s in self.sim.app.subscriptions.values() if s["uri"] == CALLBACK}

    async def next_tick(self) -> dict[str, int]:
        """The scheduler's next run once the backfill interval has passed."""
        await asyncio.sleep(INTERVAL + 0.05)
        return await run_due_jobs(self.rt)


async def _world(clean_db: str, scopes: list[str] | None = None) -> AsyncIterator[World]:
    config = parse_config(CONFIG, "lost-webhooks")
    sim_app = create_app(access_token=TOKEN, bucket_size=10_000)
    sim: ShopifySimulator = sim_app.state.simulator
    sim.app.client_secret = SECRET
    if scopes is not None:
        sim.app.scopes = set(scopes)
    sim_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim_app))
    conn = config.connection("shop")
    assert conn is not None
    shop = connect(ShopifyConnector, conn, sim_http)
    erp = FakeConnector("erp")
    # the scheduler ticks once at start (subscriptions checked, backfill passes begun); the
    # tests run the later ticks themselves
    settings = make_settings(clean_db, schedule_tick_seconds=3600)
    async with (
        sim_http,
        running_app(settings, config, connectors={"shop": shop, "erp": erp}) as (app, gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as hooks,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sim_app), base_url="http://sim"
        ) as control,
    ):
        sim.webhook_client = hooks  # Shopify's deliveries reach the gateway in process
        rt: Runtime = app.state.runtime
        world = World(rt, sim, control, erp, gateway)
        await wait_for(lambda: _started(rt), message="the start-up tick")
        yield world


async def _started(rt: Runtime) -> bool:
    async with rt.sessions() as session:
        ran = await session.scalars(
            sa.select(PollCursor.stream).where(
                PollCursor.connection_id == "shop", PollCursor.cursor.is_not(None)
            )
        )
        return {"orders", "customers", "job:webhook_subscriptions"} <= set(ran)


@pytest.fixture
async def world(clean_db: str) -> AsyncIterator[World]:
    async for w in _world(clean_db):
        yield w


async def test_a_lost_webhook_still_reaches_the_erp_within_one_interval_exactly_once(
    world: World,
) -> None:
    assert "ORDERS_CREATE" in world.subscribed()  # made at start
    await world.control.post("/_sim/app", json={"drop_webhooks": 1})
    order = await world.order(1)
    entity = f"shop:order:{order['order']['id']}"
    assert order["webhooks"][0]["error"].startswith("dropped")
    assert await world.delivered(entity) == []

    done = await world.next_tick()
    assert done.get("poll:shop:orders") == 1, done
    await wait_for(lambda: world.delivered(entity), message="the order in the ERP")
    assert await world.delivered(entity) == ["order.created"]

    # Shopify's late retry of the lost delivery, then another pass: nothing twice
    late = await world.control.post("/_sim/send/orders/create", json=order["order"])
    assert late.json()["webhooks"][0]["status"] == 202
    await world.next_tick()
    await asyncio.sleep(0.3)  # anything planned would be delivered by now
    assert await world.events_of(entity) == ["order.created"]
    assert await world.delivered(entity) == ["order.created"]


async def test_an_order_the_webhook_brought_is_not_recorded_again_by_the_backfill(
    world: World,
) -> None:
    order = await world.order(2)
    entity = f"shop:order:{order['order']['id']}"
    assert order["webhooks"][0]["status"] == 202
    await wait_for(lambda: world.delivered(entity), message="the order in the ERP")
    assert (await world.next_tick()).get("poll:shop:orders") == 0
    cancelled = await world.control.post(f"/_sim/orders/{order['order']['id']}/cancel")
    assert [w["status"] for w in cancelled.json()["webhooks"]] == [202, 202]
    await world.next_tick()  # reads the cancelled order back: already known
    await wait_for(lambda: _cancel_delivered(world, entity), message="the cancel in the ERP")
    # orders/cancelled, then orders/updated with the cancelled order; the pass adds nothing
    assert await world.events_of(entity) == ["order.created", "order.cancelled", "order.updated"]


async def _cancel_delivered(world: World, entity: str) -> bool:
    return "order.cancelled" in await world.delivered(entity)


async def test_a_subscription_shopify_deleted_is_made_again_at_the_next_check(
    world: World,
) -> None:
    assert world.subscribed() >= {"ORDERS_CREATE", "ORDERS_UPDATED", "CUSTOMERS_UPDATE"}
    # the gateway is unreachable for a while: 8 failed deliveries and Shopify deletes it
    hooks = world.sim.webhook_client
    world.sim.webhook_client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(503))
    )
    orders = [await world.order(n) for n in range(10, 18)]
    assert "ORDERS_CREATE" not in world.subscribed()
    assert any("removed" in mail for mail in world.sim.app.emails)
    world.sim.webhook_client = hooks

    # the next check makes it again; the orders of the gap come by the backfill
    done = await _check_now(world)
    assert done.get("job:webhook_subscriptions:shop") == 1, done
    assert "ORDERS_CREATE" in world.subscribed()
    made = await world.findings("webhook_subscription_made")
    assert {f.data["topic"] for f in made} >= {"orders/create"}
    for placed in orders:
        entity = f"shop:order:{placed['order']['id']}"
        await wait_for(lambda e=entity: world.delivered(e), message=f"{entity} in the ERP")
        assert await world.delivered(entity) == ["order.created"]
    after = await world.order(20)
    assert after["webhooks"][0]["status"] == 202


async def _check_now(world: World) -> dict[str, int]:
    """The next subscription check: its interval has passed (made due in the database)."""
    async with world.rt.sessions() as session, session.begin():
        await session.execute(
            sa.update(PollCursor)
            .where(PollCursor.stream == "job:webhook_subscriptions")
            .values(polled_at=None)
        )
    return await world.next_tick()


@pytest.fixture
async def world_without_customers(clean_db: str) -> AsyncIterator[World]:
    async for w in _world(clean_db, scopes=["read_orders", "write_products", "write_inventory"]):
        yield w


async def test_without_the_scope_a_finding_says_what_to_do_once(
    world_without_customers: World,
) -> None:
    world = world_without_customers
    assert world.subscribed() == {
        "ORDERS_CREATE",
        "ORDERS_UPDATED",
        "ORDERS_CANCELLED",
        "REFUNDS_CREATE",
    }
    missing = await world.findings("webhook_subscription_missing")
    topics = sorted(f.data["topic"] for f in missing)
    assert topics == ["customers/create", "customers/update", "returns/request"]
    text = next(f.message for f in missing if f.data["topic"] == "customers/update")
    assert "read_customers" in text and "Admin API access scopes" in text
    assert "webhook_topics" in text  # or say what to drop
    # the next check finds the same: no new findings (reported again after a day)
    assert (await _check_now(world)).get("job:webhook_subscriptions:shop") == 1
    assert len(await world.findings("webhook_subscription_missing")) == 3


async def test_an_order_only_the_backfill_read_and_cannot_parse_is_kept_then_replayed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.control.post("/_sim/app", json={"drop_webhooks": 1})
    order = make_order(40, created_at=datetime.now(UTC).replace(microsecond=0))
    order["line_items"][0]["sku"] = "LONG-" + "X" * 195  # over the canonical 128
    await world.control.post("/_sim/orders", json={"order": order})
    entity = f"shop:order:{order['id']}"
    await world.next_tick()
    await world.next_tick()  # the overlap reads it again: still one row, one finding
    (kept,) = await world.findings("webhook_quarantined")
    assert kept.data["topic"] == "orders/updated" and "lines[0].sku" in kept.data["error"]
    assert await world.events_of(entity) == []

    the_fix(monkeypatch)
    replay = await world.gateway.post(
        "/api/v1/quarantine/replay", json={}, headers={"Authorization": "Bearer operator-key"}
    )
    assert [i["outcome"] for i in replay.json()["items"]] == ["recorded"]
    await wait_for(lambda: world.delivered(entity), message="the replayed order in the ERP")
    assert await world.delivered(entity) == ["order.updated"]
