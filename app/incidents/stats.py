"""The facts the detectors judge, read from the database with a few cheap queries.

Event counts go through ``ix_canonical_volume`` (source, event_type, created_at): one
statement per flow and source counts every window at once, each a range of that index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.incidents.detectors import Window
from app.models import CanonicalEventRow, ConnectionState, Delivery, DeliveryStatus, PollCursor
from kernel.canonical.events import EVENT_TYPES

EVENTS: sa.Table = CanonicalEventRow.__table__  # type: ignore[attr-defined]
DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]
STATES: sa.Table = ConnectionState.__table__  # type: ignore[attr-defined]
CURSORS: sa.Table = PollCursor.__table__  # type: ignore[attr-defined]

# which events to count: all, those a webhook brought (they have an inbound event), or those
# a poll read (they have none)
Via = Literal["any", "webhook", "poll"]


def event_types(flow: str) -> list[str]:
    return sorted(t for t, kind in EVENT_TYPES.items() if kind.flow == flow)


def _of_flow(source: str, flow: str) -> Any:
    return sa.and_(EVENTS.c.source == source, EVENTS.c.event_type.in_(event_types(flow)))


async def count_events(
    session: AsyncSession, source: str, flow: str, windows: list[tuple[Window, Via]]
) -> list[int]:
    """Events of ``flow`` from ``source`` in each window, in one statement."""
    if not windows:
        return []
    created = EVENTS.c.created_at
    columns = []
    for window, via in windows:
        condition = sa.and_(created >= window.start, created < window.end)
        if via == "webhook":
            condition = sa.and_(condition, EVENTS.c.inbound_event_id.is_not(None))
        elif via == "poll":
            condition = sa.and_(condition, EVENTS.c.inbound_event_id.is_(None))
        columns.append(sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0))
    in_any = sa.or_(*(sa.and_(created >= w.start, created < w.end) for w, _ in windows))
    row = (await session.execute(sa.select(*columns).where(_of_flow(source, flow), in_any))).one()
    return [int(n) for n in row]


async def first_event_at(session: AsyncSession, source: str, flow: str) -> datetime | None:
    """When ``source`` first sent an event of ``flow``: one index lookup per event type."""
    firsts = []
    for event_type in event_types(flow):
        first = await session.scalar(
            sa.select(EVENTS.c.created_at)
            .where(EVENTS.c.source == source, EVENTS.c.event_type == event_type)
            .order_by(EVENTS.c.created_at)
            .limit(1)
        )
        if first is not None:
            firsts.append(first)
    return min(firsts) if firsts else None


async def sent_webhooks(session: AsyncSession, source: str, flow: str) -> bool:
    """Whether ``source`` ever sent ``flow`` by webhook (its events have an inbound event)."""
    found = await session.scalar(
        sa.select(EVENTS.c.id)
        .where(_of_flow(source, flow), EVENTS.c.inbound_event_id.is_not(None))
        .limit(1)
    )
    return found is not None


@dataclass(frozen=True)
class ConnectionFacts:
    breaker_state: str | None
    breaker_changed_at: datetime | None
    paused: bool


async def connection_facts(session: AsyncSession) -> dict[str, ConnectionFacts]:
    rows = await session.execute(
        sa.select(
            STATES.c.connection_id,
            STATES.c.breaker_state,
            STATES.c.breaker_changed_at,
            STATES.c.paused,
        )
    )
    return {
        str(cid): ConnectionFacts(state, changed, bool(paused))
        for cid, state, changed, paused in rows
    }


@dataclass(frozen=True)
class PollFacts:
    last_error: str | None
    last_events_at: datetime | None


async def poll_facts(session: AsyncSession) -> dict[tuple[str, str], PollFacts]:
    rows = await session.execute(
        sa.select(
            CURSORS.c.connection_id,
            CURSORS.c.stream,
            CURSORS.c.last_error,
            CURSORS.c.last_events_at,
        )
    )
    return {(str(c), str(s)): PollFacts(error, at) for c, s, error, at in rows}


async def new_dead_letters(session: AsyncSession, since: datetime) -> dict[tuple[str, str], int]:
    """Deliveries that died since ``since``, by destination and flow (dead rows are few:
    each waits for a person)."""
    rows = await session.execute(
        sa.select(DELIVERIES.c.destination, DELIVERIES.c.flow, sa.func.count())
        .where(DELIVERIES.c.status == DeliveryStatus.DEAD, DELIVERIES.c.updated_at >= since)
        .group_by(DELIVERIES.c.destination, DELIVERIES.c.flow)
    )
    return {(str(d), str(f)): int(n) for d, f, n in rows}


async def oldest_pending(session: AsyncSession) -> dict[tuple[str, str], datetime]:
    """When the oldest pending delivery was created, by destination and flow."""
    rows = await session.execute(
        sa.select(DELIVERIES.c.destination, DELIVERIES.c.flow, sa.func.min(DELIVERIES.c.created_at))
        .where(DELIVERIES.c.status == DeliveryStatus.PENDING)
        .group_by(DELIVERIES.c.destination, DELIVERIES.c.flow)
    )
    return {(str(d), str(f)): oldest for d, f, oldest in rows if oldest is not None}
