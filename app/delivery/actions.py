"""Operator actions on deliveries: replay, release parked, resume a paused destination."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import id_list, rowcount
from app.delivery.outbox import enqueue_after_commit
from app.mappings.service import resolve
from app.models import Delivery, DeliveryStatus, utcnow
from app.retention.guards import purged_events
from app.runtime import Runtime
from kernel.types import MappingNeed

# Held deliveries are not replayed: they wait for a decision (POST /approvals/{id}/approve).
# Rejected ones are final unless an operator re-opens them, which holds them again.
REPLAYABLE = (
    DeliveryStatus.DEAD,
    DeliveryStatus.PARKED,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.SUPERSEDED,
)

_FRESH: dict[str, Any] = {
    "status": DeliveryStatus.PENDING,
    # a new run: backoff starts over; ``attempts`` keeps counting, so the new attempts are
    # numbered after the old ones (whose rows retention may have deleted)
    "run_attempts": 0,
    "failing_since": None,
    "last_error": None,
    "last_error_class": None,
    "parked_reason": None,
    # ``needs`` stay: the next claim hands the connector what was added for them
    "lease_owner": None,
    "lease_expires_at": None,
}
REOPENED = "re-opened by an operator after a rejection; approve or reject it again"


@dataclass(frozen=True)
class ReplayStep:
    """What a replay does to one delivery: send it again (pending) or hold it for a person."""

    id: int
    event_type: str
    entity_key: str
    destination: str
    status: str  # before the replay
    becomes: str  # pending | held
    reason: str | None = None


async def plan_replay(
    session: AsyncSession, rt: Runtime, rows: Sequence[Delivery]
) -> list[ReplayStep]:
    """Decide each replay like new work: guarded changes pass their guard again; one whose
    payload retention purged is left out."""
    from app.flows.products.guards import guard_again  # the flows' rules build on the engine

    purged = await purged_events(session, (r.canonical_event_id for r in rows))
    steps = []
    for row in rows:
        if row.canonical_event_id in purged:
            continue  # nothing left to send (retention); never a step
        reason: str | None
        if row.status == DeliveryStatus.REJECTED:
            becomes, reason = DeliveryStatus.HELD, REOPENED
        else:
            reason = await guard_again(session, rt, row)
            becomes = DeliveryStatus.HELD if reason else DeliveryStatus.PENDING
        steps.append(
            ReplayStep(
                id=int(row.id or 0),
                event_type=row.event_type,
                entity_key=row.entity_key,
                destination=row.destination,
                status=row.status,
                becomes=becomes,
                reason=reason,
            )
        )
    return steps


async def replay(session: AsyncSession, rt: Runtime, ids: list[int]) -> list[ReplayStep]:
    """Send these deliveries again, each with a fresh retry window; returns what was done.

    Safe for delivered ones too: every connector write is idempotent, so a replay updates
    the remote record instead of creating a second one. A guarded change (a price) over its
    guard, and a rejected delivery, are held for a decision instead of being sent.
    """
    from app.flows.products.guards import accept_replayed, note_held_again

    if not ids:
        return []
    rows = (
        await session.execute(
            sa.select(Delivery)
            .where(col(Delivery.id).in_(ids))
            .order_by(col(Delivery.id))
            .execution_options(populate_existing=True)
        )
    ).scalars()
    candidates = [r for r in rows if r.status in (*REPLAYABLE, DeliveryStatus.REJECTED)]
    by_id = {int(r.id or 0): r for r in candidates}
    done: list[ReplayStep] = []
    now = utcnow()
    for step in await plan_replay(session, rt, candidates):
        values = {**_FRESH, "next_attempt_at": now, "updated_at": now}
        if step.becomes == DeliveryStatus.HELD:
            values |= {"status": DeliveryStatus.HELD, "held_reason": step.reason}
            values["last_error"], values["last_error_class"] = step.reason, "held"
        result = await session.execute(
            sa.update(Delivery)
            .where(col(Delivery.id) == step.id, col(Delivery.status) == step.status)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if rowcount(result):
            done.append(step)
            if step.becomes == DeliveryStatus.PENDING:
                await accept_replayed(session, by_id[step.id])
            elif step.reason != REOPENED:
                await note_held_again(session, rt, by_id[step.id])
    enqueue_after_commit(session, rt, [s.id for s in done if s.becomes == DeliveryStatus.PENDING])
    return done


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
