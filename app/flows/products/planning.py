"""Planning products and prices: rounding and sale dates, the price guard and its baselines."""

from __future__ import annotations

from datetime import datetime

import structlog

from app.dbutil import upsert
from app.flows.plan import PlanContext, Planned, as_is, older_than_known
from app.flows.products import rules as pricing_rules
from app.flows.products.baselines import accept_prices, accepted_prices
from app.flows.products.price_checks import (
    BASE,
    SALE,
    PriceCheck,
    carried_prices,
    check_prices,
    guarded_directives,
    held_reason,
    sale_key,
)
from app.models import DeliveryStatus, PriceRecord
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
    carried = carried_prices(prepared)
    planned = []
    for route in ctx.routes("products"):
        # each price against its own baseline; a scheduled sale now, not when it starts (the
        # scheduled job plans it again then: approved, it passes; still held, it is held)
        # (the ERP's sale, ended or not: an old effective baseline may be its price)
        baselines = await accepted_prices(
            ctx.session, route.to, price.sku, price.currency, price.sale
        )
        checks = check_prices(carried, baselines, rules)
        reason = held_reason(checks)  # None when the guard is off
        if reason is None:
            await accept_prices(ctx.session, route.to, price.sku, price.currency, carried)
        planned.append(
            as_is(
                route,
                event,
                payload=prepared.price.model_dump(mode="json"),
                directives={
                    "effective_price": str(prepared.effective),
                    "previous_price": _previous_effective(checks, prepared),
                    "guarded_prices": guarded_directives(checks),
                },
                depends_on=f"{price.source}:product:{price.sku}",
                status=DeliveryStatus.PENDING if reason is None else DeliveryStatus.HELD,
                held_reason=reason,
                supersedes=True,
            )
        )
    return planned


def _previous_effective(
    checks: list[PriceCheck], prepared: pricing_rules.PreparedPrice
) -> str | None:
    """The baseline of the price a shopper pays now (the running sale's, else the base's)."""
    running = prepared.price.sale
    kind, key = (SALE, sale_key(running)) if running is not None else (BASE, "")
    for check in checks:
        if check.price.id == (kind, key):
            return None if check.previous is None else str(check.previous)
    return None


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
