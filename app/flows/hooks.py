"""Flow rules that run at delivery time, inside the delivery engine's transactions: each flow's
hooks are in its own package; the engine calls these."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.flows.inventory.hooks import AVAILABILITY, remember_baseline, stock_as_sent_now
from app.flows.orders.hooks import book_order, fill_variant_skus
from app.models import Delivery
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import StockAvailability
from kernel.types import DeliveryContext

__all__ = ["after_delivered", "before_attempt", "fill_variant_skus"]


async def before_attempt(
    session: AsyncSession,
    rt: Runtime,
    delivery: Delivery,
    event: CanonicalEvent,
    ctx: DeliveryContext,
) -> CanonicalEvent:
    """The event as it should go out now (stock: recomputed, with the delta)."""
    if event.type != AVAILABILITY:
        return event
    return await stock_as_sent_now(session, rt, delivery, event, ctx)


async def after_delivered(
    session: AsyncSession,
    rt: Runtime,
    delivery: Delivery,
    event: CanonicalEvent,
    directives: dict[str, Any],
    *,
    answered_at: datetime,
) -> None:
    """Remember what a delivery changed that later rules depend on (``answered_at``: when
    the destination's answer to the call that succeeded was in)."""
    if event.type == AVAILABILITY and "baseline" in directives:
        item = event.payload_as(StockAvailability)
        await remember_baseline(
            session, delivery.destination, item, Decimal(directives["baseline"])
        )
    elif (
        event.flow == "orders"
        and _store_to_erp(rt, delivery)
        and rt.config.routes_from(delivery.destination, "inventory")
    ):
        # booked units only matter to stock pushes from this ERP
        await book_order(session, rt, delivery, event, answered_at)


def _store_to_erp(rt: Runtime, delivery: Delivery) -> bool:
    return rt.sides.get(delivery.source) == "store" and rt.sides.get(delivery.destination) == "erp"
