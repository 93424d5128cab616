"""The inventory flow's state: the newest level per (source, SKU, location), and the units of
store orders the ERP has (or has not yet) booked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import constants, rowcount, upsert, upsert_many
from app.models import (
    CanonicalEventRow,
    Delivery,
    DeliveryStatus,
    OrderAllocation,
    StockLevel,
)
from kernel.canonical.inventory import InventoryLevel
from kernel.mappings import order_location_keys

STOCK_LEVELS: sa.Table = StockLevel.__table__  # type: ignore[attr-defined]
# SKUs per query: a statement takes at most 32,767 bound values on PostgreSQL (asyncpg) and
# 32,766 on SQLite, and a reconciliation asks for every SKU of an ERP
SKUS_PER_QUERY = 5_000


async def stock_levels_for(
    session: AsyncSession, source: str, skus: Iterable[str]
) -> dict[str, list[InventoryLevel]]:
    """The newest known level of each SKU at each location of ``source``."""
    wanted = list(dict.fromkeys(skus))
    found: dict[str, list[InventoryLevel]] = {}
    for start in range(0, len(wanted), SKUS_PER_QUERY):
        rows = await session.execute(
            sa.select(col(StockLevel.sku), col(StockLevel.level)).where(
                col(StockLevel.source) == source,
                col(StockLevel.sku).in_(wanted[start : start + SKUS_PER_QUERY]),
            )
        )
        for sku, level in rows:
            found.setdefault(str(sku), []).append(InventoryLevel.model_validate(level))
    return found


def _sellable(level: InventoryLevel) -> Decimal:
    """On hand less everything not for sale: decides between two levels of the same time."""
    return level.on_hand - level.allocated - level.reserved - level.damaged - level.quarantined


def _newer(proposed: Any) -> Any:
    """The stored level is older than ``proposed`` (the row an upsert proposes).

    ERPs stamp changes to the second (NetSuite): of two levels with the same time, the one
    with less to sell wins, so a burst of sales can never leave the higher one.
    """
    return sa.or_(
        STOCK_LEVELS.c.as_of < proposed.as_of,
        sa.and_(
            STOCK_LEVELS.c.as_of == proposed.as_of,
            STOCK_LEVELS.c.sellable > proposed.sellable,
        ),
    )


def _row(level: InventoryLevel, sellable: Decimal) -> dict[str, Any]:
    return {
        "source": level.source,
        "sku": level.sku,
        "location": level.location,
        "level": level.model_dump(mode="json"),
        "as_of": level.as_of,
        "sellable": sellable,
    }


_KEY = ["source", "sku", "location"]
_UPDATED = ["level", "as_of", "sellable"]


async def upsert_stock_level(
    session: AsyncSession, level: InventoryLevel, *, force: bool = False
) -> bool:
    """Store ``level`` unless a newer one is known; True when it was stored.

    One statement, so two workers racing with levels of the same item cannot let the older
    one win: the update only applies when the stored level is older.
    """
    result = await upsert(
        session,
        StockLevel,
        _row(level, _sellable(level)),
        key=_KEY,
        update=_UPDATED,
        where=None if force else _newer,
    )
    return rowcount(result) > 0


async def upsert_stock_levels(session: AsyncSession, levels: Iterable[InventoryLevel]) -> None:
    """Store many levels, each as ``upsert_stock_level`` stores one (unless a newer one is
    known), without a round trip per level. They are applied in order, so the same item
    twice ends as if they had been stored one after the other: the newer wins."""
    rows = [_row(level, _sellable(level)) for level in levels]
    await upsert_many(session, STOCK_LEVELS, rows, key=_KEY, update=_UPDATED, where=_newer)


@dataclass(frozen=True)
class OrderUnits:
    """One store order as the stock rules see it: units per SKU, the keys naming the
    location it ships from (``kernel.mappings.order_location_keys``) and, once the ERP has
    booked it, when it was sent."""

    location_keys: list[str]
    units: dict[str, Decimal]
    booked_at: datetime | None = None


ORDER_VERSIONS = ("order.created", "order.updated")


def _location_keys(payload: dict[str, Any]) -> list[str]:
    return order_location_keys(payload.get("tags") or [], str(payload.get("source") or ""))


async def orders_in_transit(session: AsyncSession, store: str, erp: str) -> list[OrderUnits]:
    """``store``'s orders that are not yet in ``erp`` (not delivered).

    Counts the newest version of each unfinished order (an update replaces the lines of the
    creation). Conservative on purpose: an order the ERP has just committed but whose
    delivery is not marked delivered yet is counted, so the store may briefly show a little
    less, never more.
    """
    # each payload read by its id (a subquery per row), never joined: with an outage's
    # backlog blocking (10,000 orders) Postgres hashed the whole event table for the join, a
    # read that grows with the years of history rather than with the backlog
    payload_by_id = (
        sa.select(col(CanonicalEventRow.payload))
        .where(col(CanonicalEventRow.id) == col(Delivery.canonical_event_id))
        .scalar_subquery()
    )
    rows = await session.execute(
        sa.select(col(Delivery.entity_key), payload_by_id, col(Delivery.event_type))
        .where(
            col(Delivery.source) == store,
            col(Delivery.destination) == erp,
            col(Delivery.flow) == "orders",
            col(Delivery.status).in_(constants(DeliveryStatus.BLOCKING)),
        )
        .order_by(col(Delivery.id))
    )
    newest: dict[str, tuple[dict[str, Any], str]] = {}
    for entity_key, payload, event_type in rows:
        newest[str(entity_key)] = (payload, str(event_type))
    orders: list[OrderUnits] = []
    for payload, event_type in newest.values():
        if event_type == "order.cancelled":
            continue
        units: dict[str, Decimal] = {}
        for line in payload.get("lines", []):
            sku = line.get("sku")
            if sku:
                units[sku] = units.get(sku, Decimal(0)) + Decimal(str(line.get("quantity", "0")))
        if units:
            orders.append(OrderUnits(_location_keys(payload), units))
    return orders


async def booked_units(
    session: AsyncSession, store: str, erp: str, sku: str, since: datetime
) -> tuple[Decimal, list[OrderUnits]]:
    """``store``'s orders of ``sku`` booked by ``erp``: the units booked up to ``since``, and
    each order booked after it (with its location keys, for the caller to decide whether
    the ERP level of that location includes it yet).
    """
    before = sa.func.sum(
        sa.case((col(OrderAllocation.booked_at) <= since, col(OrderAllocation.quantity)), else_=0)
    )
    mine = (
        col(OrderAllocation.store) == store,
        col(OrderAllocation.erp) == erp,
        col(OrderAllocation.sku) == sku,
    )
    in_level = Decimal(await session.scalar(sa.select(before).where(*mine)) or 0)
    recent = (
        await session.execute(
            sa.select(
                col(OrderAllocation.order_key),
                col(OrderAllocation.quantity),
                col(OrderAllocation.booked_at),
            ).where(*mine, col(OrderAllocation.booked_at) > since)
        )
    ).all()
    if not recent:
        return in_level, []
    # the location the order was booked at: its newest version says (tags, source)
    payloads = await session.execute(
        sa.select(col(CanonicalEventRow.entity_key), col(CanonicalEventRow.payload))
        .where(
            col(CanonicalEventRow.entity_key).in_({str(key) for key, _, _ in recent}),
            col(CanonicalEventRow.event_type).in_(ORDER_VERSIONS),
        )
        .order_by(col(CanonicalEventRow.id))
    )
    keys = {str(key): _location_keys(payload) for key, payload in payloads}
    return in_level, [
        OrderUnits(keys.get(str(key), []), {sku: Decimal(quantity)}, booked_at)
        for key, quantity, booked_at in recent
    ]
