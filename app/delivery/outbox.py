"""The outbox: the deliveries table, what the queue does next, and queueing after commit.

Shared by everything that writes deliveries (ingest, flows, operator actions) and by the
engine itself; it knows nothing of connectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit
from app.dbutil import constant
from app.delivery.queue import ArqQueue
from app.models import Delivery, DeliveryStatus, utcnow
from app.runtime import Runtime

log = structlog.get_logger("gateway.delivery")

# Core table for the hot-path statements: they skip the ORM's per-execution compile state.
DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]

OutcomeKind = Literal["done", "retry", "skipped"]
# last_error_class of a pending delivery that waits for its destination's breaker to close
WAITING_FOR_DESTINATION = "breaker_open"


@dataclass(frozen=True)
class Outcome:
    """What the queue does next: nothing (done / skipped) or run again at ``retry_at``."""

    kind: OutcomeKind
    status: str
    retry_at: datetime | None = None


# --- queueing --------------------------------------------------------------------------------


def enqueue_after_commit(
    session: AsyncSession, rt: Runtime, deliveries: Sequence[int | tuple[int, datetime]]
) -> None:
    """Queue the deliveries (ids, or (id, due time)) once their transaction is durable."""
    if not deliveries:
        return
    due = [d if isinstance(d, tuple) else (d, None) for d in deliveries]
    delivery_ids = [d for d, _ in due]
    now = utcnow()

    async def _enqueue() -> None:
        try:
            queue = rt.require_queue()
            for delivery_id, at in due:
                when = at if at is not None and at > now else None
                if isinstance(queue, ArqQueue):  # the answer does not wait for Redis
                    queue.enqueue_soon(delivery_id, at=when)
                else:
                    await queue.enqueue(delivery_id, at=when)
        except Exception as exc:
            # The rows are committed; the sweeper queues them once the queue is back.
            log.warning(
                "enqueue failed; the sweeper will queue these deliveries",
                delivery_ids=delivery_ids,
                error=str(exc),
            )

    after_commit(session, _enqueue)


def behind(destination: Any, ordering_key: Any, after_id: Any) -> Any:
    """SQL: the pending deliveries that waited for a delivery (same entity, or depending on
    it), the first of each ordering key, as one ``next_id`` column.

    Two look-ups, each by the partial index that leads with its key (0015); with one OR
    between them the planner could walk every pending delivery of the destination."""

    def first(*where: Any) -> Any:
        return sa.select(sa.func.min(DELIVERIES.c.id).label("next_id")).where(
            DELIVERIES.c.destination == destination,
            DELIVERIES.c.id > after_id,
            DELIVERIES.c.status == constant(DeliveryStatus.PENDING),
            *where,
        )

    return sa.union_all(
        first(DELIVERIES.c.ordering_key == ordering_key),
        first(
            DELIVERIES.c.depends_on == ordering_key, DELIVERIES.c.ordering_key != ordering_key
        ).group_by(DELIVERIES.c.ordering_key),
    ).subquery("behind")


async def waiting_behind(session: AsyncSession, delivery: Delivery) -> list[int]:
    """Pending deliveries that waited for ``delivery`` (same entity, or depending on it):
    the first of each ordering key, so the order within an entity is kept."""
    query = behind(delivery.destination, delivery.ordering_key, delivery.id)
    next_ids = (await session.execute(sa.select(query.c.next_id))).scalars()
    return sorted(int(i) for i in next_ids if i is not None)
