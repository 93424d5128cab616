"""The price guard on every price a store charges, on a real database.

A scheduled sale is decided when the ERP schedules it: held then, it does not start by
itself when its window opens; approved then, it is not held again when it starts. Group,
customer and quantity-break prices are each compared with their own last accepted value.
Events are recorded as ingest and the sale schedule record them; no worker runs, the tests
read the outbox.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from app.approvals.service import decide
from app.db import transaction
from app.flows.recorder import record_events
from app.main import start_runtime
from app.models import Delivery, DeliveryStatus, PriceRecord, SentPrice, utcnow
from app.runtime import Runtime
from app.scheduling import jobs
from app.startup import alembic_config
from kernel.canonical.events import make_event
from kernel.canonical.product import (
    CustomerPrice,
    GroupPrice,
    Price,
    QuantityBreak,
    SalePrice,
)
from tests.conftest import make_settings
from tests.integration.test_flow_pipeline import flows_config

D = Decimal
_minutes = itertools.count(1)


@pytest.fixture
async def price_rt(clean_db: str) -> AsyncIterator[Runtime]:
    rt, _ = await start_runtime(make_settings(clean_db), flows_config(), with_worker=False)
    yield rt
    await rt.close()


def erp_price(base: str, **fields: Any) -> Price:
    return Price(
        source="erp", sku="SKU-1", currency="EUR", base=D(base), effective_at=utcnow(), **fields
    )


async def record(rt: Runtime, price: Price) -> Delivery:
    """Record an ERP price change (each one newer than the last) → its delivery to the shop."""
    at = utcnow() - timedelta(hours=1) + timedelta(seconds=next(_minutes))
    async with transaction(rt.sessions) as session:
        await record_events(session, rt, "erp", [make_event("price.changed", price, at)])
    return await newest(rt)


async def newest(rt: Runtime) -> Delivery:
    async with rt.sessions() as session:
        stmt = sa.select(Delivery).order_by(Delivery.id.desc()).limit(1)  # type: ignore[union-attr]
        row = (await session.execute(stmt)).scalars().first()
    assert row is not None
    return row


async def status_of(rt: Runtime, delivery_id: int) -> str:
    async with rt.sessions() as session:
        row = await session.get(Delivery, delivery_id)
    assert row is not None
    return row.status


async def approve(rt: Runtime, delivery_id: int) -> None:
    async with transaction(rt.sessions) as session:
        await decide(session, rt, delivery_id, "approved", "planned promotion", "operator")


async def run_schedule_at(rt: Runtime, moment: datetime) -> Delivery:
    """Wait for ``moment`` (a sale starts or ends), run the sale schedule, return its delivery."""
    await asyncio.sleep(max(0.0, (moment - utcnow()).total_seconds()) + 0.05)
    assert await jobs.apply_price_schedule(rt) == 1
    return await newest(rt)


def sale_of(delivery: Delivery) -> str | None:
    assert delivery.payload is not None
    sale = delivery.payload["sale"]
    return None if sale is None else str(sale["price"])


# --- scheduled sales --------------------------------------------------------------------------


async def test_a_scheduled_90_percent_sale_is_held_when_planned_and_never_starts_by_itself(
    price_rt: Runtime,
) -> None:
    first = await record(price_rt, erp_price("100.00"))
    assert first.status == DeliveryStatus.PENDING
    starts = utcnow() + timedelta(seconds=1)
    planned = await record(
        price_rt, erp_price("100.00", sale=SalePrice(price=D("10.00"), starts_at=starts))
    )
    assert planned.status == DeliveryStatus.HELD  # decided now, not when the sale starts
    assert planned.held_reason is not None
    assert "sale from" in planned.held_reason and "-90.0%" in planned.held_reason
    assert "base" not in planned.held_reason  # the base did not change

    started = await run_schedule_at(price_rt, starts)
    assert sale_of(started) == "10.00"
    assert started.status == DeliveryStatus.HELD  # the window opened: still nobody approved
    # the newer held step replaced the older one; nothing carrying the sale is on its way
    assert await status_of(price_rt, planned.id or 0) == DeliveryStatus.SUPERSEDED
    async with price_rt.sessions() as session:
        waiting = (
            await session.execute(
                sa.select(Delivery).where(Delivery.status == DeliveryStatus.PENDING)  # type: ignore[arg-type]
            )
        ).scalars()
        assert all(sale_of(d) is None for d in waiting)


async def test_an_approved_sale_is_not_held_again_when_it_starts_or_ends(
    price_rt: Runtime,
) -> None:
    await record(price_rt, erp_price("100.00"))
    starts = utcnow() + timedelta(seconds=1)
    ends = starts + timedelta(seconds=1)
    sale = SalePrice(price=D("50.00"), starts_at=starts, ends_at=ends)
    planned = await record(price_rt, erp_price("100.00", sale=sale))
    assert planned.status == DeliveryStatus.HELD
    await approve(price_rt, planned.id or 0)

    started = await run_schedule_at(price_rt, starts)
    assert sale_of(started) == "50.00" and started.status == DeliveryStatus.PENDING
    ended = await run_schedule_at(price_rt, ends)
    assert sale_of(ended) is None and ended.status == DeliveryStatus.PENDING  # back to the base


async def test_a_sale_price_change_within_an_approved_sale_is_guarded_again(
    price_rt: Runtime,
) -> None:
    await record(price_rt, erp_price("100.00"))
    starts = utcnow() + timedelta(days=1)
    within = await record(
        price_rt, erp_price("100.00", sale=SalePrice(price=D("85.00"), starts_at=starts))
    )
    assert within.status == DeliveryStatus.PENDING  # a 15% sale is within the 20% guard
    nudged = await record(
        price_rt, erp_price("100.00", sale=SalePrice(price=D("80.00"), starts_at=starts))
    )
    assert nudged.status == DeliveryStatus.PENDING  # -5.9% against the accepted sale price
    cut = await record(
        price_rt, erp_price("100.00", sale=SalePrice(price=D("40.00"), starts_at=starts))
    )
    assert cut.status == DeliveryStatus.HELD
    assert cut.held_reason and "from 80.00 to 40.00 (-50.0%)" in cut.held_reason


async def test_a_held_base_cut_does_not_ride_along_when_a_sale_starts(price_rt: Runtime) -> None:
    await record(price_rt, erp_price("100.00"))
    starts = utcnow() + timedelta(seconds=1)
    sale = SalePrice(price=D("90.00"), starts_at=starts)
    assert (await record(price_rt, erp_price("100.00", sale=sale))).status == "pending"
    cut = await record(price_rt, erp_price("10.00", sale=sale))  # a typo in the ERP
    assert cut.status == DeliveryStatus.HELD
    started = await run_schedule_at(price_rt, starts)  # the schedule plans the newest price
    assert started.payload is not None and started.payload["base"] == "10.00"
    assert started.status == DeliveryStatus.HELD


# --- tiers, groups and customers ---------------------------------------------------------------


def b2b(
    *,
    tier: str = "90.00",
    group: str = "70.00",
    group_tier: str = "60.00",
    customer: str = "65.00",
) -> Price:
    return erp_price(
        "100.00",
        breaks=[QuantityBreak(min_quantity=D(10), price=D(tier))],
        group_prices=[
            GroupPrice(
                group="wholesale",
                price=D(group),
                breaks=[QuantityBreak(min_quantity=D(50), price=D(group_tier))],
            )
        ],
        customer_prices=[CustomerPrice(customer_key="erp:customer:42", price=D(customer))],
    )


@pytest.mark.parametrize(
    ("change", "label", "small", "cut"),
    [
        ("tier", "break (10+)", "85.00", "9.00"),
        ("group", "group wholesale", "66.00", "7.00"),
        ("group_tier", "group wholesale break (50+)", "57.00", "6.00"),
        ("customer", "customer erp:customer:42", "62.00", "6.50"),
    ],
)
async def test_a_cut_of_a_tier_group_or_customer_price_is_held_and_a_small_change_is_not(
    price_rt: Runtime, change: str, label: str, small: str, cut: str
) -> None:
    assert (await record(price_rt, b2b())).status == DeliveryStatus.PENDING
    assert (await record(price_rt, b2b(**{change: small}))).status == DeliveryStatus.PENDING
    # compared with its own last accepted value (the small change), not with the base price
    held = await record(price_rt, b2b(**{change: cut}))
    assert held.status == DeliveryStatus.HELD
    assert held.held_reason is not None
    assert f"{label} price changes from {small} to {cut} (-89." in held.held_reason
    assert "/api/v1/approvals" in held.held_reason and "base" not in held.held_reason
    tripped = [p for p in (held.directives or {})["guarded_prices"] if p["held"]]
    assert len(tripped) == 1 and tripped[0]["new"] == cut


# --- baselines kept from before prices were guarded one by one --------------------------------


async def keep_old_baseline(rt: Runtime, amount: str, accepted_at: datetime) -> None:
    """A row as migration 0009 leaves one: the effective price, accepted at ``accepted_at``."""
    async with transaction(rt.sessions) as session:
        session.add(
            SentPrice(
                destination="shop",
                sku="SKU-1",
                currency="EUR",
                kind="effective",
                price_key="",
                amount=D(amount),
                updated_at=accepted_at,
            )
        )


async def test_an_old_baseline_still_guards_the_base_price(price_rt: Runtime) -> None:
    await keep_old_baseline(price_rt, "100.00", utcnow() - timedelta(days=3))
    assert (await record(price_rt, erp_price("95.00"))).status == DeliveryStatus.PENDING
    cut = await record(price_rt, erp_price("9.50"))
    assert cut.status == DeliveryStatus.HELD and cut.held_reason
    assert "base price changes from 95.00 to 9.50" in cut.held_reason


async def test_an_old_baseline_of_a_running_sale_does_not_hold_the_base_when_the_sale_ends(
    price_rt: Runtime,
) -> None:
    # before the upgrade the sale's start sent 50.00 (half the base) and kept it as baseline
    starts = utcnow() - timedelta(days=1)
    ends = utcnow() + timedelta(seconds=1)
    await keep_old_baseline(price_rt, "50.00", starts + timedelta(seconds=5))
    sale = SalePrice(price=D("50.00"), starts_at=starts, ends_at=ends)
    async with transaction(price_rt.sessions) as session:
        session.add(
            PriceRecord(
                source="erp",
                sku="SKU-1",
                currency="EUR",
                price=erp_price("100.00", sale=sale).model_dump(mode="json"),
                next_change_at=ends,
            )
        )
    ended = await run_schedule_at(price_rt, ends)
    assert sale_of(ended) is None
    assert ended.status == DeliveryStatus.PENDING  # back to the base, as before the upgrade


def test_0009_keeps_each_stored_baseline_as_an_effective_price(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'prices.db'}"

    async def run(sql: str) -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(sql))
            rows = list(result) if result.returns_rows else []
        await engine.dispose()
        return rows

    command.upgrade(alembic_config(url), "0008")
    asyncio.run(
        run(
            "INSERT INTO sent_prices (destination, sku, currency, effective, updated_at) "
            "VALUES ('shop', 'SKU-1', 'EUR', 19.99, '2026-11-30 10:00:00')"
        )
    )
    command.upgrade(alembic_config(url), "0009")
    rows = asyncio.run(run("SELECT kind, price_key, amount FROM sent_prices"))
    assert [(k, key, D(str(a))) for k, key, a in rows] == [("effective", "", D("19.99"))]
    asyncio.run(
        run(
            "INSERT INTO sent_prices (destination, sku, currency, kind, price_key, amount, "
            "updated_at) VALUES ('shop', 'SKU-1', 'EUR', 'group', 'wholesale', 15, "
            "'2026-11-30 10:00:00')"
        )
    )
    command.downgrade(alembic_config(url), "0008")
    rows = asyncio.run(run("SELECT sku, effective FROM sent_prices"))
    assert [(sku, D(str(a))) for sku, a in rows] == [("SKU-1", D("19.99"))]
