"""Stock levels read many at a time (a reconciliation reads every level of an ERP), whatever
the number of SKUs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.db import make_engine, make_sessionmaker, transaction
from app.flows.inventory.state import (
    SKUS_PER_QUERY,
    stock_levels_for,
    upsert_stock_level,
)
from app.models import StockLevel, utcnow
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


async def test_levels_of_more_skus_than_one_statement_can_name(sessions: Sessions) -> None:
    # a reconciliation asks for every SKU of an ERP: 40,000 is more bound values than one
    # PostgreSQL statement takes (32,767)
    wanted = [f"S{i}" for i in range(40_000)]
    async with transaction(sessions) as session:
        for sku in ("S0", f"S{SKUS_PER_QUERY}", "S39999"):
            await upsert_stock_level(session, level(sku, 1, 1))
    async with sessions() as session:
        found = await stock_levels_for(session, "erp", [*wanted, "S0"])  # S0 asked twice
    assert sorted(found) == ["S0", "S39999", f"S{SKUS_PER_QUERY}"]
    assert all(len(levels) == 1 for levels in found.values())
