"""Flow rules that run at delivery time, inside the delivery engine's transactions.

Most rules run when an event is planned. Stock cannot: what a store may sell depends on the
moment the push lands (the ERP's newest level, which of the store's orders the ERP has
booked). So a stock delivery is a trigger; its value is computed when it is claimed, and it
carries the change since the last push that reached the store (``delta``) as well as the
absolute value. The store's own sales happen between the two; a delta commutes with them,
an absolute value computed a moment earlier would undo them (the flash-sale oversell).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.canonical.events import CanonicalEvent
from app.canonical.inventory import StockAvailability
from app.canonical.order import Order
from app.dbutil import insert_for
from app.flows.orders import variant_base
from app.flows.planner import (
    PlanContext,
    Planned,
    availability_deliveries,
    availability_now,
)
from app.flows.recorder import record_planned
from app.flows.rules import effective_rules
from app.mappings.service import resolve
from app.models import Delivery, OrderAllocation, StockPush, utcnow
from app.runtime import Runtime
from connectors.base import DeliveryContext, MappingNeed

AVAILABILITY = "inventory.availability_changed"


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
    # A retry must send exactly what the first attempt sent, under the same idempotency
    # key: the store then recognises a change it already applied after a timeout.
    ctx.directives["idempotency_key"] = f"erp-gateway-delivery-{delivery.id}"
    if "sent" in ctx.directives:
        return event.model_copy(
            update={"payload": StockAvailability.model_validate(ctx.directives["sent"])}
        )
    planned = event.payload_as(StockAvailability)
    fresh = await availability_now(
        await _plan_context(session, rt, delivery.source), delivery.destination, planned
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


async def after_delivered(
    session: AsyncSession,
    rt: Runtime,
    delivery: Delivery,
    event: CanonicalEvent,
    directives: dict[str, Any],
) -> None:
    """Remember what a delivery changed that later rules depend on."""
    if event.type == AVAILABILITY and "baseline" in directives:
        item = event.payload_as(StockAvailability)
        await _remember_baseline(
            session, delivery.destination, item, Decimal(directives["baseline"])
        )
    elif (
        event.flow == "orders"
        and _store_to_erp(rt, delivery)
        and rt.config.routes_from(delivery.destination, "inventory")
    ):
        # booked units only matter to stock pushes from this ERP
        await _book_order(session, rt, delivery, event)


def _floor(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_FLOOR)


def _plain(value: Decimal) -> str:
    """5.000000 → "5", 2.50 → "2.5": what a person (and a store API) expects to read."""
    return format(value.normalize(), "f") if value else "0"


def _store_to_erp(rt: Runtime, delivery: Delivery) -> bool:
    return rt.sides.get(delivery.source) == "store" and rt.sides.get(delivery.destination) == "erp"


async def _plan_context(session: AsyncSession, rt: Runtime, source: str) -> PlanContext:
    return PlanContext(
        session=session,
        config=rt.config,
        rules=await effective_rules(session, rt.config.rules),
        source=source,
        now=utcnow(),
        sides=rt.sides,
    )


async def _remember_baseline(
    session: AsyncSession, destination: str, item: StockAvailability, baseline: Decimal
) -> None:
    stmt = insert_for(session, StockPush).values(
        destination=destination,
        sku=item.sku,
        location=item.location or "",
        baseline=baseline,
        updated_at=utcnow(),
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["destination", "sku", "location"],
            set_={"baseline": stmt.excluded.baseline, "updated_at": stmt.excluded.updated_at},
        )
    )


async def _book_order(
    session: AsyncSession, rt: Runtime, delivery: Delivery, event: CanonicalEvent
) -> None:
    """The ERP has the order: its units now count in the ERP's levels, not as in transit.

    The store's stock is recomputed for the order's SKUs, so the last push after a burst
    reflects every booked order even if the ERP's level arrived before this delivery ended.
    """
    order = event.payload_as(Order)
    await session.execute(
        sa.delete(OrderAllocation).where(
            col(OrderAllocation.store) == delivery.source,
            col(OrderAllocation.erp) == delivery.destination,
            col(OrderAllocation.order_key) == event.entity_key,
        )
    )
    units: dict[str, Decimal] = {}
    if event.type != "order.cancelled":
        for line in order.lines:
            if line.sku:
                units[line.sku] = units.get(line.sku, Decimal(0)) + line.quantity
    if units:
        await session.execute(
            sa.insert(OrderAllocation.__table__),  # type: ignore[attr-defined]
            [
                {
                    "store": delivery.source,
                    "erp": delivery.destination,
                    "order_key": event.entity_key,
                    "sku": sku,
                    "quantity": quantity,
                    "booked_at": utcnow(),
                }
                for sku, quantity in units.items()
            ],
        )
    skus = sorted({line.sku for line in order.lines if line.sku})
    if not skus:
        return
    ctx = await _plan_context(session, rt, delivery.destination)
    planned: list[Planned] = []
    for sku in skus:
        planned.extend(await availability_deliveries(ctx, delivery.destination, sku, ctx.now))
    await record_planned(session, rt, ctx, planned)


async def fill_variant_skus(
    session: AsyncSession,
    rt: Runtime,
    destination: str,
    found: dict[str, dict[str, str]],
    missing: list[MappingNeed],
) -> list[MappingNeed]:
    """Resolve unmapped variant SKUs through their base SKU (rules.orders.variant_sku_pattern).

    Fills ``found`` with the variant's mapping and returns what is still missing.
    """
    if not any(m.kind == "sku" for m in missing):
        return missing
    pattern = (await effective_rules(session, rt.config.rules)).orders.variant_sku_pattern
    bases = {
        m.key: base
        for m in missing
        if m.kind == "sku" and (base := variant_base(m.key, pattern)) is not None
    }
    if not bases:
        return missing
    by_base, _ = await resolve(
        session, destination, [MappingNeed("sku", b) for b in bases.values()]
    )
    still: list[MappingNeed] = []
    for need in missing:
        item = by_base.get("sku", {}).get(bases.get(need.key, "")) if need.kind == "sku" else None
        if item is None:
            still.append(need)
        else:
            found.setdefault("sku", {})[need.key] = item
    return still
