"""Stock at delivery time.

Most rules run when an event is planned. Stock cannot: what a store may sell depends on the
moment the push lands (the ERP's newest level, which of the store's orders the ERP has
booked). So a stock delivery is a trigger; its value is computed when it is claimed, and it
carries the change since the last push that reached the store (``delta``) as well as the
absolute value. The store's own sales happen between the two; a delta commutes with them,
an absolute value computed a moment earlier would undo them (the flash-sale oversell).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import upsert
from app.flows.inventory.planning import availability_now
from app.flows.plan import plan_context_for
from app.models import Delivery, StockPush, utcnow
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import StockAvailability
from kernel.types import DeliveryContext

AVAILABILITY = "inventory.availability_changed"


async def stock_as_sent_now(
    session: AsyncSession,
    rt: Runtime,
    delivery: Delivery,
    event: CanonicalEvent,
    ctx: DeliveryContext,
) -> CanonicalEvent:
    """The event as it should go out now (stock: recomputed, with the delta)."""
    # A retry must send exactly what the first attempt sent, under the same idempotency
    # key: the store then recognises a change it already applied after a timeout.
    ctx.directives["idempotency_key"] = f"erp-gateway-delivery-{delivery.id}"
    if "sent" in ctx.directives:
        return event.model_copy(
            update={"payload": StockAvailability.model_validate(ctx.directives["sent"])}
        )
    planned = event.payload_as(StockAvailability)
    fresh = await availability_now(
        await plan_context_for(session, rt, delivery.source), delivery.destination, planned
    )
    item = planned if fresh is None else fresh[0]
    baseline = None if fresh is None else fresh[1]
    if baseline is not None:
        ctx.directives["baseline"] = _plain(baseline)
        last = await session.scalar(
            sa.select(col(StockPush.baseline)).where(
                col(StockPush.destination) == delivery.destination,
                col(StockPush.sku) == item.sku,
                col(StockPush.location) == (item.location or ""),
            )
        )
        if last is not None and not ctx.directives.get("absolute"):
            # whole units, from floored values: fractions never get lost between pushes
            ctx.directives["delta"] = _plain(_floor(baseline) - _floor(Decimal(last)))
    ctx.directives["sent"] = item.model_dump(mode="json")
    await session.execute(
        sa.update(Delivery)
        .where(col(Delivery.id) == delivery.id)
        .values(directives=dict(ctx.directives))
    )
    return event.model_copy(update={"payload": item})


async def remember_baseline(
    session: AsyncSession, destination: str, item: StockAvailability, baseline: Decimal
) -> None:
    await upsert(
        session,
        StockPush,
        {
            "destination": destination,
            "sku": item.sku,
            "location": item.location or "",
            "baseline": baseline,
            "updated_at": utcnow(),
        },
        key=["destination", "sku", "location"],
        update=["baseline", "updated_at"],
    )


def _floor(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_FLOOR)


def _plain(value: Decimal) -> str:
    """5.000000 → "5", 2.50 → "2.5": what a person (and a store API) expects to read."""
    return format(value.normalize(), "f") if value else "0"
