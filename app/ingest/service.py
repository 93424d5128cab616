"""Ingest: verify, dedupe, store raw + canonical + outbox rows atomically.

An order webhook on Postgres is written in one statement (``app.ingest.one_statement``);
anything else in one transaction. Either commits before the HTTP answer goes out, and
deliveries are queued only after that commit. A signed body the connector cannot parse is
kept in quarantine (``app.ingest.quarantine``) and acknowledged, unless the connector
refuses such bodies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import autocommit, transaction
from app.errors import BadRequest, NotFound, ServiceUnavailable, Unauthorized, Unprocessable
from app.flows.recorder import record_events
from app.ingest import one_statement
from app.ingest.dedupe import fresh_events
from app.ingest.quarantine import REASON_MAX, quarantine
from app.ingest.reads import record_reads
from app.ingest.recent import RECENT_BODIES
from app.ingest.rows import (
    TOPIC_MAX,
    inbound_values,
    insert_inbound,
    stored_dedupe_key,
)
from app.models import CanonicalEventRow, InboundEvent
from app.observability import metrics
from app.runtime import Runtime
from kernel.canonical.validation import safe_text
from kernel.contract import Connector, Handshake, ReadLater, WebhookRequest
from kernel.errors import (
    ConnectorError,
    PayloadError,
    RateLimitedError,
    SignatureError,
    TransientError,
)
from kernel.types import ParsedWebhook

log = structlog.get_logger("gateway.ingest")

# Deeper JSON is refused before any parser (or the erasure walk) meets it.
MAX_JSON_DEPTH = 64
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_OPENING = frozenset(b"[{")


@dataclass
class IngestResult:
    inbound_event_id: int
    event_ids: list[int]
    duplicate: bool
    topic: str
    # records the notification named, read by a job (thin webhooks)
    to_read: int = 0
    # kept in quarantine: signed, but the parser could not handle the body (the reason)
    quarantined: str | None = None


@dataclass
class HandshakeResult:
    """Answer the sender as the connector said (a subscription's validation); nothing stored."""

    status: int
    body: bytes
    content_type: str


async def ingest_webhook(
    rt: Runtime,
    connection_id: str,
    headers: Mapping[str, str],
    body: bytes,
    query: Mapping[str, str] | None = None,
) -> IngestResult | HandshakeResult:
    """Verify and parse the webhook, then store it: committed before this returns, its
    deliveries queued after the commit."""
    connector = rt.connector(connection_id)
    if connector is None:
        metrics.WEBHOOKS_RECEIVED.labels("unknown", "rejected").inc()
        raise NotFound(
            f"no connection {connection_id!r}",
            hint="webhook URLs are /webhooks/<connection id from the config>",
        )
    body_hash = hashlib.sha256(body).hexdigest()
    resent = await _resent(rt, connector, connection_id, headers, body, body_hash)
    if resent is not None:
        return resent
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
        if exc.signed and connector.unparseable == "quarantine":
            async with transaction(rt.sessions) as session:
                return await _quarantined(session, connection_id, headers, body, body_hash, exc)
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
    inbound = inbound_values(
        connection_id,
        headers,
        body,
        topic=answer.topic,
        dedupe_key=answer.dedupe_key,
        status=_status_of(answer),
        note=_note_of(answer),
        body_hash=body_hash,
    )
    if isinstance(answer, ParsedWebhook) and one_statement.takes(
        rt.engine.dialect.name, answer.events
    ):
        async with autocommit(rt.engine, rt.sessions) as session:
            result = await _store_orders(session, rt, connection_id, inbound, answer)
        if result is not None:
            return result
    async with transaction(rt.sessions) as session:
        return await _store(session, rt, connection_id, inbound, answer)


async def _resent(
    rt: Runtime,
    connector: Connector,
    connection_id: str,
    headers: Mapping[str, str],
    body: bytes,
    body_hash: str,
) -> IngestResult | None:
    """A body this process stored lately, re-sent under the topic its headers name: answered
    from the stored original once the signature holds, without parsing it again (the parse
    is most of a webhook's CPU). None: the usual path decides (nothing was read or written
    unless the body was seen here)."""
    topic = connector.resent_topic(headers)
    if topic is None or (connection_id, topic, body_hash) not in RECENT_BODIES:
        return None
    try:
        connector.verify_signature(headers, body)
    except SignatureError:
        return None  # the usual path refuses it and says why
    async with autocommit(rt.engine, rt.sessions) as session:
        return await _original(session, connection_id, topic, None, body_hash)


async def _store_orders(
    session: AsyncSession,
    rt: Runtime,
    connection_id: str,
    inbound: dict[str, Any],
    answer: ParsedWebhook,
) -> IngestResult | None:
    """An order webhook in one write statement (``app.ingest.one_statement``); None: it
    needs the general path (nothing was written)."""
    body_key = (connection_id, answer.topic, inbound["body_hash"])
    if body_key in RECENT_BODIES:
        original = await _original(
            session, connection_id, answer.topic, answer.dedupe_key, inbound["body_hash"]
        )
        if original is not None:
            return original
    written = await one_statement.write_in_one_statement(
        session, rt, connection_id, inbound, answer.events
    )
    if written is None:
        return None
    RECENT_BODIES.add(body_key)
    if written.inbound_event_id is None:
        return await _duplicate(
            session, connection_id, answer.topic, answer.dedupe_key, inbound["body_hash"]
        )
    _accepted(
        connection_id, answer, written.inbound_event_id, written.event_ids, written.delivery_ids
    )
    return IngestResult(written.inbound_event_id, written.event_ids, False, answer.topic)


async def _store(
    session: AsyncSession,
    rt: Runtime,
    connection_id: str,
    inbound: dict[str, Any],
    answer: ParsedWebhook | ReadLater,
) -> IngestResult:
    """The general path: one transaction, a statement per row."""
    inbound_id = await insert_inbound(session, inbound)
    if inbound_id is None:
        return await _duplicate(
            session, connection_id, answer.topic, answer.dedupe_key, inbound["body_hash"]
        )
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

    # the same version may already be here (read by a backfill poll before a late retry)
    fresh = await fresh_events(session, answer.events, webhook=True)
    recorded = await record_events(session, rt, connection_id, fresh, inbound_event_id=inbound_id)
    _accepted(connection_id, answer, inbound_id, recorded.event_ids, recorded.delivery_ids)
    return IngestResult(inbound_id, recorded.event_ids, False, answer.topic)


def _accepted(
    connection_id: str,
    answer: ParsedWebhook,
    inbound_id: int,
    event_ids: list[int],
    delivery_ids: list[int],
) -> None:
    if len(event_ids) < len(answer.events):
        log.info(
            "webhook events already recorded; not recorded again",
            connection_id=connection_id,
            inbound_event_id=inbound_id,
            unchanged=len(answer.events) - len(event_ids),
        )
    metrics.WEBHOOKS_RECEIVED.labels(connection_id, "accepted").inc()
    log.info(
        "webhook accepted",
        connection_id=connection_id,
        topic=answer.topic,
        inbound_event_id=inbound_id,
        event_ids=event_ids,
        delivery_ids=delivery_ids,
    )


def _check_depth(body: bytes) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH (a structural scan, no parsing).

    Escapes go first (``\\\\`` pairs, then ``\\"``), so every quote left opens or closes a
    string; then only quotes and brackets are kept (C-speed byte passes), the strings between
    quotes dropped, and the few brackets left walked. A regex cutting strings out of the whole
    body cost ~90 us per Shopify order, twice the JSON parse.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # even pieces lie outside strings; an unterminated string runs to the end (an odd piece)
    structure = b"".join(unescaped.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    depth = 0
    for byte in structure:
        if byte in _OPENING:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        else:
            depth -= 1


def _status_of(parsed: ParsedWebhook | ReadLater) -> str:
    if isinstance(parsed, ReadLater):
        return "to_read"
    return "accepted" if parsed.events else "ignored"


def _note_of(parsed: ParsedWebhook | ReadLater) -> str | None:
    if isinstance(parsed, ReadLater):
        return f"{len(parsed.refs)} record(s) to read from the source"
    return None if parsed.events else f"topic {parsed.topic} is stored, not routed"


async def _quarantined(
    session: AsyncSession,
    connection_id: str,
    headers: Mapping[str, str],
    body: bytes,
    body_hash: str,
    exc: PayloadError,
) -> IngestResult:
    """Keep a signed body the parser refused (or crashed on); a re-sent copy is a duplicate."""
    topic = _quarantine_topic(exc.topic)
    dedupe_key = exc.dedupe_key or "sha256:" + body_hash
    # stored and shown: a parser's message may quote the body (NUL, lone surrogates)
    reason = safe_text(str(exc), REASON_MAX)
    inbound_id = await insert_inbound(
        session,
        inbound_values(
            connection_id,
            headers,
            body,
            topic=topic,
            dedupe_key=dedupe_key,
            status="quarantined",
            note=reason,
            body_hash=body_hash,
        ),
    )
    if inbound_id is None:
        return await _duplicate(session, connection_id, topic, dedupe_key, body_hash)
    await quarantine(session, connection_id, inbound_id, topic, reason, exc)
    return IngestResult(inbound_id, [], False, topic, quarantined=reason)


def _quarantine_topic(topic: str | None) -> str:
    """The connector's topic when it is storable, else a placeholder."""
    text = (topic or "").strip()
    return text if 0 < len(text) <= TOPIC_MAX else "unparsed"


async def _duplicate(
    session: AsyncSession,
    connection_id: str,
    topic: str,
    dedupe_key: str,
    body_hash: str,
) -> IngestResult:
    result = await _original(session, connection_id, topic, dedupe_key, body_hash)
    assert result is not None, "called once the insert found the original"
    return result


async def _original(
    session: AsyncSession,
    connection_id: str,
    topic: str,
    dedupe_key: str | None,
    body_hash: str,
) -> IngestResult | None:
    """The answer to a re-sent webhook: its stored original (by its dedupe key or its body;
    by its body alone without a key); None when none is stored."""
    rows = (
        await session.execute(
            _DUPLICATE,
            {
                "connection_id": connection_id,
                # NULL matches no key: the body decides
                "dedupe_key": None if dedupe_key is None else stored_dedupe_key(dedupe_key),
                "topic": topic,
                "body_hash": body_hash,
            },
        )
    ).all()
    if not rows:
        return None
    row = rows[0]
    ids = [int(event_id) for *_, event_id in rows if event_id is not None]
    metrics.WEBHOOKS_RECEIVED.labels(connection_id, "duplicate").inc()
    log.info(
        "duplicate webhook acknowledged",
        connection_id=connection_id,
        inbound_event_id=row.id,
        dedupe_key=dedupe_key,
    )
    quarantined = (row.note or "quarantined") if row.status == "quarantined" else None
    return IngestResult(int(row.id), ids, True, topic, quarantined=quarantined)


_INBOUND = InboundEvent.__table__.c  # type: ignore[attr-defined]
_EVENTS_TABLE: sa.Table = CanonicalEventRow.__table__  # type: ignore[attr-defined]
_EVENTS = _EVENTS_TABLE.c
# The stored original of a re-sent webhook (the same dedupe key, or the same body under the
# same topic) with its events' ids: one statement, built once (the hot-order path runs it).
_ORIGINAL = (
    sa.select(_INBOUND.id, _INBOUND.status, _INBOUND.note)
    .where(
        _INBOUND.connection_id == sa.bindparam("connection_id"),
        sa.or_(
            _INBOUND.dedupe_key == sa.bindparam("dedupe_key"),
            sa.and_(
                _INBOUND.topic == sa.bindparam("topic"),
                _INBOUND.body_hash == sa.bindparam("body_hash"),
            ),
        ),
    )
    .order_by(_INBOUND.id)
    .limit(1)
    .subquery()
)
_DUPLICATE = (
    sa.select(_ORIGINAL.c.id, _ORIGINAL.c.status, _ORIGINAL.c.note, _EVENTS.id.label("event_id"))
    .select_from(_ORIGINAL.outerjoin(_EVENTS_TABLE, _EVENTS.inbound_event_id == _ORIGINAL.c.id))
    .order_by(_EVENTS.id)
)
