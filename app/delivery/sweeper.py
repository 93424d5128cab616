"""The sweeper: re-queues deliveries a queue missed and those whose lease expired.

Enqueue-after-commit can be lost (the process died between COMMIT and enqueue, Redis was
down); a worker can die mid-delivery. The database is the truth, so every few seconds the
sweeper asks it what should be running and queues it again; duplicate enqueues collapse.
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog
from sqlmodel import col

from app.dbutil import id_list
from app.models import Delivery, DeliveryStatus, utcnow
from app.observability import metrics
from app.runtime import Runtime

log = structlog.get_logger("gateway.sweeper")

SWEEP_BATCH = 1000


async def sweep(rt: Runtime) -> int:
    now = utcnow()
    async with rt.sessions() as session:
        due = id_list(
            (
                await session.execute(
                    sa.select(col(Delivery.id))
                    .where(
                        col(Delivery.status) == DeliveryStatus.PENDING,
                        col(Delivery.next_attempt_at) <= now,
                    )
                    # high-velocity stock first when a backlog builds up, then oldest first
                    .order_by(col(Delivery.priority).desc(), col(Delivery.id))
                    .limit(SWEEP_BATCH)
                )
            ).scalars()
        )
        abandoned = id_list(
            (
                await session.execute(
                    sa.select(col(Delivery.id))
                    .where(
                        col(Delivery.status) == DeliveryStatus.IN_FLIGHT,
                        col(Delivery.lease_expires_at) < now,
                    )
                    .order_by(col(Delivery.id))
                    .limit(SWEEP_BATCH)
                )
            ).scalars()
        )
    queue = rt.require_queue()
    for delivery_id in due:
        await queue.enqueue(delivery_id)
    for delivery_id in abandoned:
        await queue.recover(delivery_id)
    if abandoned:
        log.warning("re-queued deliveries whose worker lease expired", delivery_ids=abandoned)
    await refresh_queue_gauges(rt)
    return len(due) + len(abandoned)


async def refresh_queue_gauges(rt: Runtime) -> None:
    async with rt.sessions() as session:
        rows = (
            await session.execute(
                sa.select(col(Delivery.destination), col(Delivery.status), sa.func.count())
                .where(
                    col(Delivery.status).in_(
                        (
                            DeliveryStatus.PENDING,
                            DeliveryStatus.IN_FLIGHT,
                            DeliveryStatus.PARKED,
                            DeliveryStatus.HELD,
                            DeliveryStatus.DEAD,
                        )
                    )
                )
                .group_by(col(Delivery.destination), col(Delivery.status))
            )
        ).all()
    seen = {(d, s): int(n) for d, s, n in rows}
    for conn in rt.config.connections:
        for status in (
            DeliveryStatus.PENDING,
            DeliveryStatus.IN_FLIGHT,
            DeliveryStatus.PARKED,
            DeliveryStatus.HELD,
            DeliveryStatus.DEAD,
        ):
            metrics.QUEUE_DEPTH.labels(conn.id, status).set(seen.get((conn.id, status), 0))
        metrics.BREAKER_STATE.labels(conn.id).set(
            metrics.BREAKER_STATE_VALUES.get(rt.breakers.state(conn.id), 0)
        )
