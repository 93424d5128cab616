"""Reads and writes of the state the flow rules keep, shared by the planners and jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import (
    CanonicalEventRow,
    EntityLink,
    Mapping,
)
from kernel.canonical.events import CanonicalEvent

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


_NEWEST_VERSION = sa.select(sa.func.max(col(CanonicalEventRow.occurred_at))).where(
    col(CanonicalEventRow.entity_key) == sa.bindparam("key"),
    col(CanonicalEventRow.event_type).in_(sa.bindparam("types", expanding=True)),
)  # built once: it runs for every versioned event

# entity key → event type → newest occurred_at recorded, for the keys read in this transaction
Versions = dict[str, dict[str, datetime]]
_VERSIONS = "known_versions"
_PREVIOUS = "previous_payloads"


def remember_versions(session: AsyncSession, versions: Versions) -> None:
    """What a read of this transaction found of these entities' versions (the webhook's
    dedupe read has them): ``newer_version`` then answers from it instead of asking again.
    Kept for the current transaction only; the events it records are added as they are."""
    known = {key: {t: _aware(at) for t, at in kinds.items()} for key, kinds in versions.items()}
    session.info[_VERSIONS] = (session.sync_session.get_transaction(), known)


def remember_previous(session: AsyncSession, payloads: dict[str, dict[str, Any] | None]) -> None:
    """Each entity's newest recorded payload (None: none recorded), read before its event
    is inserted (the one-statement webhook path): ``previous_payloads`` answers from it."""
    session.info[_PREVIOUS] = (session.sync_session.get_transaction(), payloads)


async def previous_payloads(session: AsyncSession, event: CanonicalEvent) -> list[dict[str, Any]]:
    """The payloads recorded before ``event`` of its entity, newest first (at most one)."""
    cached = session.info.get(_PREVIOUS)
    if cached is not None and cached[0] is session.sync_session.get_transaction():
        remembered: dict[str, dict[str, Any] | None] = cached[1]
        if event.entity_key in remembered:
            payload = remembered[event.entity_key]
            return [] if payload is None else [payload]
    # the newest is this event itself (inserted before it is planned)
    return (await canonical_payloads(session, entity_key=event.entity_key, newest=2))[1:]


def note_version(session: AsyncSession, event: CanonicalEvent) -> None:
    """An event recorded in this transaction: a version ``newer_version`` must count."""
    known = _known_versions(session)
    if known is not None and event.entity_key in known:
        kinds = known[event.entity_key]
        stamp = _aware(event.occurred_at)
        kinds[event.type] = max(kinds.get(event.type, stamp), stamp)


def _known_versions(session: AsyncSession) -> Versions | None:
    cached = session.info.get(_VERSIONS)
    if cached is None or cached[0] is not session.sync_session.get_transaction():
        return None
    known: Versions = cached[1]
    return known


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def newer_version(session: AsyncSession, event: CanonicalEvent) -> datetime | None:
    """The time of a newer recorded version of ``event``'s entity, if one is known."""
    types = VERSIONED.get(event.type)
    if types is None:
        return None
    known = _known_versions(session)
    if known is not None and event.entity_key in known:
        stamps = [known[event.entity_key][t] for t in types if t in known[event.entity_key]]
        newest = max(stamps, default=None)
    else:
        newest = await session.scalar(
            _NEWEST_VERSION, {"key": event.entity_key, "types": list(types)}
        )
    if newest is None:
        return None
    newest = _aware(newest)
    return newest if newest > _aware(event.occurred_at) else None


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
