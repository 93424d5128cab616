"""Approvals: held deliveries listed with what a person needs, approved or rejected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from app.db import transaction
from app.flows.recorder import record_events
from app.models import CanonicalEventRow, Delivery, SentPrice, utcnow
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.product import Price
from tests.api.conftest import VIEWER, Gateway, seed
from tests.support.factories import plan_delivery


async def record_price(gw: Gateway, amount: str, sku: str = "SKU-1") -> int:
    """An ERP price change recorded as ingest would: planned with the price guard."""
    price = Price(
        source="erp",
        sku=sku,
        currency="USD",
        base=Decimal(amount),
        effective_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    event = CanonicalEvent(
        type="price.changed",
        entity_key=price.entity_key,
        occurred_at=price.effective_at,
        payload=price,
    )
    async with transaction(gw.rt.sessions) as session:
        recorded = await record_events(session, gw.rt, "erp", [event])
    (delivery_id,) = recorded.delivery_ids
    return delivery_id


async def delivery_row(gw: Gateway, delivery_id: int) -> Delivery:
    async with gw.rt.sessions() as session:
        row = await session.get(Delivery, delivery_id)
    assert row is not None
    return row


async def baseline(gw: Gateway, sku: str = "SKU-1") -> Decimal | None:
    async with gw.rt.sessions() as session:
        value = await session.scalar(
            sa.select(col(SentPrice.amount)).where(
                col(SentPrice.destination) == "shop", col(SentPrice.sku) == sku
            )
        )
    return None if value is None else Decimal(value)


async def test_list_shows_held_deliveries_with_prices(gw_flows: Gateway) -> None:
    first = await record_price(gw_flows, "10.00")
    await gw_flows.wait_status(first, "delivered")
    held = await record_price(gw_flows, "25.00")
    assert await gw_flows.status_of(held) == "held"
    order = await seed(gw_flows.rt, status="held", held_reason="order is already shipped")
    await seed(gw_flows.rt, status="dead")

    items = await gw_flows.pages("/approvals", limit=1)
    assert [i["id"] for i in items] == [order.delivery, held]  # newest first
    by_id = {i["id"]: i for i in items}
    price = by_id[held]
    assert price["event_type"] == "price.changed" and price["flow"] == "products"
    assert price["destination"] == "shop" and price["entity_key"] == "erp:price:SKU-1:USD"
    assert price["status"] == "held" and price["created_at"]
    assert Decimal(price["previous_price"]) == Decimal("10")
    assert Decimal(price["effective_price"]) == Decimal("25")
    assert "more than the 20% guard" in price["held_reason"]
    assert by_id[order.delivery]["held_reason"] == "order is already shipped"
    assert by_id[order.delivery]["previous_price"] is None

    only_prices = await gw_flows.ok("/approvals", event_type="price.changed")
    assert [i["id"] for i in only_prices["items"]] == [held]
    assert [i["id"] for i in (await gw_flows.ok("/approvals", destination="erp"))["items"]] == [
        order.delivery
    ]
    assert (await gw_flows.ok("/approvals", flow="orders"))["items"][0]["id"] == order.delivery
    by_key = await gw_flows.ok("/approvals", entity_key=order.entity_key)
    assert [i["id"] for i in by_key["items"]] == [order.delivery]


async def test_approving_a_held_price_sends_it_and_moves_the_baseline(gw_flows: Gateway) -> None:
    first = await record_price(gw_flows, "10.00")
    await gw_flows.wait_status(first, "delivered")
    held = await record_price(gw_flows, "25.00")
    assert await gw_flows.status_of(held) == "held"
    assert await baseline(gw_flows) == Decimal("10")

    response = await gw_flows.write(
        "POST", f"/approvals/{held}/approve", json={"note": "supplier raised prices"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == held and body["decision"] == "approved"
    assert body["status"] == "pending" and body["queued"] == [held]
    assert body["decided_by"] == "operator" and body["note"] == "supplier raised prices"
    assert Decimal(body["price_baseline"]) == Decimal("25")
    await gw_flows.wait_status(held, "delivered")
    assert gw_flows.shop is not None
    assert gw_flows.shop.accepted == ["erp:price:SKU-1:USD", "erp:price:SKU-1:USD"]

    row = await delivery_row(gw_flows, held)
    assert row.attempts == 1  # a fresh budget: the approval's send is the first attempt
    decision = (row.directives or {})["decision"]
    assert decision["outcome"] == "approved" and decision["by"] == "operator"
    assert decision["note"] == "supplier raised prices" and decision["at"]
    assert await baseline(gw_flows) == Decimal("25")

    # the approved price is the new baseline: the same price again is not held
    again = await record_price(gw_flows, "25.00")
    await gw_flows.wait_status(again, "delivered")
    assert (await delivery_row(gw_flows, again)).held_reason is None


async def test_approving_an_order_amendment_without_a_note(gw: Gateway) -> None:
    held = await seed(
        gw.rt, status="held", attempts=2, held_reason="amendment", last_error="amendment"
    )
    response = await gw.write("POST", f"/approvals/{held.delivery}/approve")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["note"] is None and body["price_baseline"] is None
    await gw.wait_status(held.delivery, "delivered")
    assert gw.erp.accepted == [held.entity_key]
    row = await delivery_row(gw, held.delivery)
    assert row.attempts == 1 and row.last_error is None
    assert (row.directives or {})["decision"]["outcome"] == "approved"


async def test_rejecting_is_final_and_releases_what_waited(gw: Gateway) -> None:
    held = await seed(gw.rt, status="held", held_reason="over-shipment")
    now = utcnow()
    behind = await seed(
        gw.rt,
        status="pending",
        external_id=held.entity_key.rsplit(":", 1)[1],
        event_type="order.updated",
        next_attempt_at=now,
    )
    behind_too = await seed(
        gw.rt,
        status="pending",
        external_id=held.entity_key.rsplit(":", 1)[1],
        event_type="order.cancelled",
        next_attempt_at=now,
    )
    dependent = await seed(gw.rt, status="pending", depends_on=held.entity_key, next_attempt_at=now)
    elsewhere = await seed(
        gw.rt,
        status="pending",
        destination="shop",
        external_id=held.entity_key.rsplit(":", 1)[1],
        inbound=False,
        next_attempt_at=now + timedelta(hours=1),
    )
    assert behind.entity_key == held.entity_key

    response = await gw.write(
        "POST", f"/approvals/{held.delivery}/reject", json={"note": "customer was refunded"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "rejected" and body["status"] == "rejected"
    # the first waiting per ordering key; the second goes after it by itself
    assert body["queued"] == sorted([behind.delivery, dependent.delivery])
    row = await delivery_row(gw, held.delivery)
    assert row.status == "rejected" and row.last_error_class == "rejected"
    assert row.last_error == "rejected by an operator: customer was refunded"
    assert (row.directives or {})["decision"]["outcome"] == "rejected"
    for waiting in (behind, behind_too, dependent):
        await gw.wait_status(waiting.delivery, "delivered")
    assert await gw.status_of(elsewhere.delivery) == "pending"
    # the update and the cancel went; the rejected create never did
    assert gw.erp.accepted.count(held.entity_key) == 2


async def test_unknown_is_404_and_not_held_is_409(gw: Gateway) -> None:
    for action in ("approve", "reject"):
        missing = await gw.write("POST", f"/approvals/424242/{action}")
        assert missing.status_code == 404, missing.text
        assert "424242" in missing.json()["error"]["message"]
    dead = await seed(gw.rt, status="dead")
    for action in ("approve", "reject"):
        response = await gw.write("POST", f"/approvals/{dead.delivery}/{action}")
        assert response.status_code == 409, response.text
        message = response.json()["error"]["message"]
        assert "not held" in message and "status dead" in message
    assert await gw.status_of(dead.delivery) == "dead"
    too_long = await gw.write(
        "POST", f"/approvals/{dead.delivery}/approve", json={"note": "x" * 1001}
    )
    assert too_long.status_code == 422 and "note" in too_long.json()["error"]["message"]


async def test_viewer_can_list_but_not_decide(gw: Gateway) -> None:
    held = await seed(gw.rt, status="held")
    assert (await gw.get("/approvals")).status_code == 200
    for path, body in (
        (f"/approvals/{held.delivery}/approve", None),
        (f"/approvals/{held.delivery}/reject", None),
        ("/approvals/approve", {"ids": [held.delivery]}),
        ("/approvals/reject", {"ids": [held.delivery]}),
    ):
        response = await gw.client.post(f"/api/v1{path}", json=body, headers=VIEWER)
        assert response.status_code == 403, path
    assert await gw.status_of(held.delivery) == "held"


async def test_bulk_approve_by_filter_with_dry_run(gw: Gateway) -> None:
    to_erp = [await seed(gw.rt, status="held") for _ in range(3)]
    to_shop = await seed(gw.rt, status="held", destination="shop")
    dead = await seed(gw.rt, status="dead")

    dry = await gw.write("POST", "/approvals/approve", json={"destination": "erp", "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["decided"] == [s.delivery for s in to_erp] and dry.json()["dry_run"]
    assert dry.json()["queued"] == []
    assert all([await gw.status_of(s.delivery) == "held" for s in to_erp])

    response = await gw.write(
        "POST", "/approvals/approve", json={"destination": "erp", "note": "checked"}
    )
    body = response.json()
    assert body["decided"] == [s.delivery for s in to_erp] and body["count"] == 3
    assert body["capped"] is False and body["queued"] == body["decided"]
    for s in to_erp:
        await gw.wait_status(s.delivery, "delivered")
    assert await gw.status_of(to_shop.delivery) == "held"
    assert await gw.status_of(dead.delivery) == "dead"


async def test_bulk_reject_by_ids_reports_what_was_skipped(gw: Gateway) -> None:
    held = await seed(gw.rt, status="held")
    other = await seed(gw.rt, status="held")
    dead = await seed(gw.rt, status="dead")
    response = await gw.write(
        "POST", "/approvals/reject", json={"ids": [held.delivery, dead.delivery, 424242]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decided"] == [held.delivery] and body["decision"] == "rejected"
    assert body["skipped"] == sorted([dead.delivery, 424242])
    assert await gw.status_of(held.delivery) == "rejected"
    assert await gw.status_of(other.delivery) == "held"
    row = await delivery_row(gw, held.delivery)
    assert row.last_error == "rejected by an operator"


async def test_bulk_needs_ids_or_a_filter_and_is_capped(gw: Gateway) -> None:
    for action in ("approve", "reject"):
        for body in ({}, {"dry_run": True}, {"ids": []}, {"note": "all of them"}):
            response = await gw.write("POST", f"/approvals/{action}", json=body)
            assert response.status_code == 422, body
            assert "never sweeps" in response.json()["error"]["message"]
        too_many = await gw.write("POST", f"/approvals/{action}", json={"ids": list(range(501))})
        assert too_many.status_code == 422

    seeded = await seed(gw.rt, status="held", held_reason="guard")
    async with transaction(gw.rt.sessions) as session:
        event = await session.get(CanonicalEventRow, seeded.event_id)
        assert event is not None
        for _ in range(500):
            delivery: Any = plan_delivery(event, "erp", "orders", utcnow())
            delivery.status = "held"
            session.add(delivery)
    response = await gw.write(
        "POST", "/approvals/approve", json={"entity_key": seeded.entity_key, "dry_run": True}
    )
    body = response.json()
    assert body["count"] == 500 and body["capped"] is True and body["cap"] == 500
    assert body["decided"][0] == seeded.delivery  # oldest first
    assert await gw.status_of(seeded.delivery) == "held"
