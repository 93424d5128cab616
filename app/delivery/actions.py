"""Operator actions on deliveries: replay, release parked, resume a paused destination."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import id_list
from app.delivery.service import enqueue_after_commit
from app.mappings.service import resolve
from app.models import Delivery, DeliveryStatus, utcnow
from app.runtime import Runtime
from connectors.base import MappingNeed

REPLAYABLE = (
    DeliveryStatus.DEAD,
    DeliveryStatus.PARKED,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.SUPERSEDED,
    DeliveryStatus.HELD,
)

_FRESH: dict[str, Any] = {
    "status": DeliveryStatus.PENDING,
    "attempts": 0,
    "last_error": None,
    "last_error_class": None,
    "parked_reason": None,
    "needs": None,
    "lease_owner": None,
    "lease_expires_at": None,
}


async def replay(session: AsyncSession, rt: Runtime, ids: list[int]) -> list[int]:
    """Send these deliveries again with a fresh attempt budget; returns the ids requeued.

    Safe for delivered ones too: every connector write is idempotent, so a replay updates
    the remote record instead of creating a second one.
    """
    if not ids:
        return []
    now = utcnow()
    result = await session.execute(
        sa.update(Delivery)
        .where(col(Delivery.id).in_(ids), col(Delivery.status).in_(REPLAYABLE))
        .values(**_FRESH, next_attempt_at=now, updated_at=now)
        .returning(col(Delivery.id))
        .execution_options(synchronize_session=False)
    )
    replayed = sorted(id_list(result.scalars()))
    enqueue_after_commit(session, rt, replayed)
    return replayed


async def release_parked(session: AsyncSession, rt: Runtime, connection_id: str) -> list[int]:
    """Requeue parked deliveries to ``connection_id`` whose missing mappings now all exist."""
    parked = (
        await session.execute(
            sa.select(col(Delivery.id), col(Delivery.needs)).where(
                col(Delivery.destination) == connection_id,
                col(Delivery.status) == DeliveryStatus.PARKED,
            )
        )
    ).all()
    ready: list[int] = []
    for delivery_id, needs in parked:
        assert delivery_id is not None
        wanted = [MappingNeed(n["kind"], n["key"]) for n in (needs or [])]
        found, missing = await resolve(session, connection_id, wanted)
        from app.flows.hooks import fill_variant_skus  # flows build on the engine

        missing = await fill_variant_skus(session, rt, connection_id, found, missing)
        if not missing:
            ready.append(delivery_id)
    if ready:
        now = utcnow()
        await session.execute(
            sa.update(Delivery)
            .where(col(Delivery.id).in_(ready), col(Delivery.status) == DeliveryStatus.PARKED)
            .values(**_FRESH, next_attempt_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        enqueue_after_commit(session, rt, ready)
    return ready


async def requeue_pending(session: AsyncSession, rt: Runtime, connection_id: str) -> int:
    """After a resume: queue what waited for the destination (oldest first keeps the order)."""
    ids = list(
        (
            await session.execute(
                sa.select(col(Delivery.id))
                .where(
                    col(Delivery.destination) == connection_id,
                    col(Delivery.status) == DeliveryStatus.PENDING,
                )
                .order_by(col(Delivery.id))
            )
        ).scalars()
    )
    enqueue_after_commit(session, rt, id_list(ids))
    return len(ids)
