"""Canonical objects for tests that do not go through a storefront connector."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.db import transaction
from app.delivery.lookup import lookup_for
from app.delivery.outbox import enqueue_after_commit
from app.models import CanonicalEventRow, Delivery, DeliveryStatus, utcnow
from app.runtime import Runtime
from kernel.canonical.common import Money
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import Order, OrderCustomer, OrderLine, OrderTotals


def usd(value: str) -> Money:
    return Money(amount=Decimal(value), currency="USD")


def make_order(
    external_id: str = "1001", skus: tuple[str, ...] = ("SKU-RED-M",), **extra: Any
) -> Order:
    lines = [
        OrderLine(
            line_id=str(i),
            sku=sku,
            title=f"Item {sku}",
            quantity=Decimal(1),
            unit_price=usd("19.99"),
        )
        for i, sku in enumerate(skus, start=1)
    ]
    total = usd(str(Decimal("19.99") * len(skus)))
    values: dict[str, Any] = {
        "source": "shop",
        "external_id": external_id,
        "number": f"#{external_id}",
        "created_at": datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        "currency": "USD",
        "customer": OrderCustomer(
            external_id="77", email="ada@example.com", first_name="Ada", last_name="Lovelace"
        ),
        "lines": lines,
        "totals": OrderTotals(
            subtotal=total, discounts=usd("0"), shipping=usd("0"), tax=usd("0"), total=total
        ),
    }
    values.update(extra)
    return Order(**values)


async def seed_event(
    rt: Runtime,
    order: Order,
    event_type: str = "order.created",
    destination: str = "erp",
    enqueue: bool = True,
    lookup: bool = True,
) -> int:
    """Store a canonical event with one delivery, like ingest does; returns the delivery id.
    ``lookup=False``: without what its claim reads with the lease (as before 0017)."""
    event = CanonicalEvent(
        type=event_type,
        entity_key=order.entity_key,  # type: ignore[arg-type]
        occurred_at=order.created_at,
        payload=order,
    )
    async with transaction(rt.sessions) as session:
        row = CanonicalEventRow(
            source=order.source,
            event_type=event.type,
            entity_type="order",
            entity_key=event.entity_key,
            occurred_at=event.occurred_at,
            created_at=utcnow(),
            currency=order.currency,
            total_amount=order.totals.total.amount,
            payload=event.payload_json(),
        )
        session.add(row)
        await session.flush()
        delivery = plan_delivery(row, destination, "orders", utcnow())
        if lookup:
            delivery.lookup = lookup_for(rt.connector(destination), event, None)
        session.add(delivery)
        await session.flush()
        delivery_id = int(delivery.id)  # type: ignore[arg-type]
        if enqueue:
            enqueue_after_commit(session, rt, [delivery_id])
    return delivery_id


def plan_delivery(
    event: CanonicalEventRow, destination: str, flow: str, accepted_at: datetime
) -> Delivery:
    """An outbox row for one route of a stored event, pending and due now (no rules)."""
    assert event.id is not None, "flush the event first"
    now = utcnow()
    return Delivery(
        canonical_event_id=event.id,
        flow=flow,
        event_type=event.event_type,
        source=event.source,
        destination=destination,
        entity_key=event.entity_key,
        ordering_key=event.entity_key,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        accepted_at=accepted_at,
        created_at=now,
        updated_at=now,
    )
