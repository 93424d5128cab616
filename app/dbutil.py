"""Small SQL helpers that work on PostgreSQL and SQLite alike.

``upsert`` and ``insert_ignore`` are the one way to write "insert, or on a key conflict
update (or leave) the existing row": both dialects speak ``ON CONFLICT``, and the key names
the unique index the conflict is on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

Values = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def constant(value: str) -> Any:
    """One of our own string constants (a status, an error class) written into the SQL, not
    bound. Prepared statements get a generic plan after five runs, one that cannot see bound
    values: ``status = $1`` then never matches a partial index's ``WHERE status = 'pending'``
    nor the status statistics, and the query reads the table whole."""
    if "'" in value or "\\" in value:
        raise ValueError(f"not a SQL-safe constant: {value!r}")
    return sa.literal_column(f"'{value}'")


def constants(values: Sequence[str]) -> list[Any]:
    """``constant`` of each, for an ``IN (...)`` written into the SQL."""
    return [constant(v) for v in values]


def insert_for(session: AsyncSession, table: Any) -> Any:
    """A dialect insert (postgresql or sqlite) that supports ON CONFLICT; both speak it."""
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    module = sqlite if dialect == "sqlite" else postgresql
    return module.insert(table)


def _insert(session: AsyncSession, table: Any, values: Values) -> Any:
    if isinstance(values, Mapping):
        return insert_for(session, table).values(dict(values))
    rows = [dict(v) for v in values]
    if not rows:
        raise ValueError("nothing to insert: pass at least one row")
    return insert_for(session, table).values(rows)


async def upsert(
    session: AsyncSession,
    table: Any,
    values: Values,
    *,
    key: Sequence[str],
    update: Sequence[str] | Mapping[str, Any] | None = None,
    where: Callable[[Any], Any] | None = None,
) -> Any:
    """Insert ``values`` (one row or several); on a conflict on ``key`` update the stored row.

    ``update`` says what changes in the stored row: column names take the value this insert
    proposed for them (``excluded.<name>``), a mapping sets those columns to given values,
    and None (the default) takes every inserted column that is not part of ``key``.
    ``where(excluded)`` makes the update conditional: it gets the proposed row and returns
    a condition on it and the stored row (no match: the stored row stays as it is).
    Returns the statement's result (``rowcount`` tells how many rows it wrote).
    """
    stmt = _insert(session, table, values)
    if update is None:
        first = values if isinstance(values, Mapping) else values[0]
        update = [name for name in first if name not in key]
    if isinstance(update, Mapping):
        set_ = dict(update)
    else:
        set_ = {name: getattr(stmt.excluded, name) for name in update}
    condition = where(stmt.excluded) if where is not None else None
    return await session.execute(
        stmt.on_conflict_do_update(index_elements=list(key), set_=set_, where=condition)
    )


async def upsert_many(
    session: AsyncSession,
    table: Any,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str],
    where: Callable[[Any], Any] | None = None,
    batch: int = 5_000,
) -> None:
    """``upsert`` for many rows: one statement, compiled once and run for every row (the
    driver's executemany: the rows go out together, not a round trip each), ``batch`` rows
    per call. Rows are applied in order, as many ``upsert`` calls would be, so a key may
    repeat (a single multi-row statement may not touch one row twice). ``table`` is a
    ``Table`` (an ORM entity would take the ORM's own bulk path).
    """
    stmt = insert_for(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={name: getattr(stmt.excluded, name) for name in update},
        where=where(stmt.excluded) if where is not None else None,
    )
    for start in range(0, len(rows), batch):
        await session.execute(stmt, [dict(row) for row in rows[start : start + batch]])


async def insert_ignore(
    session: AsyncSession, table: Any, values: Values, *, key: Sequence[str] | None = None
) -> Any:
    """Insert ``values`` (one row or several); rows that conflict on ``key`` (any unique
    index when None) are left as stored. Returns the result (``rowcount``: rows inserted)."""
    stmt = _insert(session, table, values)
    return await session.execute(
        stmt.on_conflict_do_nothing(index_elements=list(key) if key is not None else None)
    )


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE/DELETE (a CursorResult attribute the stubs hide)."""
    return int(result.rowcount or 0)


def id_list(values: Any) -> list[int]:
    """Primary keys from a scalar result, as plain ints."""
    return [int(v) for v in values if v is not None]
