"""Small SQL helpers that work on PostgreSQL and SQLite alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession, table: Any) -> Any:
    """A dialect insert (postgresql or sqlite) that supports ON CONFLICT; both speak it."""
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    module = sqlite if dialect == "sqlite" else postgresql
    return module.insert(table)


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE/DELETE (a CursorResult attribute the stubs hide)."""
    return int(result.rowcount or 0)


def id_list(values: Any) -> list[int]:
    """Primary keys from a scalar result, as plain ints."""
    return [int(v) for v in values if v is not None]
