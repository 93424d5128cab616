"""Quarantine: signed webhooks whose body the parser could not handle, kept to be replayed.

A sender that gets a 4xx retries and may then give up on us: Shopify retries 8 times over
4 hours and then deletes an API-made subscription (https://shopify.dev/changelog/
updates-to-webhook-retry-mechanism; ../shared/reference/storefront-apis.md §1.1). So a body
whose signature is valid but which the connector cannot parse (a value the canonical model
refuses, a parser bug) is stored as an ``inbound_events`` row with status ``quarantined``
(the error in ``note``), answered 200, reported (a ``webhook_quarantined`` finding, the
``gateway_webhooks_received_total{result="quarantined"}`` counter and the
``gateway_webhooks_quarantined`` gauge) and replayed by an operator once a new gateway
version can read it (``/api/v1/quarantine``): parsed again with today's code, its events
recorded with the usual dedupe, or left in quarantine with the new error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.errors import NotFound
from app.flows.recorder import record_events
from app.ingest.dedupe import fresh_events
from app.ingest.reads import record_reads
from app.ingest.rows import TOPIC_MAX, inbound_values, insert_inbound, stored_dedupe_key
from app.models import Finding, InboundEvent, utcnow
from app.observability import metrics
from app.runtime import Runtime
from kernel.canonical.validation import safe_text
from kernel.contract import Handshake, ReadLater, WebhookRequest
from kernel.errors import ConnectorError, PayloadError
from kernel.types import Unparsed

log = structlog.get_logger("gateway.quarantine")

QUARANTINED: Final = "quarantined"
INBOUND: sa.Table = InboundEvent.__table__  # type: ignore[attr-defined]
REASON_MAX = 2000  # a parser's message, kept in the row's note
REPLAY_HINT = "after a fix (a new gateway version), replay it: POST /api/v1/quarantine/{id}/replay"


async def quarantine(
    session: AsyncSession,
    connection_id: str,
    inbound_id: int,
    topic: str,
    reason: str,
    exc: PayloadError | None,
) -> None:
    """In the transaction that stored it: the finding, the counters and a log line that says
    what to do. ``exc`` is None for a record a poll read."""
    hint = REPLAY_HINT.format(id=inbound_id)
    what = "webhook" if exc is not None else "record read by a poll"
    session.add(
        Finding(
            kind="webhook_quarantined",
            connection_id=connection_id,
            entity_key=f"{connection_id}:inbound:{inbound_id}",
            message=f"a {topic} {what} from {connection_id} could not be parsed and is kept "
            f"in quarantine (inbound event {inbound_id}): {reason}; {hint}",
            data={"inbound_event_id": inbound_id, "topic": topic, "error": reason},
            created_at=utcnow(),
        )
    )
    if exc is not None:
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, QUARANTINED).inc()
    metrics.FINDINGS.labels("webhook_quarantined").inc()
    log.warning(
        f"{what} quarantined: its body could not be parsed; kept to be replayed"
        + ("; answered 200 so the sender neither retries nor unsubscribes" if exc else ""),
        connection_id=connection_id,
        topic=topic,
        inbound_event_id=inbound_id,
        error=reason,
        what_to_do=hint,
        # a parser crash: the traceback is what the fix needs
        exc_info=exc.__cause__ if exc is not None and exc.__cause__ is not None else None,
    )


async def keep_unparsed(session: AsyncSession, connection_id: str, record: Unparsed) -> None:
    """A record a poll could not parse, kept in quarantine like a webhook (the same version
    read again is the same row: its dedupe key), replayable by ``Connector.reparse``."""
    reason = safe_text(record.error, REASON_MAX)
    topic = record.topic if 0 < len(record.topic) <= TOPIC_MAX else "unparsed"
    inbound_id = await insert_inbound(
        session,
        inbound_values(
            connection_id,
            record.headers,
            record.body,
            topic=topic,
            dedupe_key=record.dedupe_key,
            status=QUARANTINED,
            note=reason,
        ),
    )
    if inbound_id is not None:
        await quarantine(session, connection_id, inbound_id, topic, reason, None)


# --- replay ------------------------------------------------------------------------------------

Outcome = Literal["recorded", "quarantined", "duplicate"]


@dataclass
class Replayed:
    id: int
    outcome: Outcome
    event_ids: list[int] = field(default_factory=list)
    error: str | None = None
    duplicate_of: int | None = None


async def replay(session: AsyncSession, rt: Runtime, inbound_id: int) -> Replayed:
    """Parse a quarantined webhook again with today's code, in the caller's transaction.

    Parsed: its events are recorded with the usual dedupe (a version already recorded, e.g.
    read by a backfill poll meanwhile, is not recorded again) and the row becomes an
    ordinary inbound event; the same delivery stored under another row: ``duplicate``, and
    nothing is recorded; still failing: it stays in quarantine with the new error.
    """
    row = await session.scalar(
        sa.select(InboundEvent).where(col(InboundEvent.id) == inbound_id).with_for_update()
    )
    if row is None or row.status != QUARANTINED:
        raise NotFound(
            f"no quarantined inbound event {inbound_id}",
            hint="GET /api/v1/quarantine lists them; a replayed one is an ordinary inbound "
            "event (GET /api/v1/inbound-events/{id})",
        )
    connector = rt.connector(row.connection_id)
    if connector is None:
        return Replayed(
            inbound_id,
            QUARANTINED,
            error=f"connection {row.connection_id!r} is not in the config; add it back to "
            "replay its quarantined webhooks",
        )
    request = WebhookRequest(headers=dict(row.headers), body=bytes(row.body))
    try:
        answer = await connector.reparse(request)
    except (PayloadError, ConnectorError) as exc:
        reason = safe_text(str(exc), REASON_MAX)
        await _set(session, inbound_id, note=reason)
        log.info(
            "quarantined webhook still cannot be parsed",
            connection_id=row.connection_id,
            inbound_event_id=inbound_id,
            error=reason,
        )
        return Replayed(inbound_id, QUARANTINED, error=reason)
    was = f"replayed from quarantine at {utcnow().isoformat(timespec='seconds')}; was: {row.note}"
    if isinstance(answer, Handshake):
        await _set(
            session, inbound_id, status="ignored", note=f"{was} (a handshake: nothing to record)"
        )
        return Replayed(inbound_id, "recorded")
    topic = answer.topic if 0 < len(answer.topic) <= TOPIC_MAX else row.topic
    key = stored_dedupe_key(answer.dedupe_key)
    other = await _same_delivery(session, row, topic, key)
    if other is not None:
        await _set(
            session,
            inbound_id,
            status="duplicate",
            note=f"{was}; the same delivery is inbound event {other}",
        )
        return Replayed(inbound_id, "duplicate", duplicate_of=other)
    if isinstance(answer, ReadLater):
        status = "to_read"
    else:
        status = "accepted" if answer.events else "ignored"
    # the row (locked above) becomes an ordinary inbound event of the parsed delivery
    await _set(session, inbound_id, topic=topic, dedupe_key=key, status=status, note=was)
    if isinstance(answer, ReadLater):
        await record_reads(session, inbound_id, row.connection_id, answer.refs)
        event_ids: list[int] = []
    else:
        fresh = await fresh_events(session, answer.events, webhook=True)
        recorded = await record_events(
            session, rt, row.connection_id, fresh, inbound_event_id=inbound_id
        )
        event_ids = recorded.event_ids
    log.info(
        "quarantined webhook replayed",
        connection_id=row.connection_id,
        inbound_event_id=inbound_id,
        topic=topic,
        event_ids=event_ids,
    )
    return Replayed(inbound_id, "recorded", event_ids=event_ids)


async def quarantined_ids(
    session: AsyncSession, connection_id: str | None, limit: int
) -> tuple[list[int], int]:
    """The oldest ``limit`` quarantined ids (of one connection) and how many there are."""
    where = [col(InboundEvent.status) == QUARANTINED]
    if connection_id is not None:
        where.append(col(InboundEvent.connection_id) == connection_id)
    ids = list(
        (
            await session.execute(
                sa.select(col(InboundEvent.id))
                .where(*where)
                .order_by(col(InboundEvent.id))
                .limit(limit)
            )
        ).scalars()
    )
    total = await session.scalar(sa.select(sa.func.count()).select_from(InboundEvent).where(*where))
    return [int(i) for i in ids if i is not None], int(total or 0)


async def refresh_quarantine_gauge(rt: Runtime) -> None:
    """``gateway_webhooks_quarantined`` from the database, per configured connection."""
    async with rt.sessions() as session:
        rows = (
            await session.execute(
                sa.select(col(InboundEvent.connection_id), sa.func.count())
                .where(col(InboundEvent.status) == QUARANTINED)
                .group_by(col(InboundEvent.connection_id))
            )
        ).all()
    counts = {str(c): int(n) for c, n in rows}
    for conn in rt.config.connections:
        metrics.WEBHOOKS_QUARANTINED.labels(conn.id).set(counts.get(conn.id, 0))


async def _same_delivery(
    session: AsyncSession, row: InboundEvent, topic: str, key: str
) -> int | None:
    """Another stored row of the same delivery: its dedupe key, or its body under its topic."""
    other = await session.scalar(
        sa.select(col(InboundEvent.id))
        .where(
            col(InboundEvent.connection_id) == row.connection_id,
            col(InboundEvent.id) != row.id,
            sa.or_(
                col(InboundEvent.dedupe_key) == key,
                sa.and_(
                    col(InboundEvent.topic) == topic,
                    col(InboundEvent.body_hash) == row.body_hash,
                ),
            ),
        )
        .order_by(col(InboundEvent.id))
        .limit(1)
    )
    return None if other is None else int(other)


async def _set(session: AsyncSession, inbound_id: int, **values: object) -> None:
    await session.execute(sa.update(INBOUND).where(INBOUND.c.id == inbound_id).values(**values))
