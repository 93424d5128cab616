"""Stock levels stored and read many at a time (a reconciliation re-reads every level of an
ERP): the same outcome as one at a time, whatever the number of SKUs."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.db import make_engine, make_sessionmaker, transaction
from app.dbutil import upsert_many
from app.flows.inventory.state import (
    SKUS_PER_QUERY,
    stock_levels_for,
    upsert_stock_level,
    upsert_stock_levels,
)
from app.models import PollCursor, StockLevel, utcnow
from kernel.canonical.inventory import InventoryLevel
from tests.conftest import make_settings

Sessions = async_sessionmaker[AsyncSession]
T0 = utcnow().replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
async def sessions(clean_db: str) -> AsyncIterator[Sessions]:
    engine = make_engine(make_settings(clean_db))
    yield make_sessionmaker(engine)
    await engine.dispose()


def level(
    sku: str, on_hand: int, minute: int, *, source: str = "erp", reserved: int = 0
) -> InventoryLevel:
    return InventoryLevel(
        source=source,
        sku=sku,
        location="1",
        on_hand=Decimal(on_hand),
        reserved=Decimal(reserved),
        as_of=T0 + timedelta(minutes=minute),
    )


async def stored(sessions: Sessions, source: str = "erp") -> dict[str, tuple[Decimal, Decimal]]:
    """sku → (on hand, reserved) as stored for ``source``."""
    async with sessions() as session:
        rows = await session.execute(
            sa.select(col(StockLevel.sku), col(StockLevel.level)).where(
                col(StockLevel.source) == source
            )
        )
        return {
            str(sku): (Decimal(data["on_hand"]), Decimal(data["reserved"])) for sku, data in rows
        }


async def test_an_older_level_later_in_the_same_batch_does_not_replace_the_newer(
    sessions: Sessions,
) -> None:
    async with transaction(sessions) as session:
        await upsert_stock_levels(session, [level("A", 5, 2), level("A", 9, 1)])
        await upsert_stock_levels(session, [level("B", 9, 1), level("B", 5, 2)])
    assert await stored(sessions) == {"A": (Decimal(5), 0), "B": (Decimal(5), 0)}


async def test_a_batch_does_not_replace_a_newer_level_already_stored(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        await upsert_stock_level(session, level("A", 5, 2))
        await upsert_stock_level(session, level("B", 5, 1))
    async with transaction(sessions) as session:
        await upsert_stock_levels(session, [level("A", 9, 1), level("B", 7, 2)])
    assert await stored(sessions) == {"A": (Decimal(5), 0), "B": (Decimal(7), 0)}


async def test_of_two_levels_of_the_same_time_the_one_with_less_to_sell_wins(
    sessions: Sessions,
) -> None:
    async with transaction(sessions) as session:
        # in one batch, in either order; and against the stored one
        await upsert_stock_levels(session, [level("A", 5, 1), level("A", 5, 1, reserved=2)])
        await upsert_stock_levels(session, [level("B", 5, 1, reserved=2), level("B", 5, 1)])
        await upsert_stock_level(session, level("C", 4, 1))
        await upsert_stock_levels(session, [level("C", 6, 1), level("C", 3, 1)])
    assert await stored(sessions) == {
        "A": (Decimal(5), Decimal(2)),
        "B": (Decimal(5), Decimal(2)),
        "C": (Decimal(3), Decimal(0)),
    }


async def test_a_batch_ends_as_the_same_levels_stored_one_at_a_time(sessions: Sessions) -> None:
    picks = random.Random(12)
    before = [level(f"S{i}", picks.randrange(10), picks.randrange(3)) for i in range(4)]
    arriving = [
        level(f"S{picks.randrange(6)}", picks.randrange(10), picks.randrange(4)) for _ in range(80)
    ]
    async with transaction(sessions) as session:
        for one in before:
            await upsert_stock_level(session, one.model_copy(update={"source": "one"}))
            await upsert_stock_level(session, one.model_copy(update={"source": "many"}))
    async with transaction(sessions) as session:
        for one in arriving:
            await upsert_stock_level(session, one.model_copy(update={"source": "one"}))
        await upsert_stock_levels(
            session, [one.model_copy(update={"source": "many"}) for one in arriving]
        )
    one_at_a_time = await stored(sessions, "one")
    assert len(one_at_a_time) == 6
    assert await stored(sessions, "many") == one_at_a_time


async def test_many_rows_go_in_several_batches_in_order(sessions: Sessions) -> None:
    rows = [
        {"connection_id": "erp", "stream": f"s{i % 3}", "cursor": str(i), "last_count": i}
        for i in range(7)
    ]
    async with transaction(sessions) as session:
        await upsert_many(
            session,
            PollCursor.__table__,  # type: ignore[attr-defined]
            rows,
            key=["connection_id", "stream"],
            update=["cursor", "last_count"],
            batch=2,
        )
    async with sessions() as session:
        found = await session.execute(sa.select(col(PollCursor.stream), col(PollCursor.cursor)))
        cursors = {str(stream): cursor for stream, cursor in found}
    assert cursors == {"s0": "6", "s1": "4", "s2": "5"}  # the last of each key


async def test_levels_of_more_skus_than_one_statement_can_name(sessions: Sessions) -> None:
    # a reconciliation asks for every SKU of an ERP: 40,000 is more bound values than one
    # PostgreSQL statement takes (32,767)
    wanted = [f"S{i}" for i in range(40_000)]
    async with transaction(sessions) as session:
        await upsert_stock_levels(
            session, [level(sku, 1, 1) for sku in ("S0", f"S{SKUS_PER_QUERY}", "S39999")]
        )
    async with sessions() as session:
        found = await stock_levels_for(session, "erp", [*wanted, "S0"])  # S0 asked twice
    assert sorted(found) == ["S0", "S39999", f"S{SKUS_PER_QUERY}"]
    assert all(len(levels) == 1 for levels in found.values())
