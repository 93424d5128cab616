"""Mapping data: our key → the remote system's key, per kind and connection.

Mappings are data, not code: the config seeds them, operators change them through the API,
and adding a missing one releases the deliveries that were parked waiting for it.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.config import GatewayConfig
from app.dbutil import insert_for, rowcount
from app.models import Mapping, utcnow
from connectors.base import MappingNeed


async def seed_from_config(session: AsyncSession, config: GatewayConfig) -> int:
    """Insert the config's mappings that the database does not have yet (API edits win)."""
    rows = [
        {
            "kind": kind,
            "connection_id": conn,
            "our_key": ours,
            "their_key": theirs,
            "origin": "config",
            "updated_at": utcnow(),
        }
        for kind, per_conn in config.mappings.items()
        for conn, entries in per_conn.items()
        for ours, theirs in entries.items()
    ]
    if not rows:
        return 0
    stmt = (
        insert_for(session, Mapping)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["kind", "connection_id", "our_key"])
    )
    result = await session.execute(stmt)
    return rowcount(result)


async def resolve(
    session: AsyncSession, connection_id: str, needs: Iterable[MappingNeed]
) -> tuple[dict[str, dict[str, str]], list[MappingNeed]]:
    """Look up every need; return (kind → our → their, the needs that have no mapping)."""
    needs = list(dict.fromkeys(needs))
    if not needs:
        return {}, []
    kinds = {n.kind for n in needs}
    keys = {n.key for n in needs}
    rows = await session.execute(
        sa.select(col(Mapping.kind), col(Mapping.our_key), col(Mapping.their_key)).where(
            col(Mapping.connection_id) == connection_id,
            col(Mapping.kind).in_(kinds),
            col(Mapping.our_key).in_(keys),
        )
    )
    found: dict[str, dict[str, str]] = {}
    for kind, ours, theirs in rows:
        found.setdefault(kind, {})[ours] = theirs
    missing = [n for n in needs if n.key not in found.get(n.kind, {})]
    return found, missing


# Rows per INSERT: 6 bind parameters each stays far below SQLite's and asyncpg's 32 767.
UPSERT_CHUNK = 1000


async def upsert_entries(
    session: AsyncSession, kind: str, connection_id: str, entries: dict[str, str]
) -> int:
    """Insert or overwrite entries (in chunks, so any size fits one statement's limits)."""
    if not entries:
        return 0
    now = utcnow()
    items = list(entries.items())
    for start in range(0, len(items), UPSERT_CHUNK):
        stmt = insert_for(session, Mapping).values(
            [
                {
                    "kind": kind,
                    "connection_id": connection_id,
                    "our_key": ours,
                    "their_key": theirs,
                    "origin": "api",
                    "updated_at": now,
                }
                for ours, theirs in items[start : start + UPSERT_CHUNK]
            ]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["kind", "connection_id", "our_key"],
            set_={"their_key": stmt.excluded.their_key, "origin": "api", "updated_at": now},
        )
        await session.execute(stmt)
    return len(items)


async def list_entries(
    session: AsyncSession, kind: str, connection_id: str, *, after: str | None, limit: int
) -> list[Mapping]:
    query = sa.select(Mapping).where(
        col(Mapping.kind) == kind, col(Mapping.connection_id) == connection_id
    )
    if after is not None:
        query = query.where(col(Mapping.our_key) > after)
    result = await session.execute(query.order_by(col(Mapping.our_key)).limit(limit))
    return list(result.scalars())


async def delete_entries(
    session: AsyncSession, kind: str, connection_id: str, keys: list[str] | None
) -> int:
    stmt = sa.delete(Mapping).where(
        col(Mapping.kind) == kind, col(Mapping.connection_id) == connection_id
    )
    if keys is not None:
        stmt = stmt.where(col(Mapping.our_key).in_(keys))
    result = await session.execute(stmt)
    return rowcount(result)
