"""Scheduled jobs take the ERP's word: reconciliation re-reads the ERP's stock (never the
gateway's own copy), and a poll that fails is a finding and a metric, never "nothing new"."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.db import transaction
from app.flows.recorder import record_events
from app.models import Delivery, Finding, utcnow
from app.observability import metrics
from app.scheduling import jobs
from kernel.canonical.inventory import InventoryLevel
from kernel.contract import Connector
from kernel.errors import PermanentError, TransientError
from kernel.types import PollPage
from tests.integration.test_scheduled_jobs import count, job_rt, level

__all__ = ["job_rt"]  # the fixture, shared with the other scheduled-job tests


class ErpSaying(Connector):
    """An ERP whose stock is ``holds`` (None: it cannot be read) and whose polls fail with
    ``poll_error`` while it is set."""

    type_name = "fake-erp-truth"
    side = "erp"
    poll_streams = frozenset({"inventory"})

    def __init__(self, holds: dict[str, Decimal] | None = None) -> None:
        self.holds = holds
        self.poll_error: Exception | None = None
        self.asked: list[list[str]] = []

    async def poll(self, stream: str, cursor: str | None, limit: int) -> PollPage:
        if self.poll_error is not None:
            raise self.poll_error
        if cursor:
            return PollPage(events=[], cursor=cursor, has_more=False)
        return PollPage(events=[level("SKU-1", "5", 1)], cursor="1", has_more=False)

    async def fetch_levels(self, skus: list[str]) -> list[InventoryLevel]:
        self.asked.append(sorted(skus))
        if self.holds is None:
            raise TransientError("NetSuite is down")
        now = utcnow()
        return [
            InventoryLevel(source="erp", sku=sku, location="1", on_hand=qty, as_of=now)
            for sku, qty in self.holds.items()
            if sku in skus
        ]


class StoreShowing(Connector):
    type_name = "fake-store-truth"
    side = "store"
    reads_stock = True

    def __init__(self, shows: dict[tuple[str, str | None], Decimal]) -> None:
        self.shows = shows

    async def fetch_availability(self, skus: list[str]) -> dict[tuple[str, str | None], Any]:
        return {k: v for k, v in self.shows.items() if k[0] in skus}


async def test_reconciliation_compares_the_store_with_the_erp_not_the_gateways_copy(
    job_rt: Any,
) -> None:
    store = StoreShowing({("SKU-1", None): Decimal(9), ("SKU-2", None): Decimal(4)})
    # the gateway last heard 5 and 4; NetSuite itself now holds 7 and 4 (a stock change the
    # gateway never heard of: a lost webhook, a deleted transaction)
    erp = ErpSaying({"SKU-1": Decimal(7), "SKU-2": Decimal(4)})
    rt = await job_rt(shop=store, erp=erp)
    async with transaction(rt.sessions) as session:
        await record_events(session, rt, "erp", [level("SKU-1", "5", 1), level("SKU-2", "4", 2)])
    assert await jobs.reconcile_inventory(rt) == 1
    assert erp.asked == [["SKU-1", "SKU-2"]]
    async with rt.sessions() as session:
        drift = (
            await session.execute(sa.select(Finding).where(Finding.kind == "stock_drift"))  # type: ignore[arg-type]
        ).scalar_one()
        fix = (
            (await session.execute(sa.select(Delivery).order_by(Delivery.id.desc())))  # type: ignore[union-attr]
            .scalars()
            .first()
        )
    assert "SKU-1" in drift.message and "9" in drift.message and "7" in drift.message
    assert drift.data["expected"] == "7"  # what NetSuite holds, not the 5 the gateway had
    assert fix is not None and fix.payload is not None
    assert fix.payload["sku"] == "SKU-1" and Decimal(fix.payload["available"]) == 7


async def test_reconciliation_is_skipped_when_the_erp_cannot_be_read(job_rt: Any) -> None:
    store = StoreShowing({("SKU-1", None): Decimal(9)})
    rt = await job_rt(shop=store, erp=ErpSaying(holds=None))
    async with transaction(rt.sessions) as session:
        await record_events(session, rt, "erp", [level("SKU-1", "5", 1)])
    assert await jobs.reconcile_inventory(rt) == 0  # no correction from the gateway's copy
    assert await count(rt, Finding, Finding.kind == "stock_drift") == 0


async def test_a_failing_poll_is_a_finding_and_a_metric(job_rt: Any) -> None:
    erp = ErpSaying({})
    rt = await job_rt(erp=erp)
    erp.poll_error = PermanentError(
        "NetSuite rejected SuiteQL query: Invalid search query. Detailed unprocessed "
        "description follows. Search error occurred: Field 'custitem_x' for record 'item' "
        "was not found. (INVALID_PARAMETER)"
    )
    failures = metrics.POLL_FAILURES.labels("erp", "inventory", "PermanentError")
    before = failures._value.get()
    for _ in range(3):  # the same failure, run after run
        assert await jobs.poll_stream(rt, "erp", "inventory") == 0
    assert failures._value.get() == before + 3
    assert metrics.POLL_FAILING.labels("erp", "inventory")._value.get() == 1
    async with rt.sessions() as session:
        findings = (
            (await session.execute(sa.select(Finding).where(Finding.kind == "poll_failed")))  # type: ignore[arg-type]
            .scalars()
            .all()
        )
    (finding,) = findings  # one per episode, not one per run
    assert "custitem_x" in finding.message and finding.connection_id == "erp"
    assert "a person must fix it" in finding.message
    assert finding.data["stream"] == "inventory"

    erp.poll_error = None  # fixed: the stream reads again and is no longer failing
    assert await jobs.poll_stream(rt, "erp", "inventory") == 1
    assert metrics.POLL_FAILING.labels("erp", "inventory")._value.get() == 0


async def test_a_crashing_poll_is_reported_too(job_rt: Any) -> None:
    erp = ErpSaying({})
    rt = await job_rt(erp=erp)
    erp.poll_error = KeyError("items")  # a connector bug: still not "nothing new"
    assert await jobs.poll_stream(rt, "erp", "inventory") == 0
    assert await count(rt, Finding, Finding.kind == "poll_failed") == 1


async def _seven_in_the_erp_two_sold_unbooked(job_rt: Any, store_shows: int) -> Any:
    """NetSuite holds 7 of SKU-1; the store sold 2 in an order on its way to NetSuite."""
    from kernel.canonical.events import make_event
    from tests.support.factories import make_order

    store = StoreShowing({("SKU-1", None): Decimal(store_shows)})
    rt = await job_rt(shop=store, erp=ErpSaying({"SKU-1": Decimal(7)}))
    order = make_order("5001", skus=("SKU-1", "SKU-1"))
    async with transaction(rt.sessions) as session:
        await record_events(session, rt, "erp", [level("SKU-1", "7", 1)])
        await record_events(session, rt, "shop", [make_event("order.created", order, utcnow())])
    return rt


async def test_an_order_the_erp_has_not_booked_yet_is_no_drift(job_rt: Any) -> None:
    # the store shows 5: right (each run used to report a drift and re-send the 5)
    rt = await _seven_in_the_erp_two_sold_unbooked(job_rt, store_shows=5)
    assert await jobs.reconcile_inventory(rt) == 0
    assert await count(rt, Finding, Finding.kind == "stock_drift") == 0


async def test_a_store_that_shows_less_than_its_unbooked_orders_leave_is_still_drift(
    job_rt: Any,
) -> None:
    rt = await _seven_in_the_erp_two_sold_unbooked(job_rt, store_shows=3)  # should show 5
    assert await jobs.reconcile_inventory(rt) == 1
    async with rt.sessions() as session:
        drift = (
            await session.execute(sa.select(Finding).where(Finding.kind == "stock_drift"))  # type: ignore[arg-type]
        ).scalar_one()
    assert drift.data["expected"] == "5" and drift.data["actual"] == "3"
