"""Inbound events for operators: what each source sent (raw webhooks and polls), with the
canonical events parsed from it; one of them with its body and kept headers."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.api.pii import without_signatures
from app.errors import NotFound
from app.models import CanonicalEventRow, InboundEvent
from app.ops.pagination import Page, page_of
from app.ops.queries import newest_first
from app.ops.schemas import InboundDetail, InboundOut


@dataclass(frozen=True)
class InboundFilter:
    connection_id: str | None = None
    topic: str | None = None
    status: str | None = None

    def apply(self, stmt: Any) -> Any:
        for column, value in (
            (InboundEvent.connection_id, self.connection_id),
            (InboundEvent.topic, self.topic),
            (InboundEvent.status, self.status),
        ):
            if value is not None:
                stmt = stmt.where(col(column) == value)
        return stmt


_INBOUND_COLUMNS = (
    col(InboundEvent.id),
    col(InboundEvent.connection_id),
    col(InboundEvent.topic),
    col(InboundEvent.dedupe_key),
    col(InboundEvent.received_at),
    col(InboundEvent.status),
    col(InboundEvent.note),
    sa.func.length(col(InboundEvent.body)).label("body_bytes"),
)


async def _event_ids_of(session: AsyncSession, inbound_ids: Iterable[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {i: [] for i in inbound_ids}
    if found:
        rows = await session.execute(
            sa.select(col(CanonicalEventRow.inbound_event_id), col(CanonicalEventRow.id))
            .where(col(CanonicalEventRow.inbound_event_id).in_(list(found)))
            .order_by(col(CanonicalEventRow.id))
        )
        for inbound_id, event_id in rows:
            found[int(inbound_id or 0)].append(int(event_id or 0))
    return found


async def list_inbound_events(
    session: AsyncSession, where: InboundFilter, cursor: str | None, limit: int
) -> Page[InboundOut]:
    stmt = newest_first(
        where.apply(sa.select(*_INBOUND_COLUMNS)), col(InboundEvent.id), cursor, limit
    )
    rows, next_cursor = page_of((await session.execute(stmt)).all(), limit, lambda r: int(r.id))
    event_ids = await _event_ids_of(session, (int(r.id) for r in rows))
    items = [InboundOut(**r._mapping, event_ids=event_ids[int(r.id)]) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


def _body_text(body: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


async def get_inbound_event(session: AsyncSession, inbound_id: int) -> InboundDetail:
    row = await session.get(InboundEvent, inbound_id)
    if row is None:
        raise NotFound(f"no inbound event {inbound_id}")
    body, encoding = _body_text(bytes(row.body))
    event_ids = await _event_ids_of(session, [inbound_id])
    return InboundDetail(
        id=inbound_id,
        connection_id=row.connection_id,
        topic=row.topic,
        dedupe_key=row.dedupe_key,
        received_at=row.received_at,
        status=row.status,
        note=row.note,
        body_bytes=len(row.body),
        event_ids=event_ids[inbound_id],
        # rows stored before signatures were dropped at ingest still hold them: never shown
        headers=without_signatures(row.headers),
        body=body,
        body_encoding=encoding,
        purged_at=row.purged_at,
    )
