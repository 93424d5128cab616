"""Database engine and sessions.

One transaction per request, owned by the ``session`` dependency: it commits when the
endpoint returns and rolls back on error. Work that must only happen once the data is
durable (enqueueing deliveries) is registered with ``after_commit`` and runs after COMMIT.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app import sqlite_driver
from app.settings import Settings

AfterCommit = Callable[[], Awaitable[Any]]


def make_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if settings.is_sqlite:
        _ensure_sqlite_dir(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the API read while the in-process worker writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "do_connect")
        def _one_trip_statements(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            # aiosqlite, with each statement one call to the connection's thread
            return dialect.dbapi.connect(*cargs, async_creator_fn=sqlite_driver.connect, **cparams)

        return engine
    # No pre-ping (a round trip per checkout on the hot path): recycle connections instead,
    # and a dropped connection fails one transaction, which the delivery engine retries.
    # No overflow: under steady load more requests than the pool holds kept opening and
    # closing overflow connections (a Postgres backend started, statements prepared again,
    # every ~30 webhooks); a request now waits for a pooled connection instead.
    return create_async_engine(
        url, pool_size=settings.db_pool_size, max_overflow=0, pool_recycle=300
    )


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` once this session's transaction has committed (never if it rolls back)."""
    session.info.setdefault("after_commit", []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
    for callback in callbacks:
        await callback()


@asynccontextmanager
async def transaction(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits on exit, then runs the after-commit callbacks."""
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            session.info.pop("after_commit", None)
            raise
    await run_after_commit(session)


@asynccontextmanager
async def autocommit(
    engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[AsyncSession]:
    """A session whose statements each commit by themselves on Postgres: no BEGIN and no
    COMMIT, two round trips fewer, for work that is one statement or needs no atomicity
    across its statements. On SQLite, one transaction (``transaction``). After-commit
    callbacks run once the block ends well, as with ``transaction``."""
    if engine.dialect.name != "postgresql":
        async with transaction(maker) as session:
            yield session
        return
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with maker(bind=connection) as session:
            try:
                yield session
                await session.commit()  # flushes what the ORM holds; sends no COMMIT
            except BaseException:
                session.info.pop("after_commit", None)
                raise
    await run_after_commit(session)
