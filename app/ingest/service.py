"""Ingest: verify, dedupe, store raw + canonical + outbox rows in one transaction.

The caller's transaction commits before the HTTP answer goes out; deliveries are queued
only after that commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import id_list, insert_for
from app.errors import BadRequest, NotFound, Unauthorized, Unprocessable
from app.flows.recorder import record_events
from app.models import CanonicalEventRow, InboundEvent, utcnow
from app.observability import metrics
from app.runtime import Runtime
from connectors.base import ParsedWebhook, PayloadError, SignatureError

log = structlog.get_logger("gateway.ingest")

# Kept with the raw body for audit and replay; credentials never are.
_DROPPED_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}


@dataclass
class IngestResult:
    inbound_event_id: int
    event_ids: list[int]
    duplicate: bool
    topic: str


async def ingest_webhook(
    session: AsyncSession, rt: Runtime, connection_id: str, headers: Mapping[str, str], body: bytes
) -> IngestResult:
    connector = rt.connector(connection_id)
    if connector is None:
        metrics.WEBHOOKS_RECEIVED.labels("unknown", "rejected").inc()
        raise NotFound(
            f"no connection {connection_id!r}",
            hint="webhook URLs are /webhooks/<connection id from the config>",
        )
    try:
        connector.verify_signature(headers, body)
    except SignatureError as exc:
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, "rejected").inc()
        log.warning("webhook rejected: bad signature", connection_id=connection_id, reason=str(exc))
        raise Unauthorized(
            f"signature check failed: {exc}",
            hint="check the webhook secret configured for this connection",
        ) from None
    try:
        parsed = connector.parse_webhook(headers, body)
    except PayloadError as exc:
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, "rejected").inc()
        log.warning("webhook rejected: unparseable", connection_id=connection_id, reason=str(exc))
        error = BadRequest if exc.status_code == 400 else Unprocessable
        raise error(str(exc)) from None

    inbound_id = await _insert_inbound(session, connection_id, headers, body, parsed)
    if inbound_id is None:
        return await _duplicate(session, connection_id, parsed)

    recorded = await record_events(
        session, rt, connection_id, parsed.events, inbound_event_id=inbound_id
    )
    metrics.WEBHOOKS_RECEIVED.labels(connection_id, "accepted").inc()
    log.info(
        "webhook accepted",
        connection_id=connection_id,
        topic=parsed.topic,
        inbound_event_id=inbound_id,
        event_ids=recorded.event_ids,
        delivery_ids=recorded.delivery_ids,
    )
    return IngestResult(inbound_id, recorded.event_ids, False, parsed.topic)


async def _insert_inbound(
    session: AsyncSession,
    connection_id: str,
    headers: Mapping[str, str],
    body: bytes,
    parsed: ParsedWebhook,
) -> int | None:
    """Insert the raw event; None when (connection, dedupe key) is already stored."""
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}
    values = {
        "connection_id": connection_id,
        "topic": parsed.topic,
        "dedupe_key": parsed.dedupe_key[:256],
        "received_at": utcnow(),
        "headers": kept,
        "body": body,
        "status": "accepted" if parsed.events else "ignored",
        "note": None if parsed.events else f"topic {parsed.topic} is stored, not routed",
    }
    return await session.scalar(_insert_inbound_statement(session), values)


_INBOUND_INSERTS: dict[str, Any] = {}


def _insert_inbound_statement(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, built once per dialect (values bound)."""
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    stmt = _INBOUND_INSERTS.get(dialect)
    if stmt is None:
        stmt = (
            insert_for(session, InboundEvent)
            .on_conflict_do_nothing(index_elements=["connection_id", "dedupe_key"])
            .returning(col(InboundEvent.id))
        )
        _INBOUND_INSERTS[dialect] = stmt
    return stmt


async def _duplicate(
    session: AsyncSession, connection_id: str, parsed: ParsedWebhook
) -> IngestResult:
    original = await session.scalar(
        sa.select(col(InboundEvent.id)).where(
            col(InboundEvent.connection_id) == connection_id,
            col(InboundEvent.dedupe_key) == parsed.dedupe_key[:256],
        )
    )
    assert original is not None
    ids = (
        (
            await session.execute(
                sa.select(col(CanonicalEventRow.id))
                .where(col(CanonicalEventRow.inbound_event_id) == original)
                .order_by(col(CanonicalEventRow.id))
            )
        )
        .scalars()
        .all()
    )
    metrics.WEBHOOKS_RECEIVED.labels(connection_id, "duplicate").inc()
    log.info(
        "duplicate webhook acknowledged",
        connection_id=connection_id,
        inbound_event_id=original,
        dedupe_key=parsed.dedupe_key,
    )
    return IngestResult(int(original), id_list(ids), True, parsed.topic)
