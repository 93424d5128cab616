"""The backfill poll against the Shopify simulator: windows by ``updated_at_min``, cursor
paging by ``page_info``, an order read back as the events its webhooks give, refunds and
customers, a record the parser refuses handed over for quarantine, a stale page token."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import ConnectionConfig
from connectors.shopify.backfill import Cursor
from connectors.shopify.connector import ShopifyConnector
from kernel.contract import WebhookRequest
from kernel.types import ParsedWebhook, PollPage
from simulators.shopify.samples import make_order
from simulators.shopify.shop import ShopifySimulator
from simulators.shopify.simulator import create_app
from tests.support.connectors import connect

TOKEN = "shpat_backfill"
# Shopify's documented refunds/create sample (tests/fixtures; sources in ../shared/payloads)
REFUND = Path(__file__).resolve().parents[2] / "fixtures" / "shopify_refunds_create.json"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


@pytest.fixture
async def world() -> AsyncIterator[tuple[ShopifyConnector, ShopifySimulator]]:
    app = create_app(access_token=TOKEN, bucket_size=10_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        conn = ConnectionConfig(
            id="shop",
            type="shopify",
            base_url="https://sim-shop.myshopify.com",
            credentials={"webhook_secret": "s", "access_token": TOKEN},
            options={"backfill_start": START.isoformat(), "backfill_overlap_seconds": 30},
        )
        yield connect(ShopifyConnector, conn, http), app.state.simulator


def placed(sim: ShopifySimulator, n: int, minutes: int, **kw: Any) -> dict[str, Any]:
    """Order ``n`` placed ``minutes`` after START."""
    return sim.add_order(make_order(n, created_at=START + timedelta(minutes=minutes), **kw))


async def drain(
    shop: ShopifyConnector, stream: str, cursor: str | None, limit: int = 2
) -> tuple[list[PollPage], str | None]:
    pages = []
    for _ in range(50):
        page = await shop.poll(stream, cursor, limit)
        pages.append(page)
        cursor = page.cursor
        if not page.has_more:
            return pages, cursor
    raise AssertionError("the stream never ends")


async def test_a_pass_pages_through_what_changed_and_the_next_starts_at_the_newest(
    world: tuple[ShopifyConnector, ShopifySimulator],
) -> None:
    shop, sim = world
    placed(sim, 1, -30)  # changed before the backfill's start (and its overlap): not read
    orders = [placed(sim, n, n) for n in range(2, 7)]
    pages, cursor = await drain(shop, "orders", None)
    assert [p.has_more for p in pages] == [True, True, False]
    keys = [e.entity_key for p in pages for e in p.events]
    assert keys == [f"shop:order:{o['id']}" for o in orders]
    assert {e.type for p in pages for e in p.events} == {"order.created"}
    assert Cursor.read(cursor, START).since == START + timedelta(minutes=6)

    # the next pass re-reads only its overlap (30 s): the last order, then a new one
    new = placed(sim, 7, 8)
    pages, _ = await drain(shop, "orders", cursor, limit=50)
    assert [e.entity_key for e in pages[0].events] == [
        f"shop:order:{orders[-1]['id']}",
        f"shop:order:{new['id']}",
    ]


async def test_an_order_reads_back_as_its_webhooks_say_it_with_its_refunds(
    world: tuple[ShopifyConnector, ShopifySimulator],
) -> None:
    shop, sim = world
    order = placed(sim, 1, 1, cancelled=True)
    refund = json.loads(REFUND.read_text())
    refund["order_id"] = order["id"]
    order["refunds"] = [refund]
    (page,) = (await drain(shop, "orders", None, limit=50))[0]
    assert [(e.type, e.entity_key) for e in page.events] == [
        ("order.created", f"shop:order:{order['id']}"),
        ("order.cancelled", f"shop:order:{order['id']}"),
        ("refund.created", f"shop:refund:{refund['id']}"),
    ]
    # the very event its orders/create webhook gives: the core's dedupe sees one version
    body = json.dumps(order).encode()
    webhook = shop.parse_webhook({"X-Shopify-Topic": "orders/create"}, body)
    assert webhook.events[0].payload_json() == page.events[0].payload_json()


async def test_an_order_the_parser_refuses_is_handed_over_and_the_rest_still_come(
    world: tuple[ShopifyConnector, ShopifySimulator],
) -> None:
    shop, sim = world
    bad = placed(sim, 1, 1)
    bad["line_items"][0]["price"] = "-1.00"
    good = placed(sim, 2, 2)
    (page,) = (await drain(shop, "orders", None, limit=50))[0]
    assert [e.entity_key for e in page.events] == [f"shop:order:{good['id']}"]
    (kept,) = page.unparsed
    assert kept.topic == "orders/updated" and "line_items[0].price" in kept.error
    assert kept.dedupe_key == f"backfill:order:{bad['id']}:{bad['updated_at']}"
    # what the core keeps is what a replay parses (with the topic its webhook would carry)
    fixed = copy.deepcopy(json.loads(kept.body))
    assert fixed["id"] == bad["id"]
    fixed["line_items"][0]["price"] = "1.00"
    answer = await shop.reparse(WebhookRequest(kept.headers, json.dumps(fixed).encode()))
    assert isinstance(answer, ParsedWebhook) and answer.events[0].type == "order.updated"


async def test_a_page_token_shopify_no_longer_takes_starts_the_pass_again(
    world: tuple[ShopifyConnector, ShopifySimulator],
) -> None:
    shop, sim = world
    order = placed(sim, 1, 1)
    stale = Cursor(START, page="bm90LWEtdG9rZW4").text()  # not a token Shopify issued
    page = await shop.poll("orders", stale, 50)
    assert [e.entity_key for e in page.events] == [f"shop:order:{order['id']}"]
    # and a cursor it cannot read starts a pass from backfill_start
    page = await shop.poll("orders", "not json", 50)
    assert len(page.events) == 1


async def test_customers_changed_since_come_as_upserts(
    world: tuple[ShopifyConnector, ShopifySimulator],
) -> None:
    shop, sim = world
    made = [sim.store.create_customer({"email": f"c{n}@example.com"}) for n in range(3)]
    pages, cursor = await drain(shop, "customers", None)
    events = [e for p in pages for e in p.events]
    assert [e.entity_key for e in events] == [f"shop:customer:{c['id']}" for c in made]
    assert {e.type for e in events} == {"customer.upserted"}
    assert cursor is not None


async def test_an_unknown_stream_is_refused(
    world: tuple[ShopifyConnector, ShopifySimulator],
) -> None:
    shop, _ = world
    with pytest.raises(Exception, match="polls customers, orders"):
        await shop.poll("products", None, 10)
