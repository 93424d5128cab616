"""Heartbeats: every delivering process says, in the database, that it lives and can consume.

``/readyz`` reads them to tell the truth about delivery: an API that accepts webhooks while no
worker is consuming (all stopped, or Redis unreachable) is ready to accept, not to deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db import autocommit
from app.dbutil import upsert
from app.models import WorkerHeartbeat, utcnow
from app.runtime import Runtime

log = structlog.get_logger("gateway.heartbeat")

HeartbeatState = Literal["starting", "consuming", "queue_unreachable", "stopping"]
HEARTBEAT_SECONDS = 5.0
# a worker not seen for this long is gone (killed, or its database is unreachable)
STALE_AFTER = timedelta(seconds=HEARTBEAT_SECONDS * 3)


async def beat(rt: Runtime, kind: str, state: str, started_at: datetime) -> None:
    now = utcnow()
    async with autocommit(rt.engine, rt.sessions) as session:  # one statement
        await upsert(
            session,
            WorkerHeartbeat,
            {
                "worker_id": rt.worker_id,
                "kind": kind,
                "started_at": started_at,
                "seen_at": now,
                "state": state,
            },
            key=["worker_id"],
            update=["seen_at", "state"],
        )


async def heartbeat_loop(
    rt: Runtime,
    kind: str,
    state: Callable[[], str],
    stopping: asyncio.Event,
    changed: asyncio.Event | None = None,
) -> None:
    """Beat every few seconds (and at once when ``changed`` is set) until ``stopping``; then
    remove this worker's row."""
    started_at = utcnow()
    wake = changed or asyncio.Event()
    while not stopping.is_set():
        wake.clear()
        try:
            await beat(rt, kind, state(), started_at)
        except Exception as exc:  # the database is away: /readyz says so by itself
            log.debug("heartbeat not recorded", error=repr(exc))
        waits = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())]
        await asyncio.wait(waits, timeout=HEARTBEAT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()
    with contextlib.suppress(Exception):
        async with autocommit(rt.engine, rt.sessions) as session:
            await session.execute(
                sa.delete(WorkerHeartbeat).where(col(WorkerHeartbeat.worker_id) == rt.worker_id)
            )


async def live_workers(session: AsyncSession) -> list[WorkerHeartbeat]:
    """Workers seen recently, whatever their state."""
    cutoff = utcnow() - STALE_AFTER
    rows = await session.execute(
        sa.select(WorkerHeartbeat).where(col(WorkerHeartbeat.seen_at) >= cutoff)
    )
    return list(rows.scalars())
