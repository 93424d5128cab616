"""Orders at delivery time: what the ERP has booked (its units no longer in transit),
variant SKUs mapped through their base SKU, and lines without a SKU through the ``default``
non-SKU item."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.flows.inventory.planning import availability_deliveries
from app.flows.orders.rules import variant_base
from app.flows.plan import Planned, plan_context_for
from app.flows.recorder import record_planned
from app.flows.rules import effective_rules
from app.mappings.service import resolve
from app.models import Delivery, OrderAllocation
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import Order
from kernel.mappings import DEFAULT_LINE_KIND
from kernel.types import MappingNeed


async def book_order(
    session: AsyncSession,
    rt: Runtime,
    delivery: Delivery,
    event: CanonicalEvent,
    answered_at: datetime,
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
                    # when the ERP's answer was in: it has booked the order by then, so a
                    # level it stamps later holds it. Not when the call went out: a level
                    # read between our send and the ERP's commit (the customer lookups and
                    # upsert come first) would be taken to hold an order it does not, and
                    # the store offered those units again (the burst oversell). A level
                    # stamped between the commit and our answer counts the order twice: the
                    # store shows less, never more, until the next level.
                    "booked_at": answered_at,
                }
                for sku, quantity in units.items()
            ],
        )
    skus = sorted({line.sku for line in order.lines if line.sku})
    if not skus:
        return
    ctx = await plan_context_for(session, rt, delivery.destination)
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
    """Resolve unmapped variant SKUs through their base SKU (rules.orders.variant_sku_pattern),
    and unmapped kinds of lines without a SKU (``non_sku_item`` gift_card, tip, …) through the
    ``default`` non-SKU item, so one mapping covers every kind the store may invent.

    Fills ``found`` with what they resolve to and returns what is still missing.
    """
    missing = await _default_line_items(session, destination, found, missing)
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


async def _default_line_items(
    session: AsyncSession,
    destination: str,
    found: dict[str, dict[str, str]],
    missing: list[MappingNeed],
) -> list[MappingNeed]:
    kinds = [m for m in missing if m.kind == "non_sku_item" and m.key != DEFAULT_LINE_KIND]
    if not kinds:
        return missing
    table = found.get("non_sku_item", {})
    default = table.get(DEFAULT_LINE_KIND)
    if default is None:
        by_default, _ = await resolve(
            session, destination, [MappingNeed("non_sku_item", DEFAULT_LINE_KIND)]
        )
        default = by_default.get("non_sku_item", {}).get(DEFAULT_LINE_KIND)
    if default is None:
        return missing
    for need in kinds:
        found.setdefault("non_sku_item", {})[need.key] = default
    return [m for m in missing if m not in kinds]
