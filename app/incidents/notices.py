"""Sending the queued messages: each at most once per incident, sink and kind of message.

A message is claimed (``pending`` → ``sending``, committed) before it goes out, and marked
``sent`` after. A failure puts it back to ``pending`` with a backoff; a firing message for an
incident resolved meanwhile is ``skipped`` (nobody needs to hear about it now); one not sent
after ``give_up_hours`` is ``failed``. A sender that dies mid-send leaves ``sending``: after
``CLAIM_TIMEOUT`` it becomes ``unconfirmed`` and is never sent again, so a crash can never
send a message twice (the resolved message still follows it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.configuration.monitoring import Notifications, SmtpSink, WebhookSink
from app.db import transaction
from app.incidents.engine import INCIDENTS, NOTICES, queue_resolved
from app.incidents.sinks import Message, SinkError, send
from app.models import IncidentStatus
from app.observability import metrics

log = structlog.get_logger("gateway.incidents")

CLAIM_TIMEOUT = timedelta(minutes=10)  # longer than any send can take (3 timeouts of 120 s)
BATCH = 100


def incident_url(config: Notifications, incident_id: int) -> str | None:
    if not config.gateway_url:
        return None
    return f"{config.gateway_url.rstrip('/')}/api/v1/incidents/{incident_id}"


def message_for(row: Any, message: str, config: Notifications) -> Message:
    summary = row.summary if message == "firing" else f"resolved: {row.summary}"
    return Message(
        status="firing" if message == "firing" else "resolved",
        kind=row.kind,
        connection=row.connection_id,
        flow=row.flow,
        summary=summary,
        incident_id=int(row.id),
        details=dict(row.details or {}),
        opened_at=row.opened_at,
        resolved_at=row.resolved_at if message == "resolved" else None,
        url=incident_url(config, int(row.id)),
    )


def backoff(config: Notifications, attempts: int) -> timedelta:
    seconds = config.retry_base_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, config.retry_max_seconds))


async def send_due(
    sessions: async_sessionmaker[AsyncSession], config: Notifications, now: datetime
) -> int:
    """Send what is due to each configured sink; returns how many messages went out."""
    await _expire_claims(sessions, now)
    sinks = {sink.name: sink for sink in config.sinks}
    async with sessions() as session:
        due = (
            await session.execute(
                sa.select(
                    NOTICES.c.id,
                    NOTICES.c.sink,
                    NOTICES.c.message,
                    NOTICES.c.created_at,
                    INCIDENTS.c.status,
                )
                .join(INCIDENTS, INCIDENTS.c.id == NOTICES.c.incident_id)
                .where(NOTICES.c.state == "pending", NOTICES.c.next_attempt_at <= now)
                .order_by(NOTICES.c.id)
                .limit(BATCH)
            )
        ).all()
    sent = 0
    for notice_id, sink_name, message, created_at, status in due:
        sink = sinks.get(sink_name)
        if sink is None:
            await _settle(sessions, notice_id, "skipped", "the sink is no longer configured")
        elif message == "firing" and status == IncidentStatus.RESOLVED:
            await _settle(sessions, notice_id, "skipped", "resolved before it was sent")
        elif now - created_at > timedelta(hours=config.give_up_hours):
            await _settle(sessions, notice_id, "failed", "not sent in time; gave up")
        else:
            sent += await _send_one(sessions, config, sink, notice_id, now)
    return sent


async def _send_one(
    sessions: async_sessionmaker[AsyncSession],
    config: Notifications,
    sink: WebhookSink | SmtpSink,
    notice_id: int,
    now: datetime,
) -> int:
    async with transaction(sessions) as session:
        claimed = await session.execute(
            sa.update(NOTICES)
            .where(NOTICES.c.id == notice_id, NOTICES.c.state == "pending")
            .values(state="sending", claimed_at=now, attempts=NOTICES.c.attempts + 1)
            .returning(NOTICES.c.incident_id, NOTICES.c.message, NOTICES.c.attempts)
        )
        row = claimed.one_or_none()
        if row is None:
            return 0  # another sender has it
        incident_id, message, attempts = row
        incident = (
            await session.execute(sa.select(INCIDENTS).where(INCIDENTS.c.id == incident_id))
        ).one()
    try:
        await send(sink, message_for(incident, message, config))
    except SinkError as exc:
        await _failed(sessions, config, notice_id, incident_id, message, attempts, str(exc), now)
        metrics.NOTIFICATIONS.labels(sink.name, message, "failed").inc()
        log.warning(
            "notification failed; it is retried",
            sink=sink.name,
            incident_id=incident_id,
            message=message,
            attempts=attempts,
            error=str(exc),
        )
        return 0
    async with transaction(sessions) as session:
        status = await _lock_incident(session, incident_id)
        await session.execute(
            sa.update(NOTICES)
            .where(NOTICES.c.id == notice_id)
            .values(state="sent", sent_at=now, last_error=None)
        )
        if message == "firing" and status == IncidentStatus.RESOLVED:
            await queue_resolved(session, incident_id, now)  # it resolved while this went out
    metrics.NOTIFICATIONS.labels(sink.name, message, "sent").inc()
    log.info("notification sent", sink=sink.name, incident_id=incident_id, message=message)
    return 1


async def _failed(
    sessions: async_sessionmaker[AsyncSession],
    config: Notifications,
    notice_id: int,
    incident_id: int,
    message: str,
    attempts: int,
    error: str,
    now: datetime,
) -> None:
    async with transaction(sessions) as session:
        status = await _lock_incident(session, incident_id)
        if message == "firing" and status == IncidentStatus.RESOLVED:
            values: dict[str, Any] = {"state": "skipped", "last_error": error}
        else:
            values = {
                "state": "pending",
                "last_error": error,
                "next_attempt_at": now + backoff(config, attempts),
            }
        await session.execute(sa.update(NOTICES).where(NOTICES.c.id == notice_id).values(values))


async def _lock_incident(session: AsyncSession, incident_id: int) -> str:
    """The incident's status, its row locked until commit (the resolver takes it too)."""
    status = await session.scalar(
        sa.select(INCIDENTS.c.status).where(INCIDENTS.c.id == incident_id).with_for_update()
    )
    return str(status)


async def _settle(
    sessions: async_sessionmaker[AsyncSession], notice_id: int, state: str, why: str
) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            sa.update(NOTICES)
            .where(NOTICES.c.id == notice_id, NOTICES.c.state == "pending")
            .values(state=state, last_error=why)
        )


async def _expire_claims(sessions: async_sessionmaker[AsyncSession], now: datetime) -> None:
    """A message left ``sending`` by a sender that died: it may have gone out, so it is
    never sent again; the resolved message follows it as if it had."""
    async with transaction(sessions) as session:
        stale = (
            await session.execute(
                sa.update(NOTICES)
                .where(NOTICES.c.state == "sending", NOTICES.c.claimed_at < now - CLAIM_TIMEOUT)
                .values(state="unconfirmed", last_error="the sender stopped while sending")
                .returning(NOTICES.c.incident_id, NOTICES.c.sink, NOTICES.c.message)
            )
        ).all()
        for incident_id, sink, message in stale:
            log.warning(
                "notification unconfirmed: its sender stopped while sending; not sent again",
                sink=sink,
                incident_id=incident_id,
                message=message,
            )
            status = await _lock_incident(session, incident_id)
            if message == "firing" and status == IncidentStatus.RESOLVED:
                await queue_resolved(session, incident_id, now)
