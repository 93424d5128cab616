"""Ingest: verify, dedupe, store raw + canonical + outbox rows in one transaction.

The caller's transaction commits before the HTTP answer goes out; deliveries are queued
only after that commit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dbutil import id_list, insert_for
from app.errors import BadRequest, NotFound, ServiceUnavailable, Unauthorized, Unprocessable
from app.flows.recorder import record_events
from app.ingest.reads import record_reads
from app.models import CanonicalEventRow, InboundEvent, utcnow
from app.observability import metrics
from app.runtime import Runtime
from kernel.contract import Handshake, ReadLater, WebhookRequest
from kernel.errors import (
    ConnectorError,
    PayloadError,
    RateLimitedError,
    SignatureError,
    TransientError,
)
from kernel.types import ParsedWebhook

log = structlog.get_logger("gateway.ingest")

# Kept with the raw body for audit and replay; credentials never are, nor signatures: a
# stored body with its signature is replay material for anyone who can read it.
_DROPPED_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}
_DROPPED_MARKERS = ("signature", "hmac")
# Deeper JSON is refused before any parser (or the erasure walk) meets it.
MAX_JSON_DEPTH = 64
_JSON_TOKENS = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)
# dedupe keys longer than this are stored as their hash (never cut: two keys sharing a long
# prefix are different events)
DEDUPE_KEY_MAX = 256
TOPIC_MAX = 128  # the column's width


@dataclass
class IngestResult:
    inbound_event_id: int
    event_ids: list[int]
    duplicate: bool
    topic: str
    # records the notification named, read by a job (thin webhooks)
    to_read: int = 0


@dataclass
class HandshakeResult:
    """Answer the sender as the connector said (a subscription's validation); nothing stored."""

    status: int
    body: bytes
    content_type: str


async def ingest_webhook(
    session: AsyncSession,
    rt: Runtime,
    connection_id: str,
    headers: Mapping[str, str],
    body: bytes,
    query: Mapping[str, str] | None = None,
) -> IngestResult | HandshakeResult:
    connector = rt.connector(connection_id)
    if connector is None:
        metrics.WEBHOOKS_RECEIVED.labels("unknown", "rejected").inc()
        raise NotFound(
            f"no connection {connection_id!r}",
            hint="webhook URLs are /webhooks/<connection id from the config>",
        )
    request = WebhookRequest(headers=headers, body=body, query=dict(query or {}))
    try:
        _check_depth(body)
        answer = await connector.receive(request)
    except SignatureError as exc:
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, "rejected").inc()
        log.warning("webhook rejected: bad signature", connection_id=connection_id, reason=str(exc))
        raise Unauthorized(
            f"signature check failed: {exc}",
            hint="check the webhook secret configured for this connection",
        ) from None
    except PayloadError as exc:
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, "rejected").inc()
        log.warning("webhook rejected: unparseable", connection_id=connection_id, reason=str(exc))
        error = BadRequest if exc.status_code == 400 else Unprocessable
        raise error(str(exc)) from None
    except (TransientError, RateLimitedError) as exc:  # it needed its system, which is away
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, "rejected").inc()
        log.warning("webhook not taken: the source is away", connection_id=connection_id)
        raise ServiceUnavailable(
            f"could not take the webhook now: {exc}",
            hint="the sender retries; nothing was stored",
            headers={"Retry-After": "30"},
        ) from None
    except ConnectorError as exc:
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, "rejected").inc()
        raise Unprocessable(str(exc)) from None
    if isinstance(answer, Handshake):
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, "handshake").inc()
        log.info("webhook handshake answered", connection_id=connection_id, status=answer.status)
        return HandshakeResult(answer.status, answer.body, answer.content_type)

    if len(answer.topic) > TOPIC_MAX:
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, "rejected").inc()
        raise BadRequest(f"topic is longer than {TOPIC_MAX} characters")
    inbound_id = await _insert_inbound(session, connection_id, headers, body, answer)
    if inbound_id is None:
        return await _duplicate(session, connection_id, answer, hashlib.sha256(body).hexdigest())
    if isinstance(answer, ReadLater):
        await record_reads(session, inbound_id, connection_id, answer.refs)
        metrics.WEBHOOKS_RECEIVED.labels(connection_id, "accepted").inc()
        log.info(
            "webhook accepted; its records are read by the reads job",
            connection_id=connection_id,
            topic=answer.topic,
            inbound_event_id=inbound_id,
            refs=len(answer.refs),
        )
        return IngestResult(inbound_id, [], False, answer.topic, to_read=len(answer.refs))

    recorded = await record_events(
        session, rt, connection_id, answer.events, inbound_event_id=inbound_id
    )
    metrics.WEBHOOKS_RECEIVED.labels(connection_id, "accepted").inc()
    log.info(
        "webhook accepted",
        connection_id=connection_id,
        topic=answer.topic,
        inbound_event_id=inbound_id,
        event_ids=recorded.event_ids,
        delivery_ids=recorded.delivery_ids,
    )
    return IngestResult(inbound_id, recorded.event_ids, False, answer.topic)


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in ((k.lower(), v) for k, v in headers.items())
        if name not in _DROPPED_HEADERS and not any(m in name for m in _DROPPED_MARKERS)
    }


def stored_dedupe_key(key: str) -> str:
    if len(key) <= DEDUPE_KEY_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _check_depth(body: bytes) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH (a structural scan, no parsing)."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return
    depth = 0
    in_string = False
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token == b'"':
            in_string = not in_string
        elif in_string:
            continue
        elif token in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif token in (b"]", b"}"):
            depth -= 1


async def _insert_inbound(
    session: AsyncSession,
    connection_id: str,
    headers: Mapping[str, str],
    body: bytes,
    parsed: ParsedWebhook | ReadLater,
) -> int | None:
    """Insert the raw event; None when it is already stored: the same dedupe key, or the same
    body under the same topic (a replayed body with a fresh webhook id is still a replay)."""
    values = {
        "connection_id": connection_id,
        "topic": parsed.topic,
        "dedupe_key": stored_dedupe_key(parsed.dedupe_key),
        "body_hash": hashlib.sha256(body).hexdigest(),
        "received_at": utcnow(),
        "headers": stored_headers(headers),
        "body": body,
        "status": _status_of(parsed),
        "note": _note_of(parsed),
    }
    return await session.scalar(_insert_inbound_statement(session), values)


_INBOUND_INSERTS: dict[str, Any] = {}


def _insert_inbound_statement(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, built once per dialect (values bound).

    No conflict target: either unique key (dedupe key, or topic + body hash) makes it a
    duplicate.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    stmt = _INBOUND_INSERTS.get(dialect)
    if stmt is None:
        stmt = (
            insert_for(session, InboundEvent)
            .on_conflict_do_nothing()
            .returning(col(InboundEvent.id))
        )
        _INBOUND_INSERTS[dialect] = stmt
    return stmt


def _status_of(parsed: ParsedWebhook | ReadLater) -> str:
    if isinstance(parsed, ReadLater):
        return "to_read"
    return "accepted" if parsed.events else "ignored"


def _note_of(parsed: ParsedWebhook | ReadLater) -> str | None:
    if isinstance(parsed, ReadLater):
        return f"{len(parsed.refs)} record(s) to read from the source"
    return None if parsed.events else f"topic {parsed.topic} is stored, not routed"


async def _duplicate(
    session: AsyncSession,
    connection_id: str,
    parsed: ParsedWebhook | ReadLater,
    body_hash: str,
) -> IngestResult:
    original = await session.scalar(
        sa.select(col(InboundEvent.id))
        .where(
            col(InboundEvent.connection_id) == connection_id,
            sa.or_(
                col(InboundEvent.dedupe_key) == stored_dedupe_key(parsed.dedupe_key),
                sa.and_(
                    col(InboundEvent.topic) == parsed.topic,
                    col(InboundEvent.body_hash) == body_hash,
                ),
            ),
        )
        .order_by(col(InboundEvent.id))
        .limit(1)
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
