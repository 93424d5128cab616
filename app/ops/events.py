"""Canonical events for operators: the list (with the deliveries planned for each) and one
event with its payload, the raw inbound event it came from and its deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.errors import NotFound
from app.models import CanonicalEventRow, Delivery, InboundEvent
from app.ops.inbound_events import get_inbound_event
from app.ops.pagination import Page, page_of
from app.ops.queries import as_utc, newest_first
from app.ops.schemas import DeliveryOut, DeliveryRef, EventDetail, EventOut

_EVENT_COLUMNS = (
    col(CanonicalEventRow.id),
    col(CanonicalEventRow.source),
    col(CanonicalEventRow.event_type),
    col(CanonicalEventRow.entity_type),
    col(CanonicalEventRow.entity_key),
    col(CanonicalEventRow.schema_version),
    col(CanonicalEventRow.occurred_at),
    col(CanonicalEventRow.created_at),
    col(CanonicalEventRow.currency),
    col(CanonicalEventRow.total_amount),
    col(CanonicalEventRow.inbound_event_id),
    col(InboundEvent.topic),
    col(InboundEvent.dedupe_key),
)


@dataclass(frozen=True)
class EventFilter:
    source: str | None = None
    entity_key: str | None = None
    entity_type: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, stmt: Any) -> Any:
        for column, value in (
            (CanonicalEventRow.source, self.source),
            (CanonicalEventRow.entity_key, self.entity_key),
            (CanonicalEventRow.entity_type, self.entity_type),
            (CanonicalEventRow.event_type, self.event_type),
        ):
            if value is not None:
                stmt = stmt.where(col(column) == value)
        if self.since is not None:
            stmt = stmt.where(col(CanonicalEventRow.created_at) >= as_utc(self.since))
        if self.until is not None:
            stmt = stmt.where(col(CanonicalEventRow.created_at) < as_utc(self.until))
        return stmt


def _event_fields(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    amount = data.get("total_amount")
    data["total_amount"] = None if amount is None else str(amount)
    return data


async def list_events(
    session: AsyncSession, where: EventFilter, cursor: str | None, limit: int
) -> Page[EventOut]:
    stmt = sa.select(*_EVENT_COLUMNS).outerjoin(
        InboundEvent, col(InboundEvent.id) == col(CanonicalEventRow.inbound_event_id)
    )
    stmt = newest_first(where.apply(stmt), col(CanonicalEventRow.id), cursor, limit)
    rows, next_cursor = page_of((await session.execute(stmt)).all(), limit, lambda r: int(r.id))
    refs: dict[int, list[DeliveryRef]] = {int(r.id): [] for r in rows}
    if refs:
        deliveries = await session.execute(
            sa.select(
                col(Delivery.canonical_event_id),
                col(Delivery.id),
                col(Delivery.destination),
                col(Delivery.flow),
                col(Delivery.status),
            )
            .where(col(Delivery.canonical_event_id).in_(list(refs)))
            .order_by(col(Delivery.id))
        )
        for d in deliveries:
            refs[int(d.canonical_event_id)].append(
                DeliveryRef(id=d.id, destination=d.destination, flow=d.flow, status=d.status)
            )
    items = [EventOut(**_event_fields(r), deliveries=refs[int(r.id)]) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


async def get_event(session: AsyncSession, event_id: int) -> EventDetail:
    stmt = (
        sa.select(*_EVENT_COLUMNS, col(CanonicalEventRow.payload), col(CanonicalEventRow.purged_at))
        .outerjoin(InboundEvent, col(InboundEvent.id) == col(CanonicalEventRow.inbound_event_id))
        .where(col(CanonicalEventRow.id) == event_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(f"no event {event_id}")
    inbound = (
        await get_inbound_event(session, int(row.inbound_event_id))
        if row.inbound_event_id is not None
        else None
    )
    deliveries = (
        await session.execute(
            sa.select(Delivery)
            .where(col(Delivery.canonical_event_id) == event_id)
            .order_by(col(Delivery.id))
        )
    ).scalars()
    return EventDetail(
        **_event_fields(row),
        inbound_event=inbound,
        deliveries=[DeliveryOut.model_validate(d) for d in deliveries],
    )
