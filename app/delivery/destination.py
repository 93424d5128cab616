"""The destination's health as the database keeps it: last success and error, the breaker's
state (mirrored so the API, metrics and the sweeper never ask Redis), and the release of what
waited for the destination once its breaker closes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.dbutil import id_list, upsert
from app.delivery.breakers import BreakerView
from app.delivery.outbox import DELIVERIES, WAITING_FOR_DESTINATION, enqueue_after_commit
from app.models import ConnectionState, DeliveryStatus, utcnow
from app.runtime import Runtime
from kernel.errors import NeedsMappingError

log = structlog.get_logger("gateway.delivery")

# How many waiting deliveries the closing of a breaker queues at once; the sweeper queues the
# rest as due work (oldest first), so a large backlog drains without a burst of enqueues.
RELEASE_BATCH = 200


async def record_breaker(
    session: AsyncSession, connection_id: str, view: BreakerView, now: datetime
) -> None:
    """Mirror a breaker's state into the database: operators, metrics and the sweeper read it
    there, whichever process delivered, without asking Redis."""
    values: dict[str, Any] = {
        "breaker_state": view.state,
        "breaker_changed_at": now,
        "breaker_reopens_at": view.reopens_at,
    }
    await upsert(
        session, ConnectionState, {"connection_id": connection_id, **values}, key=["connection_id"]
    )


async def release_waiting(
    session: AsyncSession, rt: Runtime, destination: str, now: datetime | None = None
) -> list[int]:
    """The destination answers again: what waited for it is due now, oldest first.

    The first ``RELEASE_BATCH`` are queued after the commit; the sweeper takes the rest as
    due work, so the backlog drains in order within the destination's concurrency limit.
    """
    now = now or utcnow()
    released = id_list(
        (
            await session.execute(
                sa.update(DELIVERIES)
                .where(
                    DELIVERIES.c.destination == destination,
                    DELIVERIES.c.status == DeliveryStatus.PENDING,
                    DELIVERIES.c.last_error_class == WAITING_FOR_DESTINATION,
                )
                .values(next_attempt_at=now, updated_at=now)
                .returning(DELIVERIES.c.id)
            )
        ).scalars()
    )
    if released:
        released.sort()
        enqueue_after_commit(session, rt, released[:RELEASE_BATCH])
        log.info("destination recovered: waiting deliveries released", count=len(released))
    return released


async def record_connection_health(
    session: AsyncSession,
    connection_id: str,
    error: BaseException | None,
    message: str | None,
    now: datetime,
) -> None:
    if isinstance(error, NeedsMappingError):
        return  # a data gap, not the connection's health
    values: dict[str, Any] = (
        {"last_success_at": now} if error is None else {"last_error_at": now, "last_error": message}
    )
    await upsert(
        session, ConnectionState, {"connection_id": connection_id, **values}, key=["connection_id"]
    )
