"""Connections for operators: health (breaker, pause, maintenance window, queue depth, last
success and error) from the database, and pause/resume of deliveries to one of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.config import ConnectionConfig
from app.dbutil import upsert
from app.delivery import actions
from app.delivery.breakers import BreakerView
from app.delivery.sweeper import shown_state
from app.errors import NotFound
from app.maintenance.service import maintenance_now
from app.maintenance.store import windows_by_connection
from app.models import ConnectionState, Delivery, DeliveryStatus, utcnow
from app.ops.pagination import Page
from app.ops.schemas import ConnectionOut, QueueDepth, ResumeOut
from app.runtime import Runtime

QUEUE_STATUSES = (
    DeliveryStatus.PENDING,
    DeliveryStatus.IN_FLIGHT,
    DeliveryStatus.PARKED,
    DeliveryStatus.HELD,
    DeliveryStatus.DEAD,
)


def connection_or_404(rt: Runtime, connection_id: str) -> ConnectionConfig:
    conn = rt.config.connection(connection_id)
    if conn is None:
        known = ", ".join(c.id for c in rt.config.connections) or "none configured"
        raise NotFound(f"no connection {connection_id!r}", hint=f"configured: {known}")
    return conn


BreakerState = Literal["closed", "open", "half-open"]


def _breaker(state: ConnectionState | None) -> tuple[BreakerState, datetime | None]:
    """The breaker as the delivering processes recorded it in the database (never Redis)."""
    if state is None or state.breaker_state in (None, "closed"):
        return "closed", None
    view = BreakerView("open", state.breaker_reopens_at)
    return cast(BreakerState, shown_state(view, utcnow())), state.breaker_reopens_at


async def _connections(
    session: AsyncSession, rt: Runtime, conns: Sequence[ConnectionConfig]
) -> list[ConnectionOut]:
    ids = [c.id for c in conns]
    if not ids:
        return []
    depth_rows = await session.execute(
        sa.select(col(Delivery.destination), col(Delivery.status), sa.func.count())
        .where(col(Delivery.destination).in_(ids), col(Delivery.status).in_(QUEUE_STATUSES))
        .group_by(col(Delivery.destination), col(Delivery.status))
    )
    depths: dict[str, dict[str, int]] = {}
    for destination, status, count in depth_rows:
        depths.setdefault(destination, {})[status] = int(count)
    states = {
        s.connection_id: s
        for s in (
            await session.execute(
                sa.select(ConnectionState)
                .where(col(ConnectionState.connection_id).in_(ids))
                .execution_options(populate_existing=True)
            )
        ).scalars()
    }
    windows = await windows_by_connection(session, rt)
    now = utcnow()
    out = []
    for conn in conns:
        state = states.get(conn.id)
        breaker_state, retry_at = _breaker(state)
        out.append(
            ConnectionOut(
                id=conn.id,
                type=conn.type,
                base_url=conn.base_url,
                flows_in=sorted({r.flow for r in rt.config.routes if r.from_ == conn.id}),
                flows_out=sorted({r.flow for r in rt.config.routes if r.to == conn.id}),
                breaker_state=breaker_state,
                breaker_retry_at=retry_at,
                paused=bool(state and state.paused),
                paused_at=state.paused_at if state and state.paused else None,
                queue=QueueDepth(**depths.get(conn.id, {})),
                last_success_at=state.last_success_at if state else None,
                last_error_at=state.last_error_at if state else None,
                last_error=state.last_error if state else None,
                maintenance=maintenance_now(windows.get(conn.id, []), now),
            )
        )
    return out


async def list_connections(session: AsyncSession, rt: Runtime) -> Page[ConnectionOut]:
    """Every configured connection; the config is small, so one page holds them all."""
    return Page(items=await _connections(session, rt, rt.config.connections), next_cursor=None)


async def get_connection(session: AsyncSession, rt: Runtime, connection_id: str) -> ConnectionOut:
    (out,) = await _connections(session, rt, [connection_or_404(rt, connection_id)])
    return out


async def _set_paused(session: AsyncSession, connection_id: str, paused: bool) -> None:
    values: dict[str, Any] = {"paused": paused, "paused_at": utcnow() if paused else None}
    await upsert(
        session, ConnectionState, {"connection_id": connection_id, **values}, key=["connection_id"]
    )


async def pause_connection(session: AsyncSession, rt: Runtime, connection_id: str) -> ConnectionOut:
    """Stop new deliveries to the connection; ones already in flight finish."""
    connection_or_404(rt, connection_id)
    await _set_paused(session, connection_id, True)
    return await get_connection(session, rt, connection_id)


async def resume_connection(session: AsyncSession, rt: Runtime, connection_id: str) -> ResumeOut:
    """Clear the pause and queue what waited (the enqueue runs once the resume commits)."""
    connection_or_404(rt, connection_id)
    await _set_paused(session, connection_id, False)
    requeued = await actions.requeue_pending(session, rt, connection_id)
    out = await get_connection(session, rt, connection_id)
    return ResumeOut(**out.model_dump(), requeued=requeued)
