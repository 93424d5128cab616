"""The gateway takes the hot tables' planner statistics itself once they are stale (with
autovacuum off, or before its first pass, the planner believes they are still empty)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.cli import migrate
from app.delivery.statistics import analyze_stale_tables
from tests.conftest import _create_pg_database, _drop_pg_database, require_postgres

pytestmark = pytest.mark.integration

_FILL = """
INSERT INTO inbound_events (connection_id, topic, dedupe_key, received_at, headers, body,
    body_hash, status)
SELECT 'shop', 'orders/create', 'wh-' || i, now(), '{}', '\\x7b7d', md5(i::text), 'accepted'
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i
"""


async def _fill(engine: AsyncEngine, first: int, last: int) -> None:
    """Insert rows, and wait (with a deadline) until the activity counters show them: a
    backend reports its counters to pg_stat_user_tables some time after its commit."""
    async with engine.begin() as conn:
        await conn.execute(sa.text(_FILL), {"first": first, "last": last})
        await conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with engine.connect() as conn:
            live = await conn.scalar(
                sa.text(
                    "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'inbound_events'"
                )
            )
        if live == last or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.05)


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    url = await _create_pg_database(require_postgres())
    await asyncio.to_thread(migrate, url)
    engine = create_async_engine(url)
    async with engine.begin() as conn:  # as on a machine where autovacuum is off
        await conn.execute(sa.text("ALTER TABLE inbound_events SET (autovacuum_enabled = off)"))
    yield engine
    await engine.dispose()
    await _drop_pg_database(url)


async def _analyzed(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        when = await conn.scalar(
            sa.text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'inbound_events'")
        )
    return when is not None


async def test_a_table_changed_since_its_last_analyze_is_analyzed_once(
    engine: AsyncEngine,
) -> None:
    assert await analyze_stale_tables(engine) == []  # nothing changed: nothing to do
    await _fill(engine, 1, 1500)  # changed, but still small: left to the defaults
    assert await analyze_stale_tables(engine) == []
    assert not await _analyzed(engine)
    await _fill(engine, 1501, 3000)
    assert await analyze_stale_tables(engine) == ["inbound_events"]
    assert await _analyzed(engine)
    async with engine.connect() as conn:
        planned = await conn.scalar(
            sa.text("SELECT reltuples FROM pg_class WHERE relname = 'inbound_events'")
        )
    assert planned == 3000
    assert await analyze_stale_tables(engine) == []  # fresh now: not analyzed again


async def test_a_database_error_is_logged_and_leaves_the_sweep_running(
    engine: AsyncEngine,
) -> None:
    broken = create_async_engine(str(engine.url).replace("postgres@", "nobody-such-role@"))
    try:
        assert await analyze_stale_tables(broken) == []
    finally:
        await broken.dispose()
