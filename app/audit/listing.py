"""Listing audit entries: newest first, filtered, in the standard page shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import AuditEntry
from app.ops.pagination import Page, page_of
from app.ops.queries import as_utc, newest_first


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str = Field(
        description="key:<first 8 hex digits of the API key's SHA-256> (never the key), "
        "or connection:<id> for an erase request a source sent"
    )
    role: str = Field(description="the key's role, or webhook")
    action: str = Field(description="e.g. delivery.replay, approval.approve, mapping.put")
    target: str = Field(description="what it acted on, e.g. delivery:42, mapping:sku/erp")
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    target: str | None = None
    since: datetime | None = None

    def apply(self, stmt: Any) -> Any:
        for column, value in (
            (AuditEntry.action, self.action),
            (AuditEntry.actor, self.actor),
            (AuditEntry.target, self.target),
        ):
            if value is not None:
                stmt = stmt.where(col(column) == value)
        if self.since is not None:
            stmt = stmt.where(col(AuditEntry.at) >= as_utc(self.since))
        return stmt


async def list_actions(
    session: AsyncSession, where: AuditFilter, cursor: str | None, limit: int
) -> Page[AuditOut]:
    stmt = newest_first(where.apply(sa.select(AuditEntry)), col(AuditEntry.id), cursor, limit)
    rows = list((await session.execute(stmt)).scalars())
    items, next_cursor = page_of(rows, limit, lambda r: int(r.id or 0))
    return Page(items=[AuditOut.model_validate(r) for r in items], next_cursor=next_cursor)
