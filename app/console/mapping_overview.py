"""The console's mappings page: which tables exist (kind, connection, entries) and which
mappings parked deliveries wait for, so an operator sees what to add first."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import Delivery, DeliveryStatus, Mapping

PARKED_SCAN = 5000  # parked deliveries read for the list of missing mappings


@dataclass(frozen=True)
class Table:
    kind: str
    connection_id: str
    entries: int


@dataclass(frozen=True)
class Need:
    kind: str
    key: str
    connection_id: str
    waiting: int  # parked deliveries that need it


async def tables(session: AsyncSession) -> list[Table]:
    rows = await session.execute(
        sa.select(col(Mapping.kind), col(Mapping.connection_id), sa.func.count())
        .group_by(col(Mapping.kind), col(Mapping.connection_id))
        .order_by(col(Mapping.kind), col(Mapping.connection_id))
    )
    return [Table(str(kind), str(conn), int(n)) for kind, conn, n in rows]


async def parked_needs(session: AsyncSession) -> list[Need]:
    """Missing mappings named by parked deliveries, most waited-for first."""
    rows = await session.execute(
        sa.select(col(Delivery.destination), col(Delivery.needs))
        .where(col(Delivery.status) == DeliveryStatus.PARKED)
        .order_by(col(Delivery.id))
        .limit(PARKED_SCAN)
    )
    counts: Counter[tuple[str, str, str]] = Counter()
    for destination, needs in rows:
        for need in needs or []:
            if isinstance(need, dict) and "kind" in need and "key" in need:
                counts[(str(need["kind"]), str(need["key"]), str(destination))] += 1
    return [Need(k, key, conn, n) for (k, key, conn), n in counts.most_common()]
