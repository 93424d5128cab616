"""Polling with SuiteQL against the simulator: paging, cursors, ties, each stream's events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors.netsuite import wire
from connectors.netsuite.auth import TbaCredentials
from connectors.netsuite.connector import NetSuiteConnector
from connectors.netsuite.suiteql import Cursor
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import InventoryLevel
from kernel.canonical.product import Price, Product
from kernel.canonical.returns import CreditMemo
from kernel.canonical.shipment import Shipment
from kernel.errors import PermanentError, RateLimitedError
from simulators.netsuite.simulator import NetSuiteSimulator
from tests.support.connectors import connect
from tests.unit.netsuite.conftest import (
    BASE_URL,
    SKU_MAP,
    context,
    event_for,
    make_connection,
    realistic_order,
)

T0 = datetime(2026, 11, 1, 9, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(sim: NetSuiteSimulator) -> Iterator[Clock]:
    c = Clock()
    sim.now = c
    yield c


def seed_items(sim: NetSuiteSimulator, count: int) -> list[str]:
    """Items with stock counted in: one inventory adjustment each (a stock transaction)."""
    ids = [str(3000 + i) for i in range(count)]
    sim.seed(items=[{"id": i, "itemId": f"SKU-{i}"} for i in ids])
    for i in ids:
        sim.erp.set_stock(i, "1", {"on_hand": 5})
    return ids


def skus(events: list[CanonicalEvent]) -> list[str]:
    return [getattr(e.payload, "sku", "") for e in events]


def item(sim: NetSuiteSimulator, key: str) -> dict[str, Any]:
    record = sim._find("inventoryItem", key)
    assert record is not None
    return record.fields


async def test_equal_timestamps_page_across_calls_without_loss(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector, clock: Clock
) -> None:
    sim.reset()
    seed_items(sim, 7)  # seven adjustments, every one stamped T0 to the second
    seen: list[str] = []
    cursor = None
    calls = 0
    while True:
        page = await sim_connector.poll("inventory", cursor, 3)
        calls += 1
        seen += skus(page.events)
        cursor = page.cursor
        if not page.has_more:
            break
    assert sorted(seen) == [f"SKU-{3000 + i}" for i in range(7)]
    assert len(seen) == len(set(seen))  # within a run, no row twice
    assert calls == 3
    # the end of a run rewinds to the start of its last second (id 0): a transaction saved
    # again within that second is read at the next run (the core drops what it has)
    assert Cursor.decode(cursor) == Cursor("2026-11-01 09:00:00", 0)

    # the same second, counted again: the next run sees the change
    sim.erp.set_stock("SKU-3001", "1", {"on_hand": 4})
    again = await sim_connector.poll("inventory", cursor, 50)
    changed = {
        e.payload_as(InventoryLevel).sku: e.payload_as(InventoryLevel).on_hand for e in again.events
    }
    assert changed["SKU-3001"] == 4

    # a change a second later comes after the rewound second's rows, once
    clock.at = T0 + timedelta(seconds=1)
    sim.erp.set_stock("SKU-3002", "1", {"on_hand": 9})
    later = await sim_connector.poll("inventory", again.cursor, 50)
    levels = [e.payload_as(InventoryLevel) for e in later.events]
    assert [(lv.sku, lv.on_hand) for lv in levels if lv.sku == "SKU-3002"] == [("SKU-3002", 9)]


async def test_paging_inside_one_call_follows_has_more_and_offset(
    sim: NetSuiteSimulator, sim_connector: NetSuiteConnector, clock: Clock
) -> None:
    sim.reset()
    seed_items(sim, 6)
    sim_connector.poller.page_size = 2  # small pages, so one poll reads several
    before = sim.stats_snapshot()["requests"].get("POST suiteql", 0)
    first = await sim_connector.poll("inventory", None, 5)
    assert first.has_more  # 6 adjustments in all; 5 read
    rest = await sim_connector.poll("inventory", first.cursor, 5)
    assert not rest.has_more
    assert sorted(skus(first.events) + skus(rest.events)) == [f"SKU-{3000 + i}" for i in range(6)]
    # the first call read pages at offsets 0, 2, 4, then the touched items and their stock;
    # the second the last row at offset 0, then its item and stock
    used = sim.stats_snapshot()["requests"]["POST suiteql"] - before
    assert used == (3 + 2) + (1 + 2)


async def test_queries_are_signed_transient_and_errors_are_typed(httpx_mock: HTTPXMock) -> None:
    url = f"{BASE_URL}/services/rest/query/v1/suiteql?limit=10&offset=0"
    httpx_mock.add_response(method="POST", url=url, status_code=429, headers={"Retry-After": "7"})
    async with httpx.AsyncClient() as http:
        connector = connect(NetSuiteConnector, make_connection(), http)
        with pytest.raises(RateLimitedError) as err:
            await connector.poll("customers", None, 10)
    assert err.value.retry_after == 7
    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["prefer"] == "transient"
    assert request.headers["authorization"].startswith('OAuth realm="1234567"')
    q = wire.loads(request.content)["q"]
    assert q.startswith("SELECT customer.id") and "ORDER BY customer.lastmodifieddate" in q


async def test_cursor_is_validated_before_it_reaches_sql(sim_connector: NetSuiteConnector) -> None:
    with pytest.raises(PermanentError, match="reset the stream"):
        await sim_connector.poll("inventory", "not-json", 10)
    bad = '{"t": "2026-01-01\' OR 1=1 --", "id": 1}'
    with pytest.raises(PermanentError, match="YYYY-MM-DD"):
        await sim_connector.poll("inventory", bad, 10)
    with pytest.raises(PermanentError, match="cannot poll"):
        await sim_connector.poll("orders", None, 10)


async def test_unknown_query_gets_netsuites_400(
    sim_http: httpx.AsyncClient, tba: TbaCredentials
) -> None:
    from connectors.netsuite.client import NetSuiteClient

    client = NetSuiteClient(sim_http, BASE_URL, tba)
    with pytest.raises(PermanentError, match="Invalid search query"):
        await client.suiteql("SELECT * FROM employee", 10, 0)


async def test_products_stream_gives_product_and_prices(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient, clock: Clock
) -> None:
    # an account with a MAP price field, named in the connection's options
    sim.erp.custom_columns = {"item": ["custitem_gw_map_price"]}
    sim_connector = connect(
        NetSuiteConnector,
        make_connection(custom_fields={"map_price": "custitem_gw_map_price"}),
        sim_http,
    )
    sim.erp.set_price(
        "1042",
        {
            "basePrice": Decimal("19.99"),
            "cost": Decimal("7.10"),
            "custitem_gw_map_price": Decimal("17.50"),
            "priceLevels": [{"priceLevel": "Wholesale", "minQuantity": 0, "price": "12.00"}],
        },
    )
    item(sim, "1042").update(itemId="TSHIRT-RED-M", displayName="Tee")
    page = await sim_connector.poll("products", None, 10)
    by_type = {(e.type, getattr(e.payload, "sku", "")): e.payload for e in page.events}
    product = by_type[("product.upserted", "TSHIRT-RED-M")]
    assert isinstance(product, Product) and product.title == "Tee"
    price = by_type[("price.changed", "TSHIRT-RED-M")]
    assert isinstance(price, Price)
    assert (price.base, price.cost, price.map_price) == (
        Decimal("19.99"),
        Decimal("7.10"),
        Decimal("17.50"),
    )
    assert [(g.group, g.price) for g in price.group_prices] == [("Wholesale", Decimal("12.00"))]
    assert ("price.changed", "959") not in by_type  # no price in NetSuite, no price event


async def test_customers_shipments_and_credit_memos_streams(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient, clock: Clock
) -> None:
    # an account with a disposition column on transaction lines, named in the options
    sim.erp.custom_columns = {"transactionline": ["custcol_gw_disposition"]}
    sim_connector = connect(
        NetSuiteConnector,
        make_connection(custom_fields={"disposition": "custcol_gw_disposition"}),
        sim_http,
    )
    item(sim, "1042")["itemId"] = "TSHIRT-RED-M"
    item(sim, "959")["itemId"] = "MUG-BLUE"
    await sim_connector.deliver(event_for(realistic_order()), context())
    order_id = sim.record_by_eid("salesOrder", "shop-eu-1001")["id"]  # type: ignore[index]
    sim.erp.fulfil(order_id, {"packages": [{"tracking": "1Z999", "weight": "1.5"}]})
    sim.erp.credit_memo(
        {
            "order": order_id,
            "amount": "19.99",
            "restock": [
                {"item": "1042", "quantity": 1, "amount": "19.99", "disposition": "restock"}
            ],
        }
    )

    (customer_event,) = (await sim_connector.poll("customers", None, 10)).events
    customer = customer_event.payload_as(Customer)
    assert (customer.last_name, customer.email) == ("Lovelace", "ada@example.com")

    (ship_event,) = (await sim_connector.poll("shipments", None, 10)).events
    shipment = ship_event.payload_as(Shipment)
    assert ship_event.type == "shipment.created"
    assert shipment.order_key == "shop-eu:order:1001"
    assert [p.tracking_number for p in shipment.packages] == ["1Z999"]
    assert [(ln.sku, ln.quantity) for ln in shipment.packages[0].lines] == [
        ("TSHIRT-RED-M", 3),
        ("MUG-BLUE", 2),
    ]

    (memo_event,) = (await sim_connector.poll("credit_memos", None, 10)).events
    memo = memo_event.payload_as(CreditMemo)
    assert (memo.amount.amount, memo.order_key) == (Decimal("19.99"), "shop-eu:order:1001")
    assert [(r.sku, r.disposition) for r in memo.restock] == [("TSHIRT-RED-M", "restock")]


def test_sku_map_matches_the_simulator_seed() -> None:
    # the poll tests rename the seeded items to the SKUs of the order fixture
    assert set(SKU_MAP.values()) == {"1042", "959"}
