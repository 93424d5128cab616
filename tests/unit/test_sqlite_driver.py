"""The embedded default's SQLite driver (app/sqlite_driver.py): each statement one call to
the connection's thread, and otherwise what aiosqlite gives SQLAlchemy: rows, row counts,
RETURNING, long results read in batches, errors as SQLAlchemy's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app import sqlite_driver
from app.db import make_engine
from app.settings import Settings


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", redis_url=None)
    engine = make_engine(settings)
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every call handed to a connection's thread (aiosqlite's queue), after connecting."""
    seen: list[Any] = []
    real = sqlite_driver.OneTripConnection._execute

    async def counting(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(fn)
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(sqlite_driver.OneTripConnection, "_execute", counting)
    return seen


async def test_the_engine_connects_through_the_one_trip_driver(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_driver.OneTripConnection)


async def test_a_statement_is_one_call_to_the_thread(engine: AsyncEngine, calls: list[Any]) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))  # the connection made, its pragmas set
        calls.clear()
        inserted = await conn.execute(sa.text("INSERT INTO t (v) VALUES ('a') RETURNING id"))
        assert inserted.scalar_one() == 1
        assert len(calls) == 1  # aiosqlite's cursor took four: open, execute, fetch, close
        calls.clear()
        rows = (await conn.execute(sa.text("SELECT id, v FROM t"))).all()
        assert [tuple(r) for r in rows] == [(1, "a")]
        assert len(calls) == 1
        await conn.commit()


async def test_row_counts_and_many_rows_at_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"v{i}"} for i in range(5)]
        )
        updated = await conn.execute(sa.text("UPDATE t SET v = v || '!' WHERE id <= 3"))
        assert updated.rowcount == 3
        assert await conn.scalar(sa.text("SELECT count(*) FROM t WHERE v LIKE '%!'")) == 3


async def test_a_long_result_is_read_whole_in_batches(
    engine: AsyncEngine, calls: list[Any]
) -> None:
    count = sqlite_driver.FIRST_ROWS * 2 + 7
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"v{i}"} for i in range(count)]
        )
    async with engine.connect() as conn:
        calls.clear()
        rows = (await conn.execute(sa.text("SELECT id FROM t ORDER BY id"))).all()
        assert [r.id for r in rows] == list(range(1, count + 1))
        assert len(calls) == 3  # the statement with its first rows, then two more batches
        streamed = await conn.stream(sa.text("SELECT id FROM t ORDER BY id"))
        first = await streamed.fetchmany(10)
        assert [r.id for r in first] == list(range(1, 11))
        await streamed.close()  # left unread: its cursor is closed, the connection usable
        assert await conn.scalar(sa.text("SELECT count(*) FROM t")) == count


async def test_errors_are_sqlalchemys_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("INSERT INTO t (v) VALUES ('same')"))
        with pytest.raises(sa.exc.IntegrityError, match="UNIQUE"):
            await conn.execute(sa.text("INSERT INTO t (v) VALUES ('same')"))
        await conn.rollback()
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            await conn.execute(sa.text("SELECT * FROM nowhere"))
        await conn.rollback()
        assert await conn.scalar(sa.text("SELECT count(*) FROM t")) == 0  # rolled back
