"""Guards applied again when an operator replays work: a replay is decided like new work.

The price guard compares each price a delivery carries with the last one accepted for it at
the destination. A replay of an old price (a dead one after an outage, a superseded one) is
compared with today's accepted prices, so a bulk clean-up can never send a cut nobody
approved, whether of the base price, a sale, a tier, a group or a customer price.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.flows.products.baselines import accept_prices, accepted_prices
from app.flows.products.price_checks import (
    GuardedPrice,
    PriceCheck,
    check_prices,
    guarded_directives,
    held_reason,
    prices_from_directives,
)
from app.flows.rules import effective_rules
from app.models import Delivery
from app.runtime import Runtime

PRICE_CHANGED = "price.changed"


def guarded_prices(delivery: Delivery) -> tuple[str, str, list[GuardedPrice]] | None:
    """(sku, currency, the prices it carries) of a price delivery; None for other work."""
    if delivery.event_type != PRICE_CHANGED:
        return None
    payload = delivery.payload or {}
    prices = prices_from_directives(delivery.directives)
    if prices is None or "sku" not in payload or "currency" not in payload:
        return None
    return str(payload["sku"]), str(payload["currency"]), prices


async def _check_again(
    session: AsyncSession, rt: Runtime, delivery: Delivery
) -> list[PriceCheck] | None:
    guarded = guarded_prices(delivery)
    if guarded is None:
        return None
    sku, currency, prices = guarded
    rules = await effective_rules(session, rt.config.rules)
    baselines = await accepted_prices(session, delivery.destination, sku, currency, None)
    return check_prices(prices, baselines, rules.pricing)


async def guard_again(session: AsyncSession, rt: Runtime, delivery: Delivery) -> str | None:
    """Why a replay of ``delivery`` must be held for a person, or None if it may go."""
    checks = await _check_again(session, rt, delivery)
    reason = None if checks is None else held_reason(checks)
    return None if reason is None else f"replayed: {reason}"


async def note_held_again(session: AsyncSession, rt: Runtime, delivery: Delivery) -> None:
    """A replay held by the guard: its prices as checked now, so the approval view shows
    which of them tripped it against today's baselines."""
    checks = await _check_again(session, rt, delivery)
    if checks is None:
        return
    directives = {**(delivery.directives or {}), "guarded_prices": guarded_directives(checks)}
    await session.execute(
        sa.update(Delivery)
        .where(col(Delivery.id) == delivery.id)
        .values(directives=directives)
        .execution_options(synchronize_session=False)
    )


async def accept_guarded(session: AsyncSession, delivery: Delivery) -> list[GuardedPrice]:
    """A price delivery let through (approved, or replayed within the guard): every price it
    carries is the guard's new baseline, like a new one's. Returns them (none: not a price)."""
    guarded = guarded_prices(delivery)
    if guarded is None:
        return []
    sku, currency, prices = guarded
    await accept_prices(session, delivery.destination, sku, currency, prices)
    return prices


async def accept_replayed(session: AsyncSession, delivery: Delivery) -> None:
    await accept_guarded(session, delivery)
