"""The trace of one business entity across systems: what arrived, what it became, where it
went and the ids it has in other systems (its customer's too)."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.errors import NotFound
from app.models import CanonicalEventRow, Delivery, EntityLink, InboundEvent
from app.ops.schemas import TraceDelivery, TraceEvent, TraceInbound, TraceLink, TraceOut
from kernel.canonical.events import CanonicalEvent

TRACE_EVENT_LIMIT = 1000


def entity_key_of(source: str, entity_type: str, external_id: str) -> str:
    """The canonical entity key, as connectors build it (e.g. shop:order:1001)."""
    return f"{source}:{entity_type}:{external_id}"


def _related_keys(event: CanonicalEventRow) -> list[str]:
    """Keys linked to this event's entity (an order's customer, a shipment's order, …)."""
    try:
        return CanonicalEvent.model_validate(
            {
                "type": event.event_type,
                "entity_key": event.entity_key,
                "occurred_at": event.occurred_at,
                "payload": event.payload,
            }
        ).related_keys()
    except ValidationError:  # an older schema: the entity itself is still traced
        return []


async def trace_entity(session: AsyncSession, entity_key: str) -> TraceOut:
    """Follow one business entity: what arrived, what it became, where it went, its ids."""
    newest = (
        (
            await session.execute(
                sa.select(CanonicalEventRow)
                .where(col(CanonicalEventRow.entity_key) == entity_key)
                .order_by(col(CanonicalEventRow.id).desc())
                .limit(TRACE_EVENT_LIMIT + 1)
            )
        )
        .scalars()
        .all()
    )
    truncated = len(newest) > TRACE_EVENT_LIMIT
    events = list(reversed(newest[:TRACE_EVENT_LIMIT]))
    event_ids = [int(e.id or 0) for e in events]

    link_keys = {entity_key}
    for event in events:  # an update may have moved the order to another customer
        link_keys.update(_related_keys(event))
    links = (
        (
            await session.execute(
                sa.select(EntityLink)
                .where(col(EntityLink.our_key).in_(sorted(link_keys)))
                .order_by(col(EntityLink.connection_id), col(EntityLink.entity_type))
            )
        )
        .scalars()
        .all()
    )
    if not events and not links:
        raise NotFound(
            f"nothing is known about {entity_key!r}",
            hint="entity keys look like <source connection>:<entity type>:<external id>, "
            "e.g. shop:order:1001",
        )

    inbound_ids = sorted({int(e.inbound_event_id) for e in events if e.inbound_event_id})
    inbound = (
        (
            await session.execute(
                sa.select(
                    col(InboundEvent.id),
                    col(InboundEvent.connection_id),
                    col(InboundEvent.topic),
                    col(InboundEvent.received_at),
                    col(InboundEvent.dedupe_key),
                )
                .where(col(InboundEvent.id).in_(inbound_ids))
                .order_by(col(InboundEvent.id))
            )
        ).all()
        if inbound_ids
        else []
    )
    by_event: dict[int, list[TraceDelivery]] = {i: [] for i in event_ids}
    if event_ids:
        deliveries = (
            await session.execute(
                sa.select(Delivery)
                .where(col(Delivery.canonical_event_id).in_(event_ids))
                .order_by(col(Delivery.id))
            )
        ).scalars()
        for d in deliveries:
            by_event[d.canonical_event_id].append(
                TraceDelivery(
                    id=int(d.id or 0),
                    destination=d.destination,
                    flow=d.flow,
                    status=d.status,
                    attempts=d.attempts,
                    last_error=d.last_error,
                    created_at=d.created_at,
                    delivered_at=d.delivered_at,
                )
            )
    return TraceOut(
        entity_key=entity_key,
        inbound_events=[TraceInbound(**r._mapping) for r in inbound],
        events=[
            TraceEvent(
                id=int(e.id or 0),
                type=e.event_type,
                source=e.source,
                occurred_at=e.occurred_at,
                created_at=e.created_at,
                inbound_event_id=e.inbound_event_id,
                deliveries=by_event[int(e.id or 0)],
            )
            for e in events
        ],
        remote_ids=[
            TraceLink(
                connection_id=link.connection_id,
                entity_type=link.entity_type,
                our_key=link.our_key,
                remote_id=link.remote_id,
                updated_at=link.updated_at,
            )
            for link in links
        ],
        truncated=truncated,
    )
