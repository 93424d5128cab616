"""Observations → incidents: raised once, resolved once, whatever process evaluates.

Every change is one short transaction whose write is conditional on the state it read (an
insert that the partial unique index ``uq_incidents_active`` lets through once, an update
``WHERE status = 'pending'`` or ``'open'``), so two evaluators at once, or one that died half
way, never raise or resolve the same incident twice. The transaction that raises or resolves
also writes its finding and queues its messages (``incident_notices``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import after_commit, transaction
from app.dbutil import insert_for, rowcount
from app.incidents.detectors import Key, Observation
from app.models import Finding, Incident, IncidentNotice, IncidentStatus
from app.observability import metrics

log = structlog.get_logger("gateway.incidents")

INCIDENTS: sa.Table = Incident.__table__  # type: ignore[attr-defined]
NOTICES: sa.Table = IncidentNotice.__table__  # type: ignore[attr-defined]
ACTIVE = sa.text("status IN ('pending', 'open')")
RESOLVED_FINDING = "incident_resolved"


@dataclass
class Changes:
    raised: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Active:
    id: int
    status: str
    first_seen_at: datetime


async def active_incidents(session: AsyncSession) -> dict[Key, Active]:
    rows = await session.execute(
        sa.select(
            INCIDENTS.c.id,
            INCIDENTS.c.kind,
            INCIDENTS.c.connection_id,
            INCIDENTS.c.flow,
            INCIDENTS.c.status,
            INCIDENTS.c.first_seen_at,
        ).where(INCIDENTS.c.status.in_(IncidentStatus.ACTIVE))
    )
    return {
        Key(kind, conn, flow): Active(int(id_), status, first)
        for id_, kind, conn, flow, status, first in rows
    }


async def apply(
    sessions: async_sessionmaker[AsyncSession],
    observations: list[Observation],
    now: datetime,
    sinks: list[str],
) -> Changes:
    """Raise, hold, resolve: what the observations say, each change committed on its own.

    An active incident that no observation speaks of any more (its detector turned off,
    its route removed) is resolved too, so none stays open for ever.
    """
    changes = Changes()
    async with sessions() as session:
        active = await active_incidents(session)
    seen: set[Key] = set()
    for obs in observations:
        seen.add(obs.key)
        current = active.get(obs.key)
        if obs.state == "bad":
            await _bad(sessions, obs, current, now, sinks, changes)
        elif obs.state == "ok" and current is not None:
            await _gone(sessions, current, "recovered", now, sinks, changes)
    for key, current in active.items():
        if key not in seen:
            await _gone(sessions, current, "no longer watched", now, sinks, changes)
    return changes


async def _bad(
    sessions: async_sessionmaker[AsyncSession],
    obs: Observation,
    current: Active | None,
    now: datetime,
    sinks: list[str],
    changes: Changes,
) -> None:
    async with transaction(sessions) as session:
        if current is None:
            first = min(obs.since or now, now)
            due = now - first >= obs.hold
            inserted = await session.scalar(
                insert_for(session, INCIDENTS)
                .values(
                    kind=obs.key.kind,
                    connection_id=obs.key.connection,
                    flow=obs.key.flow,
                    status=IncidentStatus.OPEN if due else IncidentStatus.PENDING,
                    summary=obs.summary,
                    details=obs.details,
                    first_seen_at=first,
                    last_seen_at=now,
                    opened_at=now if due else None,
                )
                .on_conflict_do_nothing(
                    index_elements=["kind", "connection_id", "flow"], index_where=ACTIVE
                )
                .returning(INCIDENTS.c.id)
            )
            if inserted is not None and due:
                await _raised(session, int(inserted), obs, now, sinks)
                changes.raised.append(int(inserted))
            return  # else another evaluator has it: the next run continues from its row
        values: dict[str, Any] = {
            "summary": obs.summary,
            "details": obs.details,
            "last_seen_at": now,
        }
        if current.status == IncidentStatus.PENDING and now - current.first_seen_at >= obs.hold:
            opened = await session.execute(
                sa.update(INCIDENTS)
                .where(INCIDENTS.c.id == current.id, INCIDENTS.c.status == IncidentStatus.PENDING)
                .values(status=IncidentStatus.OPEN, opened_at=now, **values)
            )
            if rowcount(opened) == 1:
                await _raised(session, current.id, obs, now, sinks)
                changes.raised.append(current.id)
            return
        await session.execute(
            sa.update(INCIDENTS)
            .where(INCIDENTS.c.id == current.id, INCIDENTS.c.status == current.status)
            .values(**values)
        )


async def _gone(
    sessions: async_sessionmaker[AsyncSession],
    current: Active,
    why: str,
    now: datetime,
    sinks: list[str],
    changes: Changes,
) -> None:
    async with transaction(sessions) as session:
        if current.status == IncidentStatus.PENDING:
            # a symptom that went away before it was an incident: nothing to announce
            await session.execute(
                sa.delete(INCIDENTS).where(
                    INCIDENTS.c.id == current.id, INCIDENTS.c.status == IncidentStatus.PENDING
                )
            )
            return
        # the update takes the row's lock first: a sender finishing a firing message for
        # this incident waits for it, or has finished before its notices are read below
        resolved = await session.execute(
            sa.update(INCIDENTS)
            .where(INCIDENTS.c.id == current.id, INCIDENTS.c.status == IncidentStatus.OPEN)
            .values(status=IncidentStatus.RESOLVED, resolved_at=now)
            .returning(INCIDENTS.c.kind, INCIDENTS.c.connection_id, INCIDENTS.c.flow)
        )
        row = resolved.one_or_none()
        if row is None:
            return  # another evaluator resolved it
        kind, connection, flow = row
        await queue_resolved(session, current.id, now)
        message = f"resolved ({why}): {kind} of {connection}" + (f" {flow}" if flow else "")
        session.add(
            Finding(
                kind=RESOLVED_FINDING,
                connection_id=connection,
                message=message,
                data={"incident_id": current.id, "kind": kind, "flow": flow, "why": why},
                created_at=now,
            )
        )
        metrics.FINDINGS.labels(RESOLVED_FINDING).inc()

        async def logged() -> None:
            log.info(
                "incident resolved",
                incident_id=current.id,
                kind=kind,
                connection_id=connection,
                flow=flow,
                why=why,
            )

        after_commit(session, logged)
    changes.resolved.append(current.id)


async def _raised(
    session: AsyncSession, incident_id: int, obs: Observation, now: datetime, sinks: list[str]
) -> None:
    """The finding and one firing message per sink, in the transaction that raised it."""
    session.add(
        Finding(
            kind=obs.key.kind,
            connection_id=obs.key.connection,
            message=obs.summary,
            data={"incident_id": incident_id, "flow": obs.key.flow, **obs.details},
            created_at=now,
        )
    )
    metrics.FINDINGS.labels(obs.key.kind).inc()
    if sinks:
        await session.execute(
            insert_for(session, NOTICES)
            .values(
                [
                    {
                        "incident_id": incident_id,
                        "sink": sink,
                        "message": "firing",
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for sink in sinks
                ]
            )
            .on_conflict_do_nothing(index_elements=["incident_id", "sink", "message"])
        )

    async def logged() -> None:
        log.warning(
            "incident raised",
            incident_id=incident_id,
            kind=obs.key.kind,
            connection_id=obs.key.connection,
            flow=obs.key.flow,
            summary=obs.summary,
        )

    after_commit(session, logged)


async def queue_resolved(session: AsyncSession, incident_id: int, now: datetime) -> None:
    """The incident is resolved: a resolved message to each sink that got (or may have got)
    the firing one; a firing message not sent yet is not sent at all."""
    firing = (
        await session.execute(
            sa.select(NOTICES.c.sink, NOTICES.c.state).where(
                NOTICES.c.incident_id == incident_id, NOTICES.c.message == "firing"
            )
        )
    ).all()
    told = [sink for sink, state in firing if state in ("sent", "unconfirmed")]
    if told:
        await session.execute(
            insert_for(session, NOTICES)
            .values(
                [
                    {
                        "incident_id": incident_id,
                        "sink": sink,
                        "message": "resolved",
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for sink in told
                ]
            )
            .on_conflict_do_nothing(index_elements=["incident_id", "sink", "message"])
        )
    await session.execute(
        sa.update(NOTICES)
        .where(
            NOTICES.c.incident_id == incident_id,
            NOTICES.c.message == "firing",
            NOTICES.c.state == "pending",
        )
        .values(state="skipped", last_error="resolved before it was sent")
    )
