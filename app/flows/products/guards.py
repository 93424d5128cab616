"""Guards applied again when an operator replays work: a replay is decided like new work.

The price guard compares a price with the last one accepted for the destination. A replay of
an old price (a dead one after an outage, a superseded one) is compared with today's accepted
price, so a bulk clean-up can never send a cut nobody approved.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sqlalchemy.ext.asyncio import AsyncSession

from app.flows.products.planning import accept_price, sent_price
from app.flows.products.rules import price_guard
from app.flows.rules import effective_rules
from app.models import Delivery
from app.runtime import Runtime

PRICE_CHANGED = "price.changed"


def _guarded_price(delivery: Delivery) -> tuple[str, str, Decimal] | None:
    if delivery.event_type != PRICE_CHANGED:
        return None
    payload = delivery.payload or {}
    try:
        return (
            str(payload["sku"]),
            str(payload["currency"]),
            Decimal(str((delivery.directives or {})["effective_price"])),
        )
    except (KeyError, InvalidOperation):
        return None


async def guard_again(session: AsyncSession, rt: Runtime, delivery: Delivery) -> str | None:
    """Why a replay of ``delivery`` must be held for a person, or None if it may go."""
    guarded = _guarded_price(delivery)
    if guarded is None:
        return None
    sku, currency, price = guarded
    rules = await effective_rules(session, rt.config.rules)
    previous = await sent_price(session, delivery.destination, sku, currency)
    decision = price_guard(previous, price, rules.pricing)
    if decision.hold and rules.pricing.guard_enabled:
        return f"replayed: {decision.reason}"
    return None


async def accept_replayed(session: AsyncSession, delivery: Delivery) -> None:
    """A replayed price that passed the guard is the guard's new baseline, like a new one."""
    guarded = _guarded_price(delivery)
    if guarded is not None:
        await accept_price(session, delivery.destination, *guarded)
