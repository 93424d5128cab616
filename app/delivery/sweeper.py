"""The sweeper: the guarantee behind every queue.

Enqueue-after-commit can be lost (the process died between COMMIT and enqueue, Redis was
down or hung); a worker can die mid-delivery; a destination's breaker can close in a process
that then dies. The database is the truth, so every few seconds the sweeper asks it what
should be running and queues it again (duplicate enqueues collapse):

- pending deliveries that are due, high-velocity stock first, then oldest first;
- in-flight deliveries whose lease expired (their worker died);
- for a destination whose breaker is open and due for a trial, the oldest waiting delivery
  (one trial at a time is enforced by the breaker itself);
- for a destination whose breaker closed, what still waits for it;
- what waited for a maintenance window that was deleted or shortened (``app.maintenance``).

It runs in every process that can queue work (``serve`` and each worker); on Postgres an
advisory lock lets one of them sweep at a time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db import transaction
from app.dbutil import constant, constants, id_list
from app.delivery.breakers import CLOSED, BreakerView
from app.delivery.claim import not_blocked
from app.delivery.destination import record_breaker, release_waiting
from app.delivery.outbox import DELIVERIES, WAITING_FOR_DESTINATION
from app.delivery.queue import DeliveryQueue, QueueUnavailable
from app.delivery.statistics import analyze_stale_tables
from app.maintenance.store import release_ended
from app.models import ConnectionState, Delivery, DeliveryStatus, utcnow
from app.observability import metrics
from app.runtime import Runtime

log = structlog.get_logger("gateway.sweeper")

SWEEP_BATCH = 1000
ENQUEUE_BATCH = 200  # enqueues sent together: one pipeline, well inside its 0.25 s deadline
TRIAL_CANDIDATES = 3
# pg_try_advisory_xact_lock key: "erp-gw" as an int, so it never collides by accident
_SWEEP_LOCK = 0x6572702D6777


async def sweep(rt: Runtime) -> int:
    """One pass; returns how many deliveries it queued (0 if another process is sweeping)."""
    now = utcnow()
    async with transaction(rt.sessions) as session:
        if not await _take_sweep_lock(session):
            return 0
        breakers = await _reconcile_breakers(session, rt, now)
        await _release_recovered(session, rt, breakers, now)
        await release_ended(session, rt, now)
        trials = await _trial_candidates(session, breakers, now)
        due = await _due(session, now)
        abandoned = await _abandoned(session, now)
    queue = rt.require_queue()
    try:
        await _enqueue_all(queue, [*trials, *due])
        for delivery_id in abandoned:
            await queue.recover(delivery_id)
    except QueueUnavailable as exc:
        log.warning(
            "queue unreachable; deliveries wait safely in the database until it is back",
            due=len(due) + len(trials),
            abandoned=len(abandoned),
            error=str(exc),
        )
        await analyze_stale_tables(rt.engine)
        return 0
    # after the enqueues, which follow the reads as closely as they can
    await analyze_stale_tables(rt.engine)  # the plans of the next pass and of every worker
    if abandoned:
        log.warning("re-queued deliveries whose worker lease expired", delivery_ids=abandoned)
    if trials:
        log.info("trial call queued for destinations whose breaker may close", ids=trials)
    return len(trials) + len(due) + len(abandoned)


async def _enqueue_all(queue: DeliveryQueue, delivery_ids: list[int]) -> None:
    """Queue the deliveries a batch at a time, each batch one Redis round trip.

    As soon as the pass has read them: what it read is a snapshot, and a delivery a worker
    finishes before its enqueue arrives has no job left to collapse into, so the enqueue
    makes a new one that the worker then claims for nothing (an UPDATE, a read and a job's
    Redis traffic). One at a time, a backlog's thousand took a thousand round trips, and a
    busy worker finished ~15% of them in that window."""
    for start in range(0, len(delivery_ids), ENQUEUE_BATCH):
        batch = delivery_ids[start : start + ENQUEUE_BATCH]
        results = await asyncio.gather(
            *(queue.enqueue(delivery_id) for delivery_id in batch), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


async def _take_sweep_lock(session: AsyncSession) -> bool:
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return True  # SQLite: one process owns the file
    taken = await session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(_SWEEP_LOCK)))
    return bool(taken)


async def _due(session: AsyncSession, now: datetime) -> list[int]:
    return id_list(
        (
            await session.execute(
                sa.select(col(Delivery.id))
                .where(
                    col(Delivery.status) == constant(DeliveryStatus.PENDING),
                    col(Delivery.next_attempt_at) <= now,
                )
                # high-velocity stock first when a backlog builds up, then oldest first
                .order_by(col(Delivery.priority).desc(), col(Delivery.id))
                .limit(SWEEP_BATCH)
            )
        ).scalars()
    )


async def _abandoned(session: AsyncSession, now: datetime) -> list[int]:
    return id_list(
        (
            await session.execute(
                sa.select(col(Delivery.id))
                .where(
                    col(Delivery.status) == constant(DeliveryStatus.IN_FLIGHT),
                    col(Delivery.lease_expires_at) < now,
                )
                .order_by(col(Delivery.id))
                .limit(SWEEP_BATCH)
            )
        ).scalars()
    )


def _destinations(rt: Runtime) -> list[str]:
    return sorted({route.to for route in rt.config.routes})


async def _mirrored_breakers(session: AsyncSession) -> dict[str, BreakerView]:
    rows = await session.execute(
        sa.select(
            col(ConnectionState.connection_id),
            col(ConnectionState.breaker_state),
            col(ConnectionState.breaker_reopens_at),
        )
    )
    return {
        cid: BreakerView("open" if state in ("open", "half-open") else "closed", reopens)
        for cid, state, reopens in rows
    }


async def _reconcile_breakers(
    session: AsyncSession, rt: Runtime, now: datetime
) -> dict[str, BreakerView]:
    """Make the database's copy match the breakers (a process may have died before writing);
    returns the copy as it now is."""
    mirrored = await _mirrored_breakers(session)
    for destination in _destinations(rt):
        view = await rt.breakers.shared_view(destination, now)
        if view is None:
            continue  # the shared state cannot be read now: keep the last known copy
        shared = CLOSED if view.state == "closed" else BreakerView("open", view.reopens_at)
        known = mirrored.get(destination)
        if known is None and shared.state == "closed":
            continue
        if known != shared:
            await record_breaker(session, destination, shared, now)
            mirrored[destination] = shared
    return mirrored


async def _release_recovered(
    session: AsyncSession, rt: Runtime, breakers: dict[str, BreakerView], now: datetime
) -> None:
    """What still waits for a destination whose breaker is closed: due now (this very sweep
    queues it as due work), so nothing waits for a wake-up that never comes."""
    waiting = (
        await session.execute(
            sa.select(DELIVERIES.c.destination)
            .where(
                DELIVERIES.c.status == constant(DeliveryStatus.PENDING),
                DELIVERIES.c.last_error_class == constant(WAITING_FOR_DESTINATION),
            )
            .distinct()
        )
    ).scalars()
    for destination in list(waiting):
        if breakers.get(destination, BreakerView("closed")).state == "closed":
            await release_waiting(session, rt, destination, now)


async def _trial_candidates(
    session: AsyncSession, breakers: dict[str, BreakerView], now: datetime
) -> list[int]:
    """Deliveries waiting for a destination whose breaker allows a trial now.

    The least recently tried go first (not simply the oldest): a delivery the destination
    fails on by itself (a poison record) must not be the trial every time and keep the
    breaker open for everyone. Deliveries behind an unfinished one of their entity cannot be
    claimed, so they are never chosen.
    """
    ids: list[int] = []
    for destination, view in breakers.items():
        if view.state != "open" or view.reopens_at is None or view.reopens_at > now:
            continue
        chosen = id_list(
            (
                await session.execute(
                    sa.select(col(Delivery.id))
                    .where(
                        col(Delivery.destination) == destination,
                        col(Delivery.status) == constant(DeliveryStatus.PENDING),
                        col(Delivery.last_error_class) == constant(WAITING_FOR_DESTINATION),
                        not_blocked(),
                    )
                    .order_by(col(Delivery.updated_at), col(Delivery.id))
                    .limit(TRIAL_CANDIDATES)
                )
            ).scalars()
        )
        if not chosen:
            continue
        await session.execute(
            sa.update(DELIVERIES)
            .where(DELIVERIES.c.id.in_(chosen), DELIVERIES.c.status == DeliveryStatus.PENDING)
            .values(next_attempt_at=now)
        )
        ids.extend(chosen)
    return ids


QUEUE_GAUGE_STATUSES = (
    DeliveryStatus.PENDING,
    DeliveryStatus.IN_FLIGHT,
    DeliveryStatus.PARKED,
    DeliveryStatus.HELD,
    DeliveryStatus.DEAD,
    DeliveryStatus.REJECTED,
)


async def refresh_queue_gauges(rt: Runtime) -> None:
    """Queue depth, the oldest delivery's age and breaker state from the database: right
    whatever process delivered, and never waiting on Redis."""
    async with rt.sessions() as session:
        rows = (
            await session.execute(
                sa.select(
                    col(Delivery.destination),
                    col(Delivery.status),
                    sa.func.count(),
                    sa.func.min(col(Delivery.created_at)),
                )
                .where(col(Delivery.status).in_(constants(QUEUE_GAUGE_STATUSES)))
                .group_by(col(Delivery.destination), col(Delivery.status))
            )
        ).all()
        breakers = await _mirrored_breakers(session)
    seen = {(d, s): (int(n), oldest) for d, s, n, oldest in rows}
    now = utcnow()
    for conn in rt.config.connections:
        for status in QUEUE_GAUGE_STATUSES:
            depth, oldest = seen.get((conn.id, status), (0, None))
            metrics.QUEUE_DEPTH.labels(conn.id, status).set(depth)
            age = (now - oldest).total_seconds() if oldest is not None else 0.0
            metrics.QUEUE_OLDEST_AGE.labels(conn.id, status).set(max(age, 0.0))
        view = breakers.get(conn.id, BreakerView("closed"))
        metrics.BREAKER_STATE.labels(conn.id).set(
            metrics.BREAKER_STATE_VALUES[shown_state(view, now)]
        )


def shown_state(view: BreakerView, now: datetime) -> Any:
    """An open breaker past its reset time is half-open: the next call is a trial."""
    if view.state == "open" and view.reopens_at is not None and view.reopens_at <= now:
        return "half-open"
    return view.state
