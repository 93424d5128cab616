"""Reading erase requests for the operator API; the work itself is ``app.erasure.job``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.erasure.refs import ERASURES
from app.erasure.schemas import ErasureOut
from app.errors import NotFound
from app.ops.pagination import Page, decode_cursor, page_of

_COLUMNS = [c for c in ERASURES.c if c.name not in ("ref_hashes", "cursor", "leased_until")]


def _out(row: Any) -> ErasureOut:
    values = dict(row._mapping)
    values["event_id"] = values.pop("canonical_event_id")
    return ErasureOut(**values)


async def list_erasures(
    session: AsyncSession,
    *,
    status: str | None,
    source: str | None,
    cursor: str | None,
    limit: int,
) -> Page[ErasureOut]:
    stmt = sa.select(*_COLUMNS)
    if status:
        stmt = stmt.where(ERASURES.c.status == status)
    if source:
        stmt = stmt.where(ERASURES.c.source == source)
    after = decode_cursor(cursor, int)
    if after is not None:
        stmt = stmt.where(ERASURES.c.id < after)
    rows = (await session.execute(stmt.order_by(ERASURES.c.id.desc()).limit(limit + 1))).all()
    items, next_cursor = page_of(rows, limit, lambda r: int(r.id))
    return Page(items=[_out(r) for r in items], next_cursor=next_cursor)


async def get_erasure(session: AsyncSession, erasure_id: int) -> ErasureOut:
    row = (await session.execute(sa.select(*_COLUMNS).where(ERASURES.c.id == erasure_id))).first()
    if row is None:
        raise NotFound(f"no erase request {erasure_id}", hint="GET /api/v1/erasures lists them")
    return _out(row)
