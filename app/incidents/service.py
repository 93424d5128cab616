"""Reading incidents for the API: newest first, filtered, with their notifications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.incidents.engine import INCIDENTS, NOTICES
from app.incidents.schemas import IncidentOut, NoticeOut
from app.ops.pagination import Page, page_of
from app.ops.queries import newest_first


@dataclass(frozen=True)
class IncidentFilter:
    status: str | None = None
    kind: str | None = None
    connection_id: str | None = None
    flow: str | None = None

    def apply(self, stmt: Any) -> Any:
        for column, value in (
            (INCIDENTS.c.status, self.status),
            (INCIDENTS.c.kind, self.kind),
            (INCIDENTS.c.connection_id, self.connection_id),
            (INCIDENTS.c.flow, self.flow),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        return stmt


async def list_incidents(
    session: AsyncSession, where: IncidentFilter, cursor: str | None, limit: int
) -> Page[IncidentOut]:
    stmt = newest_first(where.apply(sa.select(INCIDENTS)), INCIDENTS.c.id, cursor, limit)
    rows = list((await session.execute(stmt)).all())
    items, next_cursor = page_of(rows, limit, lambda r: int(r.id))
    return Page(items=await _with_notices(session, items), next_cursor=next_cursor)


async def get_incident(session: AsyncSession, incident_id: int) -> IncidentOut:
    row = (
        await session.execute(sa.select(INCIDENTS).where(INCIDENTS.c.id == incident_id))
    ).one_or_none()
    if row is None:
        raise NotFound(f"no incident {incident_id}", hint="GET /api/v1/incidents lists them")
    return (await _with_notices(session, [row]))[0]


async def _with_notices(session: AsyncSession, rows: list[Any]) -> list[IncidentOut]:
    ids = [int(r.id) for r in rows]
    notices: dict[int, list[NoticeOut]] = {i: [] for i in ids}
    if ids:
        found = await session.execute(
            sa.select(NOTICES).where(NOTICES.c.incident_id.in_(ids)).order_by(NOTICES.c.id)
        )
        for n in found:
            notices[int(n.incident_id)].append(
                NoticeOut(
                    sink=n.sink,
                    message=n.message,
                    state=n.state,
                    attempts=n.attempts,
                    sent_at=n.sent_at,
                    next_attempt_at=n.next_attempt_at if n.state == "pending" else None,
                    last_error=n.last_error,
                )
            )
    return [
        IncidentOut(
            id=int(r.id),
            kind=r.kind,
            connection_id=r.connection_id,
            flow=r.flow,
            status=r.status,
            summary=r.summary,
            details=dict(r.details or {}),
            first_seen_at=r.first_seen_at,
            last_seen_at=r.last_seen_at,
            opened_at=r.opened_at,
            resolved_at=r.resolved_at,
            notifications=notices[int(r.id)],
        )
        for r in rows
    ]
