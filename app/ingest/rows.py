"""The raw ``inbound_events`` row: what is kept of a webhook's request (its headers without
credentials or signatures, its dedupe key within the column's width), inserted once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.dbutil import insert_for
from app.models import InboundEvent, utcnow

# Kept with the raw body for audit and replay; credentials never are, nor signatures: a
# stored body with its signature is replay material for anyone who can read it.
_DROPPED_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}
_DROPPED_MARKERS = ("signature", "hmac")
# dedupe keys longer than this are stored as their hash (never cut: two keys sharing a long
# prefix are different events)
DEDUPE_KEY_MAX = 256
TOPIC_MAX = 128  # the column's width


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


async def insert_inbound(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert the raw event (its row: ``inbound_values``); None when it is already stored: the
    same dedupe key, or the same body under the same topic (a replayed body with a fresh
    webhook id is still a replay)."""
    return await session.scalar(_insert_inbound_statement(session), values)


def inbound_values(
    connection_id: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    topic: str,
    dedupe_key: str,
    status: str,
    note: str | None,
    body_hash: str | None = None,
) -> dict[str, Any]:
    """The ``inbound_events`` row of one webhook (its id aside); ``body_hash``: the body's
    SHA-256 when the caller has it already."""
    return {
        "connection_id": connection_id,
        "topic": topic,
        "dedupe_key": stored_dedupe_key(dedupe_key),
        "body_hash": body_hash or hashlib.sha256(body).hexdigest(),
        "received_at": utcnow(),
        "headers": stored_headers(headers),
        "body": body,
        "status": status,
        "note": note,
    }


_INBOUND_INSERTS: dict[str, Any] = {}


def _insert_inbound_statement(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, built once per dialect (values bound).

    No conflict target: either unique key (dedupe key, or topic + body hash) makes it a
    duplicate.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    stmt = _INBOUND_INSERTS.get(dialect)
    if stmt is None:
        # the Core table, not the ORM class: the ORM's bulk-insert path cost more CPU than
        # the statement itself, and nothing here needs ORM objects
        table = InboundEvent.__table__  # type: ignore[attr-defined]
        stmt = insert_for(session, table).on_conflict_do_nothing().returning(table.c.id)
        _INBOUND_INSERTS[dialect] = stmt
    return stmt
