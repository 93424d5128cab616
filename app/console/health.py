"""What the console's front page adds to the connections' health: the age of the oldest
pending delivery to each connection, and the events each connection sent in the last hour
against the same hour a week before (a flow that went quiet shows up as 0 against 40)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import Delivery, DeliveryStatus, InboundEvent, utcnow

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Volume:
    last_hour: int
    week_before: int  # the same hour, seven days earlier


async def oldest_pending(session: AsyncSession, ids: Sequence[str]) -> dict[str, datetime]:
    """When the oldest delivery still pending to each connection was created."""
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(col(Delivery.destination), sa.func.min(col(Delivery.created_at)))
        .where(col(Delivery.status) == DeliveryStatus.PENDING, col(Delivery.destination).in_(ids))
        .group_by(col(Delivery.destination))
    )
    return {str(destination): oldest for destination, oldest in rows if oldest is not None}


async def _received(session: AsyncSession, start: datetime, end: datetime) -> dict[str, int]:
    rows = await session.execute(
        sa.select(col(InboundEvent.connection_id), sa.func.count())
        .where(col(InboundEvent.received_at) >= start, col(InboundEvent.received_at) < end)
        .group_by(col(InboundEvent.connection_id))
    )
    return {str(connection): int(n) for connection, n in rows}


async def volumes(session: AsyncSession, ids: Sequence[str]) -> dict[str, Volume]:
    """Inbound events (webhooks and polled records) per connection: last hour vs a week ago."""
    now = utcnow()
    recent = await _received(session, now - HOUR, now)
    before = await _received(session, now - WEEK - HOUR, now - WEEK)
    return {i: Volume(recent.get(i, 0), before.get(i, 0)) for i in ids}
