"""Thin webhooks: the notification is stored and acknowledged at once; a job reads the records
it names from the source, through the source's breaker and rate limit, and records their
events like any others (the same dedupe, planning, ordering and replay).

Some systems (BigCommerce, Shopware, Business Central, QuickBooks Online) send only an id. A
read that fails transiently is retried with backoff; one the source refuses for good is dead
with the source's message, and a finding says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.config import DeliveryPolicy
from app.db import transaction
from app.dbutil import id_list, rowcount
from app.delivery.policy import backoff_seconds
from app.flows.recorder import not_seen, record_events
from app.models import Finding, InboundRead, utcnow
from app.runtime import Runtime
from kernel.contract import RecordRef
from kernel.errors import ConnectorError, RateLimitedError, TransientError

log = structlog.get_logger("gateway.reads")

READS: sa.Table = InboundRead.__table__  # type: ignore[attr-defined]
BATCH = 100
# a read taken by a job; if that job dies, another takes it after this long
CLAIM_SECONDS = 60.0


async def record_reads(
    session: AsyncSession, inbound_event_id: int, connection_id: str, refs: list[RecordRef]
) -> None:
    """In the webhook's transaction: one row per record to read, due now."""
    if not refs:
        return
    now = utcnow()
    await session.execute(
        sa.insert(READS),
        [
            {
                "inbound_event_id": inbound_event_id,
                "connection_id": connection_id,
                "kind": ref.kind,
                "ref_id": ref.id,
                "version": ref.version,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for ref in refs
        ],
    )


async def run_reads(rt: Runtime, limit: int = BATCH) -> int:
    """Read what is due, oldest first; returns how many reads recorded their events."""
    done = 0
    for read in await _claim_due(rt, limit):
        done += await _read_one(rt, read)
    return done


async def _claim_due(rt: Runtime, limit: int) -> list[InboundRead]:
    """Take due reads for this run (their time moves on, so another job skips them)."""
    now = utcnow()
    async with transaction(rt.sessions) as session:
        ids = id_list(
            (
                await session.execute(
                    sa.select(col(InboundRead.id))
                    .where(
                        col(InboundRead.status) == "pending",
                        col(InboundRead.next_attempt_at) <= now,
                    )
                    .order_by(col(InboundRead.id))
                    .limit(limit)
                )
            ).scalars()
        )
        if not ids:
            return []
        taken = id_list(
            (
                await session.execute(
                    sa.update(READS)
                    .where(
                        READS.c.id.in_(ids),
                        READS.c.status == "pending",
                        READS.c.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
                    .returning(READS.c.id)
                )
            ).scalars()
        )
        rows = await session.execute(
            sa.select(InboundRead).where(col(InboundRead.id).in_(taken)).order_by(InboundRead.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def _read_one(rt: Runtime, read: InboundRead) -> int:
    connector = rt.connector(read.connection_id)
    if connector is None:
        await _finish(rt, read, dead=f"connection {read.connection_id!r} is not in the config")
        return 0
    source = read.connection_id
    admission = await rt.breakers.admit(source, utcnow())
    if not admission.go:
        await _later(rt, read, admission.retry_at or utcnow(), None)
        return 0
    ref = RecordRef(kind=read.kind, id=read.ref_id, version=read.version)
    try:
        await rt.rate_limit(source)
        events = await connector.read(ref)
    except RateLimitedError as exc:
        await rt.breakers.record(source, utcnow(), "success", trial=admission.trial)
        await _later(rt, read, utcnow() + timedelta(seconds=exc.retry_after), str(exc))
        return 0
    except TransientError as exc:
        await rt.breakers.record(source, utcnow(), "failure", trial=admission.trial)
        policy = rt.config.policy_for(source)
        await _retry_or_dead(rt, read, policy, exc)
        return 0
    except Exception as exc:  # a refusal (PermanentError), or a bug: a person looks
        if admission.trial:
            await rt.breakers.release_trial(source)
        if not isinstance(exc, ConnectorError):
            log.exception("connector raised an unexpected error reading a record")
        await _finish(rt, read, dead=str(exc) or type(exc).__name__)
        return 0
    await rt.breakers.record(source, utcnow(), "success", trial=admission.trial)
    async with transaction(rt.sessions) as session:
        fresh = await not_seen(session, events)
        await record_events(session, rt, source, fresh, inbound_event_id=read.inbound_event_id)
        await _set(session, read, status="done", last_error=None)
    log.info(
        "record read from the source",
        connection_id=source,
        kind=read.kind,
        ref=read.ref_id,
        events=len(fresh),
    )
    return 1


async def _retry_or_dead(
    rt: Runtime, read: InboundRead, policy: DeliveryPolicy, exc: BaseException
) -> None:
    first = read.created_at
    if utcnow() - first >= timedelta(seconds=policy.retry_window_seconds):
        await _finish(rt, read, dead=f"gave up after {read.attempts + 1} reads: {exc}")
        return
    delay = backoff_seconds(read.attempts + 1, policy)
    await _later(rt, read, utcnow() + timedelta(seconds=delay), str(exc), attempt=True)


async def _later(
    rt: Runtime, read: InboundRead, at: datetime, error: str | None, *, attempt: bool = False
) -> None:
    async with transaction(rt.sessions) as session:
        values: dict[str, Any] = {"next_attempt_at": at, "last_error": error}
        if attempt:
            values["attempts"] = read.attempts + 1
        await _set(session, read, **values)


async def _finish(rt: Runtime, read: InboundRead, *, dead: str) -> None:
    log.warning(
        "record could not be read; dead",
        connection_id=read.connection_id,
        kind=read.kind,
        ref=read.ref_id,
        error=dead,
    )
    async with transaction(rt.sessions) as session:
        await _set(session, read, status="dead", last_error=dead, attempts=read.attempts + 1)
        session.add(
            Finding(
                kind="read_failed",
                connection_id=read.connection_id,
                entity_key=f"{read.connection_id}:{read.kind}:{read.ref_id}"[:256],
                message=f"{read.kind} {read.ref_id} named by a webhook could not be read from "
                f"{read.connection_id}: {dead}",
                data={"inbound_event_id": read.inbound_event_id, "read_id": read.id},
                created_at=utcnow(),
            )
        )


async def _set(session: AsyncSession, read: InboundRead, **values: Any) -> None:
    result = await session.execute(
        sa.update(READS).where(READS.c.id == read.id).values(updated_at=utcnow(), **values)
    )
    assert rowcount(result) == 1
