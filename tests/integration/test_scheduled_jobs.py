"""Scheduled jobs on a real database: polling with a stored cursor, sale prices, reconciliation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from app.config import GatewayConfig
from app.db import transaction
from app.flows.recorder import record_events
from app.main import start_runtime
from app.models import CanonicalEventRow, Delivery, Finding, PollCursor, utcnow
from app.runtime import Runtime
from app.scheduling import jobs
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import InventoryLevel
from kernel.canonical.product import Price, SalePrice
from kernel.contract import Connector
from kernel.errors import TransientError
from tests.conftest import make_settings
from tests.integration.test_flow_pipeline import flows_config
from tests.support.fake_connector import FakeConnector, Script


def change_log(rows: list[CanonicalEvent]) -> FakeConnector:
    """An ERP serving ``rows`` as its inventory change log, page by page (the cursor is the
    index of the next row)."""
    return FakeConnector("erp", Script(changes={"inventory": rows}), poll_streams={"inventory"})


def store_showing(shows: dict[tuple[str, str | None], Decimal]) -> FakeConnector:
    """A store that shows ``shows`` as available: (sku, location or None) → quantity."""
    return FakeConnector("shop", Script(stock=shows), side="store", reads_stock=True)


def polling_config(rules: str = "") -> GatewayConfig:
    config = flows_config(rules)
    erp = config.connection("erp")
    assert erp is not None
    from app.config import PollConfig

    # validated against the NetSuite connector's streams elsewhere; here a fake ERP answers
    erp.poll = PollConfig(streams=["inventory"], interval_seconds=3600, page_size=2)
    return config


@pytest.fixture
async def job_rt(clean_db: str) -> AsyncIterator[Callable[..., Awaitable[Runtime]]]:
    started: list[Runtime] = []

    async def start(config: GatewayConfig | None = None, **connectors: Connector) -> Runtime:
        rt, _ = await start_runtime(
            make_settings(clean_db),
            config or polling_config(),
            with_worker=False,
            connectors=connectors,
        )
        started.append(rt)
        return rt

    yield start
    for rt in started:
        await rt.close()


def level(sku: str, on_hand: str, minute: int) -> CanonicalEvent:
    at = utcnow().replace(microsecond=0) - timedelta(hours=1) + timedelta(minutes=minute)
    return make_event(
        "inventory.level_changed",
        InventoryLevel(source="erp", sku=sku, location="1", on_hand=Decimal(on_hand), as_of=at),
        at,
    )


async def count(rt: Runtime, model: Any, *where: Any) -> int:
    async with rt.sessions() as session:
        return int(
            await session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0
        )


async def test_poll_pages_through_changes_and_resumes_from_the_stored_cursor(job_rt: Any) -> None:
    rows = [level(f"SKU-{i}", "5", i) for i in range(5)]
    erp = change_log(rows)
    rt = await job_rt(erp=erp)
    assert await jobs.poll_stream(rt, "erp", "inventory") == 5
    assert erp.polls == [("inventory", None), ("inventory", "2"), ("inventory", "4")]  # 3 pages
    # a new process (same database) continues after the last row: nothing read twice
    rows.append(level("SKU-9", "1", 9))
    rt2 = await job_rt(erp=erp)
    assert await jobs.poll_stream(rt2, "erp", "inventory") == 1
    assert erp.polls[-1] == ("inventory", "5")
    assert await count(rt2, CanonicalEventRow) == 6


async def test_poll_failure_keeps_the_cursor_and_records_the_error(job_rt: Any) -> None:
    rows = [level("SKU-1", "5", 1), level("SKU-2", "5", 2), level("SKU-3", "5", 3)]
    erp = change_log(rows)
    rt = await job_rt(erp=erp)
    assert await jobs.poll_stream(rt, "erp", "inventory") == 3
    rows.append(level("SKU-4", "5", 4))
    erp.script.poll_errors.append(TransientError("NetSuite is down"))
    assert await jobs.poll_stream(rt, "erp", "inventory") == 0
    async with rt.sessions() as session:
        state = await session.get(PollCursor, ("erp", "inventory"))
    assert (
        state is not None and state.cursor == "3" and "NetSuite is down" in (state.last_error or "")
    )
    assert await jobs.poll_stream(rt, "erp", "inventory") == 1


async def test_polled_change_already_received_by_webhook_is_not_recorded_twice(job_rt: Any) -> None:
    row = level("SKU-1", "5", 1)
    rt = await job_rt(erp=change_log([row]))
    async with transaction(rt.sessions) as session:
        await record_events(session, rt, "erp", [row])  # the webhook got it first
    assert await jobs.poll_stream(rt, "erp", "inventory") == 0
    assert await count(rt, CanonicalEventRow) == 1


async def test_due_jobs_run_once_per_interval(job_rt: Any) -> None:
    rt = await job_rt(erp=change_log([level("SKU-1", "5", 1)]), shop=store_showing({}))
    first = await jobs.run_due_jobs(rt)
    assert first["poll:erp:inventory"] == 1 and "reconcile" in first
    again = await jobs.run_due_jobs(rt)
    assert "poll:erp:inventory" not in again and "reconcile" not in again


async def test_sale_price_goes_out_when_the_sale_starts(job_rt: Any) -> None:
    rt = await job_rt()
    starts = utcnow() + timedelta(seconds=1)
    price = Price(
        source="erp",
        sku="SKU-1",
        currency="EUR",
        base=Decimal("20.00"),
        sale=SalePrice(price=Decimal("15.00"), starts_at=starts),
        effective_at=utcnow(),
    )
    async with transaction(rt.sessions) as session:
        await record_events(session, rt, "erp", [make_event("price.changed", price, utcnow())])
    assert await jobs.apply_price_schedule(rt) == 0  # not yet

    from tests.conftest import wait_for

    await wait_for(lambda: jobs.apply_price_schedule(rt), timeout=10, message="sale start")
    async with rt.sessions() as session:
        latest = (
            (
                await session.execute(sa.select(Delivery).order_by(Delivery.id.desc()))  # type: ignore[union-attr]
            )
            .scalars()
            .first()
        )
    assert latest is not None and latest.payload is not None
    assert latest.payload["sale"]["price"] == "15.00"
    assert latest.status == "pending"  # a scheduled step of an accepted price is not held again


async def test_reconciliation_reports_drift_and_sends_corrections(job_rt: Any) -> None:
    store = store_showing({("SKU-1", None): Decimal(9), ("SKU-2", None): Decimal(4)})
    # reconciliation re-reads the ERP (it holds what the gateway last heard here)
    erp = FakeConnector("erp", Script(levels={"SKU-1": Decimal(5), "SKU-2": Decimal(4)}))
    rt = await job_rt(shop=store, erp=erp)
    async with transaction(rt.sessions) as session:
        await record_events(session, rt, "erp", [level("SKU-1", "5", 1), level("SKU-2", "4", 2)])
    assert await jobs.reconcile_inventory(rt) == 1
    async with rt.sessions() as session:
        report = (
            await session.execute(sa.select(Finding).where(Finding.kind == "drift_report"))  # type: ignore[arg-type]
        ).scalar_one()
        drift = (
            await session.execute(sa.select(Finding).where(Finding.kind == "stock_drift"))  # type: ignore[arg-type]
        ).scalar_one()
        fix = (
            (
                await session.execute(
                    sa.select(Delivery).order_by(Delivery.id.desc())  # type: ignore[union-attr]
                )
            )
            .scalars()
            .first()
        )
    assert report.data["checked"] == 2 and len(report.data["drifted"]) == 1
    assert "SKU-1" in drift.message and "9" in drift.message and "5" in drift.message
    assert fix is not None and fix.payload is not None
    assert fix.payload["sku"] == "SKU-1" and Decimal(fix.payload["available"]) == 5
