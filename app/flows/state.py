"""Reads and writes of the state the flow rules keep, shared by the planners and jobs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.canonical.events import CanonicalEvent
from app.canonical.inventory import InventoryLevel
from app.dbutil import insert_for, rowcount
from app.models import (
    CanonicalEventRow,
    Delivery,
    DeliveryStatus,
    EntityLink,
    Mapping,
    OrderAllocation,
    StockLevel,
)

STOCK_LEVELS: sa.Table = StockLevel.__table__  # type: ignore[attr-defined]
EVENTS: sa.Table = CanonicalEventRow.__table__  # type: ignore[attr-defined]


async def canonical_payloads(
    session: AsyncSession,
    *,
    entity_key: str | None = None,
    entity_type: str | None = None,
    order_key: str | None = None,
    newest: int = 1,
) -> list[dict[str, Any]]:
    """Payloads of stored canonical events, newest first."""
    stmt = sa.select(col(CanonicalEventRow.payload)).order_by(col(CanonicalEventRow.id).desc())
    if entity_key is not None:
        stmt = stmt.where(col(CanonicalEventRow.entity_key) == entity_key)
    if entity_type is not None:
        stmt = stmt.where(col(CanonicalEventRow.entity_type) == entity_type)
    if order_key is not None:
        stmt = stmt.where(EVENTS.c.payload["order_key"].as_string() == order_key)
    rows = await session.execute(stmt.limit(newest))
    return [dict(r) for (r,) in rows]


# Events that carry a whole version of their entity: a newer one makes an older one moot.
VERSIONED = {
    "order.created": ("order.created", "order.updated"),
    "order.updated": ("order.created", "order.updated"),
    "customer.upserted": ("customer.upserted",),
    "product.upserted": ("product.upserted",),
    "price.changed": ("price.changed",),
}


async def newer_version(session: AsyncSession, event: CanonicalEvent) -> datetime | None:
    """The time of a newer recorded version of ``event``'s entity, if one is known."""
    types = VERSIONED.get(event.type)
    if types is None:
        return None
    newest = await session.scalar(
        sa.select(sa.func.max(col(CanonicalEventRow.occurred_at))).where(
            col(CanonicalEventRow.entity_key) == event.entity_key,
            col(CanonicalEventRow.event_type).in_(types),
        )
    )
    if newest is None:
        return None
    newest = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
    return newest if newest > event.occurred_at else None


async def entity_has_link(
    session: AsyncSession, connection_id: str, entity_type: str, our_key: str
) -> str | None:
    """The remote id ``connection_id`` gave this entity, if any."""
    value = await session.scalar(
        sa.select(col(EntityLink.remote_id)).where(
            col(EntityLink.connection_id) == connection_id,
            col(EntityLink.entity_type) == entity_type,
            col(EntityLink.our_key) == our_key,
        )
    )
    return None if value is None else str(value)


async def mapping_table(session: AsyncSession, connection_id: str, kind: str) -> dict[str, str]:
    """Every mapping of one kind for one connection: our key → their key."""
    rows = await session.execute(
        sa.select(col(Mapping.our_key), col(Mapping.their_key)).where(
            col(Mapping.connection_id) == connection_id, col(Mapping.kind) == kind
        )
    )
    return {str(ours): str(theirs) for ours, theirs in rows}


async def stock_levels_for(
    session: AsyncSession, source: str, skus: Iterable[str]
) -> dict[str, list[InventoryLevel]]:
    """The newest known level of each SKU at each location of ``source``."""
    skus = list(skus)
    if not skus:
        return {}
    rows = await session.execute(
        sa.select(col(StockLevel.sku), col(StockLevel.level)).where(
            col(StockLevel.source) == source, col(StockLevel.sku).in_(skus)
        )
    )
    found: dict[str, list[InventoryLevel]] = {}
    for sku, level in rows:
        found.setdefault(str(sku), []).append(InventoryLevel.model_validate(level))
    return found


async def upsert_stock_level(
    session: AsyncSession, level: InventoryLevel, *, force: bool = False
) -> bool:
    """Store ``level`` unless a newer one is known; True when it was stored.

    One statement, so two workers racing with levels of the same item cannot let the older
    one win: the update only applies when the stored level is older.
    """
    sellable = level.on_hand - level.allocated - level.reserved - level.damaged - level.quarantined
    stmt = insert_for(session, StockLevel).values(
        source=level.source,
        sku=level.sku,
        location=level.location,
        level=level.model_dump(mode="json"),
        as_of=level.as_of,
        sellable=sellable,
    )
    # ERPs stamp changes to the second (NetSuite): of two levels with the same time, the
    # one with less to sell wins, so a burst of sales can never leave the higher one
    newer = sa.or_(
        STOCK_LEVELS.c.as_of < stmt.excluded.as_of,
        sa.and_(
            STOCK_LEVELS.c.as_of == stmt.excluded.as_of,
            STOCK_LEVELS.c.sellable > stmt.excluded.sellable,
        ),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["source", "sku", "location"],
        set_={
            "level": stmt.excluded.level,
            "as_of": stmt.excluded.as_of,
            "sellable": stmt.excluded.sellable,
        },
        where=None if force else newer,
    )
    result = await session.execute(stmt)
    return rowcount(result) > 0


async def orders_in_transit(session: AsyncSession, store: str, erp: str) -> dict[str, Decimal]:
    """Units per SKU of ``store``'s orders that are not yet in ``erp`` (not delivered).

    Counts the newest version of each unfinished order (an update replaces the lines of the
    creation). Conservative on purpose: an order the ERP has just committed but whose
    delivery is not marked delivered yet is counted, so the store may briefly show a little
    less, never more.
    """
    rows = await session.execute(
        sa.select(
            col(Delivery.entity_key), col(CanonicalEventRow.payload), col(Delivery.event_type)
        )
        .join(CanonicalEventRow, col(CanonicalEventRow.id) == col(Delivery.canonical_event_id))
        .where(
            col(Delivery.source) == store,
            col(Delivery.destination) == erp,
            col(Delivery.flow) == "orders",
            col(Delivery.status).in_(DeliveryStatus.BLOCKING),
        )
        .order_by(col(Delivery.id))
    )
    newest: dict[str, tuple[dict[str, Any], str]] = {}
    for entity_key, payload, event_type in rows:
        newest[str(entity_key)] = (payload, str(event_type))
    units: dict[str, Decimal] = {}
    for payload, event_type in newest.values():
        if event_type == "order.cancelled":
            continue
        for line in payload.get("lines", []):
            sku = line.get("sku")
            if sku:
                units[sku] = units.get(sku, Decimal(0)) + Decimal(str(line.get("quantity", "0")))
    return units


async def booked_units(
    session: AsyncSession, store: str, erp: str, sku: str, cutoff: datetime
) -> tuple[Decimal, Decimal]:
    """Units of ``sku`` in ``store``'s orders booked by ``erp``: (before cutoff, after it).

    An order booked before the cutoff (the ERP level's time) is in that level; one booked
    later may not be yet.
    """
    before = sa.func.sum(
        sa.case((col(OrderAllocation.booked_at) <= cutoff, col(OrderAllocation.quantity)), else_=0)
    )
    after = sa.func.sum(
        sa.case((col(OrderAllocation.booked_at) > cutoff, col(OrderAllocation.quantity)), else_=0)
    )
    row = (
        await session.execute(
            sa.select(before, after).where(
                col(OrderAllocation.store) == store,
                col(OrderAllocation.erp) == erp,
                col(OrderAllocation.sku) == sku,
            )
        )
    ).one()
    return Decimal(row[0] or 0), Decimal(row[1] or 0)
