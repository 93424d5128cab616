"""Small SQL helpers that work on PostgreSQL and SQLite alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert


def insert_for(session: AsyncSession, table: Any) -> Insert:
    """A dialect insert that supports ON CONFLICT (both backends speak it)."""
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    module = sqlite if dialect == "sqlite" else postgresql
    return module.insert(table)  # type: ignore[no-any-return]
