"""One batch of each kind the retention job purges, in the caller's (short) transaction.

Each batch reads the next ``size`` rows after ``after`` in id order through an index (the
partial ``purged_at IS NULL`` index for the rows that are blanked, the primary key for the
rows that are deleted, so rows already handled are not read again), purges those older than
the horizon that nothing needs any more, and says where it got to. A walk ends at the first
batch that reaches rows inside the horizon (ids grow with time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.dbutil import rowcount
from app.models import (
    CanonicalEventRow,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    ErasureRecord,
    InboundEvent,
    utcnow,
)
from app.models import Finding as FindingRow

INBOUND: sa.Table = InboundEvent.__table__  # type: ignore[attr-defined]
EVENTS: sa.Table = CanonicalEventRow.__table__  # type: ignore[attr-defined]
DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]
ATTEMPTS: sa.Table = DeliveryAttempt.__table__  # type: ignore[attr-defined]
FINDINGS: sa.Table = FindingRow.__table__  # type: ignore[attr-defined]
ERASURES: sa.Table = ErasureRecord.__table__  # type: ignore[attr-defined]

QUARANTINED = "quarantined"  # app.ingest.quarantine.QUARANTINED: kept for a replay
ERASURE_DONE = "done"


@dataclass(frozen=True)
class Batch:
    scanned_to: int  # the last id read: the next batch starts after it
    purged: int  # rows blanked or deleted
    done: bool  # the walk reached rows inside the horizon (or the end of the table)


PurgeBatch = Callable[[AsyncSession, datetime, int, int], Awaitable[Batch]]


def _walked(times: Sequence[datetime], horizon: datetime, size: int) -> bool:
    """Whether the walk is over: the table ended, or this batch reached the horizon."""
    return len(times) < size or any(at >= horizon for at in times)


async def inbound_bodies(session: AsyncSession, horizon: datetime, after: int, size: int) -> Batch:
    """Blank old raw bodies and headers; keys, body hash, status and note stay."""
    rows = (
        await session.execute(
            sa.select(INBOUND.c.id, INBOUND.c.received_at, INBOUND.c.status)
            .where(INBOUND.c.purged_at.is_(None), INBOUND.c.id > after)
            .order_by(INBOUND.c.id)
            .limit(size)
        )
    ).all()
    if not rows:
        return Batch(after, 0, True)
    ids = [r.id for r in rows if r.received_at < horizon and r.status != QUARANTINED]
    purged = 0
    if ids:
        result = await session.execute(
            sa.update(INBOUND)
            .where(
                INBOUND.c.id.in_(ids),
                INBOUND.c.purged_at.is_(None),
                INBOUND.c.status != QUARANTINED,  # checked again: a row changed meanwhile
            )
            .values(body=b"", headers={}, purged_at=utcnow())
        )
        purged = rowcount(result)
    return Batch(int(rows[-1].id), purged, _walked([r.received_at for r in rows], horizon, size))


async def payloads(session: AsyncSession, horizon: datetime, after: int, size: int) -> Batch:
    """Empty old canonical payloads and their deliveries' payloads, unless still needed."""
    rows = (
        await session.execute(
            sa.select(EVENTS.c.id, EVENTS.c.created_at)
            .where(EVENTS.c.purged_at.is_(None), EVENTS.c.id > after)
            .order_by(EVENTS.c.id)
            .limit(size)
        )
    ).all()
    if not rows:
        return Batch(after, 0, True)
    old = {int(r.id) for r in rows if r.created_at < horizon}
    ids = old - await _still_needed(session, old) if old else set()
    purged = 0
    if ids:
        await session.execute(
            sa.update(DELIVERIES)
            .where(
                DELIVERIES.c.canonical_event_id.in_(ids),
                sa.or_(DELIVERIES.c.payload.is_not(None), DELIVERIES.c.lookup.is_not(None)),
            )
            # SQL NULL, not JSON null; the look-up keys go with the payload they came from
            .values(payload=sa.null(), lookup=sa.null())
        )
        result = await session.execute(
            sa.update(EVENTS)
            .where(EVENTS.c.id.in_(ids), EVENTS.c.purged_at.is_(None))
            .values(payload={}, purged_at=utcnow())
        )
        purged = rowcount(result)
    return Batch(int(rows[-1].id), purged, _walked([r.created_at for r in rows], horizon, size))


async def _still_needed(session: AsyncSession, ids: set[int]) -> set[int]:
    """Of these events: the newest of their entity and type (dedupe, amendments and the
    planners read it), those of an erase request not yet done, and those with a delivery
    that is not final or that someone is changing right now (replay, claim)."""
    newer = EVENTS.alias("newer")
    newest = await session.execute(
        sa.select(EVENTS.c.id).where(
            EVENTS.c.id.in_(ids),
            ~sa.exists().where(
                newer.c.entity_key == EVENTS.c.entity_key,
                newer.c.event_type == EVENTS.c.event_type,
                newer.c.id > EVENTS.c.id,
            ),
        )
    )
    erasing = await session.execute(
        sa.select(ERASURES.c.canonical_event_id).where(
            ERASURES.c.canonical_event_id.in_(ids), ERASURES.c.status != ERASURE_DONE
        )
    )
    keep = {int(i) for (i,) in newest} | {int(i) for (i,) in erasing}
    if not ids - keep:
        return keep
    deliveries = sa.select(DELIVERIES.c.id, DELIVERIES.c.canonical_event_id).where(
        DELIVERIES.c.canonical_event_id.in_(ids - keep)
    )
    every = (await session.execute(deliveries)).all()
    # Locked so a replay cannot make one pending before this batch commits; one locked by
    # someone else is skipped, and its event kept until a later run.
    locked = (
        await session.execute(
            deliveries.add_columns(DELIVERIES.c.status).with_for_update(skip_locked=True)
        )
    ).all()
    mine = {int(d.id) for d in locked}
    keep |= {int(d.canonical_event_id) for d in every if int(d.id) not in mine}
    keep |= {int(d.canonical_event_id) for d in locked if d.status in DeliveryStatus.BLOCKING}
    return keep


async def attempt_logs(session: AsyncSession, horizon: datetime, after: int, size: int) -> Batch:
    """Delete old attempts of final deliveries (a live delivery keeps its history)."""
    rows = (
        await session.execute(
            sa.select(ATTEMPTS.c.id, ATTEMPTS.c.started_at, DELIVERIES.c.status)
            .join(DELIVERIES, DELIVERIES.c.id == ATTEMPTS.c.delivery_id)
            .where(ATTEMPTS.c.id > after)
            .order_by(ATTEMPTS.c.id)
            .limit(size)
        )
    ).all()
    if not rows:
        return Batch(after, 0, True)
    ids = [r.id for r in rows if r.started_at < horizon and r.status not in DeliveryStatus.BLOCKING]
    if ids:
        await session.execute(sa.delete(ATTEMPTS).where(ATTEMPTS.c.id.in_(ids)))
    return Batch(int(rows[-1].id), len(ids), _walked([r.started_at for r in rows], horizon, size))


async def findings(session: AsyncSession, horizon: datetime, after: int, size: int) -> Batch:
    """Delete old findings."""
    rows = (
        await session.execute(
            sa.select(FINDINGS.c.id, FINDINGS.c.created_at)
            .where(FINDINGS.c.id > after)
            .order_by(FINDINGS.c.id)
            .limit(size)
        )
    ).all()
    if not rows:
        return Batch(after, 0, True)
    ids = [r.id for r in rows if r.created_at < horizon]
    if ids:
        await session.execute(sa.delete(FINDINGS).where(FINDINGS.c.id.in_(ids)))
    return Batch(int(rows[-1].id), len(ids), _walked([r.created_at for r in rows], horizon, size))
