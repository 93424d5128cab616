"""Find an order by what a person knows: its number (#1019 or 1019), the customer's e-mail
(any case), the ERP's id for it (the NetSuite sales order id) or a SKU on one of its lines.

Orders arrive as real Shopify webhooks, so the number, the e-mail refs and the lines are
what the gateway itself stored; every lookup goes through an index (checked with EXPLAIN).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from app.db import transaction
from app.models import CanonicalEventRow, EntityLink, StockLevel, utcnow
from app.ops.search import orders_numbered_query, orders_with_sku_query
from kernel.types import DeliveryResult, RemoteLink
from tests.api.conftest import OPERATOR, PII_READER, VIEWER, Gateway
from tests.conftest import SHOP_SECRET, wait_for
from tests.support.shopify import order_payload, signed


async def _order(gw: Gateway, n: int, number: int, email: str, skus: tuple[str, ...]) -> str:
    order: dict[str, Any] = order_payload(n, skus)
    order["name"], order["order_number"] = f"#{number}", number
    order["email"] = email
    order["customer"]["email"] = email
    body = json.dumps(order).encode()
    answer = await gw.client.post("/webhooks/shop", content=body, headers=signed(body, SHOP_SECRET))
    assert answer.status_code == 202, answer.text
    return f"shop:order:{order['id']}"


@pytest.fixture
async def orders(gw: Gateway) -> dict[str, str]:
    # the ERP answers each order with its sales order's internal id, as NetSuite does
    sales_orders = {"shop:order:5000000000001": "5521", "shop:order:5000000000002": "5522"}
    gw.erp.script.decide = lambda event, ctx: DeliveryResult(
        links=[RemoteLink("order", event.entity_key, sales_orders[event.entity_key])]
    )
    jane = await _order(gw, 1, 1019, "Jane.Doe@Example.com", ("SKU-RED-M", "SKU-GREEN-S"))
    other = await _order(gw, 2, 1020, "max@example.com", ("SKU-RED-M", "SKU-BLUE-L"))
    assert set(sales_orders) == {jane, other}

    async def booked() -> bool:
        async with gw.rt.sessions() as session:
            links = await session.scalar(sa.select(sa.func.count()).select_from(EntityLink))
        return links == 2

    await wait_for(booked, message="both orders booked in the ERP")
    return {"jane": jane, "other": other}


async def trace_of(gw: Gateway, q: str, headers: dict[str, str] = OPERATOR) -> dict[str, Any]:
    answer = await gw.client.get("/api/v1/trace", params={"q": q}, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.parametrize("q", ["#1019", "1019", " #1019 "])
async def test_an_order_number_with_or_without_hash_finds_the_order(
    gw: Gateway, orders: dict[str, str], q: str
) -> None:
    trace = await trace_of(gw, q)
    assert trace["entity_key"] == orders["jane"]
    first = trace["matches"][0]
    assert first == {
        "entity_key": orders["jane"],
        "entity_type": "order",
        "matched": "order_number",
        "detail": "#1019",
        "label": "order #1019 (shop)",
    }
    assert [e["type"] for e in trace["events"]] == ["order.created"]


@pytest.mark.parametrize(
    "q", ["jane.doe@example.com", "JANE.DOE@EXAMPLE.COM", "Jane.Doe@Example.com"]
)
async def test_the_customers_email_in_any_case_finds_their_order(
    gw: Gateway, orders: dict[str, str], q: str
) -> None:
    trace = await trace_of(gw, q)
    assert trace["entity_key"] == orders["jane"]
    assert {m["entity_key"] for m in trace["matches"]} == {orders["jane"]}
    assert trace["matches"][0]["matched"] == "email"
    assert (await trace_of(gw, q, PII_READER))["entity_key"] == orders["jane"]


async def test_a_viewer_cannot_probe_emails_but_finds_by_number(
    gw: Gateway, orders: dict[str, str]
) -> None:
    refused = await gw.client.get(
        "/api/v1/trace", params={"q": "jane.doe@example.com"}, headers=VIEWER
    )
    assert refused.status_code == 403
    assert "e-mail" in refused.json()["error"]["message"]
    listed = await gw.client.get("/api/v1/search", params={"q": "max@example.com"}, headers=VIEWER)
    assert listed.status_code == 403
    assert (await trace_of(gw, "#1020", VIEWER))["entity_key"] == orders["other"]


async def test_the_netsuite_sales_order_id_finds_the_store_order(
    gw: Gateway, orders: dict[str, str]
) -> None:
    trace = await trace_of(gw, "5521")
    assert trace["entity_key"] == orders["jane"]
    assert trace["matches"][0]["matched"] == "remote_id"
    assert trace["matches"][0]["detail"] == "id 5521 at erp"
    assert {(r["connection_id"], r["remote_id"]) for r in trace["remote_ids"]} >= {("erp", "5521")}


async def test_a_sku_finds_its_stock_and_every_order_with_a_line_of_it(
    gw: Gateway, orders: dict[str, str]
) -> None:
    async with transaction(gw.rt.sessions) as session:
        session.add(
            StockLevel(
                source="erp",
                sku="SKU-GREEN-S",
                location="WH-1",
                level={},
                as_of=utcnow(),
                sellable=3,
            )
        )
    green = await gw.ok("/search", q="SKU-GREEN-S")
    assert green["next_cursor"] is None
    assert [(m["entity_key"], m["matched"], m["detail"]) for m in green["items"]] == [
        ("erp:inventory:SKU-GREEN-S@WH-1", "sku", "stock at WH-1"),
        (orders["jane"], "sku", "order line"),
    ]
    red = await gw.ok("/search", q="SKU-RED-M")
    assert [m["entity_key"] for m in red["items"]] == [orders["other"], orders["jane"]]
    assert (await trace_of(gw, "SKU-BLUE-L"))["entity_key"] == orders["other"]


async def test_nothing_found_is_404_and_q_or_entity_key_is_required(
    gw: Gateway, orders: dict[str, str]
) -> None:
    for q in ("#4242", "nobody@example.com", "SKU-NONE"):
        answer = await gw.client.get("/api/v1/trace", params={"q": q}, headers=OPERATOR)
        assert answer.status_code == 404, q
        assert "hint" in answer.json()["error"]
    assert (await gw.ok("/search", q="#4242")) == {"items": [], "next_cursor": None}
    both = await gw.get("/trace", q="#1019", entity_key=orders["jane"])
    assert both.status_code == 422
    assert (await gw.get("/trace")).status_code == 422
    assert (await gw.get("/search", q="x" * 257)).status_code == 422


async def test_order_number_and_line_sku_lookups_use_their_indexes(gw: Gateway) -> None:
    """The expression in the query must be the one the index was built on, or the database
    reads every event: with a few hundred orders (and sequential scans priced out on
    Postgres) the plan names the index."""
    now = utcnow()
    rows = [
        {
            "source": "shop",
            "event_type": "order.created",
            "entity_type": "order",
            "entity_key": f"shop:order:{n}",
            "occurred_at": now,
            "created_at": now,
            "payload": {"number": f"#{n}", "lines": [{"sku": f"SKU-{n}"}, {"sku": None}]},
        }
        for n in range(300)
    ]
    async with transaction(gw.rt.sessions) as session:
        await session.execute(sa.insert(CanonicalEventRow.__table__), rows)  # type: ignore[attr-defined]
    async with transaction(gw.rt.sessions) as session:
        dialect = session.get_bind().dialect
        await session.execute(sa.text("ANALYZE canonical_events"))
        checks = [(orders_numbered_query(dialect.name, ["#19", "19"]), "ix_canonical_order_number")]
        if dialect.name == "postgresql":
            await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
            checks.append(
                (orders_with_sku_query(dialect.name, "SKU-19"), "ix_canonical_order_skus")
            )
        explain = "EXPLAIN" if dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
        for stmt, index in checks:
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            plan = "\n".join(str(row) for row in await session.execute(sa.text(f"{explain} {sql}")))
            assert index in plan, plan
            assert [key for key, _ in await session.execute(stmt)] == ["shop:order:19"]
