"""Planning products and prices: rounding and sale dates, the price guard and its baseline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import upsert
from app.flows.plan import PlanContext, Planned, as_is, older_than_known
from app.flows.products import rules as pricing_rules
from app.models import (
    DeliveryStatus,
    PriceRecord,
    SentPrice,
    utcnow,
)
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.product import Price
from kernel.types import Finding

log = structlog.get_logger("gateway.flows")


async def plan_product(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    stale = await older_than_known(ctx, event)
    if stale is not None:
        return stale
    return [as_is(route, event) for route in ctx.routes("products")]


async def plan_price(ctx: PlanContext, event: CanonicalEvent) -> list[Planned]:
    # an older price arriving late must neither go out nor replace a newer held one
    stale = await older_than_known(ctx, event)
    if stale is not None:
        return stale
    price = event.payload_as(Price)
    rules = ctx.rules.pricing
    prepared = pricing_rules.prepare_price(price, rules, ctx.now)
    await _remember_price(ctx, price, prepared.next_change_at)
    for note in prepared.notes:
        ctx.report(
            Finding("price_adjusted", note, {"sku": price.sku, "currency": price.currency}),
            entity_key=event.entity_key,
        )
    planned = []
    for route in ctx.routes("products"):
        previous = await _sent_price(ctx, route.to, price)
        decision = pricing_rules.price_guard(previous, prepared.effective, rules)
        held = decision.hold and rules.guard_enabled and not ctx.skip_price_guard
        if not held:
            await accept_price(ctx.session, route.to, price.sku, price.currency, prepared.effective)
        planned.append(
            as_is(
                route,
                event,
                payload=prepared.price.model_dump(mode="json"),
                directives={
                    "effective_price": str(prepared.effective),
                    "previous_price": None if previous is None else str(previous),
                },
                depends_on=f"{price.source}:product:{price.sku}",
                status=DeliveryStatus.HELD if held else DeliveryStatus.PENDING,
                held_reason=decision.reason if held else None,
                supersedes=True,
            )
        )
    return planned


async def _remember_price(ctx: PlanContext, price: Price, next_change: datetime | None) -> None:
    await upsert(
        ctx.session,
        PriceRecord,
        {
            "source": price.source,
            "sku": price.sku,
            "currency": price.currency,
            "price": price.model_dump(mode="json"),
            "next_change_at": next_change,
        },
        key=["source", "sku", "currency"],
        update=["price", "next_change_at"],
    )


async def _sent_price(ctx: PlanContext, destination: str, price: Price) -> Decimal | None:
    return await sent_price(ctx.session, destination, price.sku, price.currency)


async def sent_price(
    session: AsyncSession, destination: str, sku: str, currency: str
) -> Decimal | None:
    """The last price accepted for ``destination`` (sent, or approved): the guard's baseline."""
    value = await session.scalar(
        sa.select(col(SentPrice.effective)).where(
            col(SentPrice.destination) == destination,
            col(SentPrice.sku) == sku,
            col(SentPrice.currency) == currency,
        )
    )
    if value is None:
        return None
    # stored as NUMERIC(18,6): 19.990000 reads back as 19.99 for people
    amount = Decimal(value).normalize()
    return amount.quantize(Decimal("0.01")) if amount.as_tuple().exponent > -2 else amount  # type: ignore[operator]


async def accept_price(
    session: AsyncSession, destination: str, sku: str, currency: str, effective: Decimal
) -> None:
    """The guard's new baseline: a price that went out (or an operator approved)."""
    await upsert(
        session,
        SentPrice,
        {
            "destination": destination,
            "sku": sku,
            "currency": currency,
            "effective": effective,
            "updated_at": utcnow(),
        },
        key=["destination", "sku", "currency"],
        update=["effective", "updated_at"],
    )
