"""Through the gateway core: an order reaches the real Tryton by the delivery engine, and the
pollers record what Tryton reports."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.config import parse_config
from app.delivery.service import process_delivery
from app.main import start_runtime
from app.models import CanonicalEventRow, Delivery, DeliveryStatus, EntityLink, PollCursor
from app.scheduling.jobs import poll_stream
from connectors.tryton.client import TrytonClient
from connectors.tryton.polling import STREAMS
from tests.conftest import SHOP_SECRET, make_settings
from tests.support.factories import make_order, seed_event
from tests.tryton.conftest import unique
from tests.tryton.server import SHIPPING_SKU, TrytonServer

pytestmark = [pytest.mark.tryton, pytest.mark.timeout(300)]


def gateway_yaml(server: TrytonServer) -> str:
    streams = ", ".join(sorted(STREAMS))
    return f"""
connections:
  - id: shop
    type: shopify
    base_url: https://shop.myshopify.com
    credentials: {{webhook_secret: {SHOP_SECRET}, access_token: shpat_test}}
  - id: erp
    type: tryton
    base_url: {server.url}
    credentials: {{username: {server.username}, password: {server.password}}}
    options: {{database: {server.database}, shipping_product_code: {SHIPPING_SKU}}}
    poll: {{streams: [{streams}], page_size: 200}}
routes:
  - {{flow: orders, from: shop, to: erp}}
  - {{flow: customers, from: shop, to: erp}}
  - {{flow: inventory, from: erp, to: shop}}
  - {{flow: shipments, from: erp, to: shop}}
  - {{flow: returns, from: erp, to: shop}}
  - {{flow: customers, from: erp, to: shop}}
delivery:
  request_timeout_seconds: 30
"""


async def test_an_order_goes_through_the_engine_into_tryton_and_polls_come_back(
    tryton: TrytonServer, clean_db: str, rpc: TrytonClient
) -> None:
    config = parse_config(gateway_yaml(tryton), "tryton-gateway")
    rt, _ = await start_runtime(make_settings(clean_db), config, with_worker=False)
    try:
        order = make_order(unique(), skus=("SKU-RED-M", "SKU-BLUE-L"))
        delivery_id = await seed_event(rt, order, enqueue=False)

        outcome = await process_delivery(rt, delivery_id)
        async with rt.sessions() as session:
            delivery = await session.get(Delivery, delivery_id)
            assert delivery is not None
            assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
            links = (
                (
                    await session.execute(
                        sa.select(EntityLink).where(EntityLink.connection_id == "erp")
                    )
                )
                .scalars()
                .all()
            )
        sales = await rpc.search_read(
            "sale.sale", [("reference", "=", f"shop-{order.external_id}")], ["state", "party"]
        )
        assert outcome is not None
        (sale,) = sales
        assert {(link.entity_type, link.our_key): link.remote_id for link in links} == {
            ("order", order.entity_key): str(sale["id"]),
            ("customer", order.customer_key): str(sale["party"]),
        }

        for stream in sorted(STREAMS):
            await poll_stream(rt, "erp", stream)
        async with rt.sessions() as session:
            cursors = (await session.execute(sa.select(PollCursor))).scalars().all()
            recorded = await session.scalar(
                sa.select(sa.func.count())
                .select_from(CanonicalEventRow)
                .where(CanonicalEventRow.source == "erp")
            )
        assert {c.stream: c.last_error for c in cursors} == dict.fromkeys(STREAMS)
        # the order's party and the stock its lines will take were read, and a cursor kept
        assert {c.stream for c in cursors if c.cursor} >= {"customers", "inventory"}
        assert recorded  # stock levels and parties at least
        # polled again at once: nothing new to record
        assert [await poll_stream(rt, "erp", "customers")] == [0]
    finally:
        await rt.close()
