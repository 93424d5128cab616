"""Stock pushes through the delivery engine: computed when sent, as a change the store's own
sales cannot be undone by, and never counting an order twice or not at all for long."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from app.db import transaction
from app.delivery.worker import InProcessWorker
from app.flows.recorder import record_events
from app.main import start_runtime
from app.models import Delivery, utcnow
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import InventoryLevel, StockAvailability
from kernel.types import DeliveryContext
from tests.conftest import make_settings, wait_for
from tests.integration.test_flow_pipeline import flows_config
from tests.support.factories import make_order
from tests.support.fake_connector import FakeConnector, Script


# the store: the shared fake, taking each push onto its shelf
@dataclass
class Shelf:
    """What the store shows as available; takes pushes like Shopify: an absolute set, or a
    change applied once per idempotency key."""

    available: Decimal | None = None
    keys: set[str] = field(default_factory=set)

    def sell(self, units: int) -> None:
        assert self.available is not None
        self.available -= units

    def take(self, event: CanonicalEvent, ctx: DeliveryContext) -> None:
        d = ctx.directives
        if "delta" in d and not d.get("absolute"):
            if d["idempotency_key"] not in self.keys:
                assert self.available is not None
                self.available += Decimal(d["delta"])
                self.keys.add(d["idempotency_key"])
        else:
            self.available = event.payload_as(StockAvailability).available


@pytest.fixture
async def stock_rt(clean_db: str) -> AsyncIterator[tuple[Runtime, Shelf, FakeConnector]]:
    config = flows_config("  inventory: {erp_clock_margin_seconds: 0}")
    shelf = Shelf()
    shop = FakeConnector("shop", Script(decide=shelf.take), side="store", stock_updates="delta")
    rt, _ = await start_runtime(
        make_settings(clean_db),
        config,
        with_worker=False,
        connectors={"shop": shop, "erp": FakeConnector("erp")},
    )
    worker = InProcessWorker(rt)
    worker.start()
    yield rt, shelf, shop
    await worker.stop()
    await rt.close()


def level(on_hand: int, allocated: int = 0) -> CanonicalEvent:
    now = utcnow()
    return make_event(
        "inventory.level_changed",
        InventoryLevel(
            source="erp",
            sku="SKU-RED-M",
            location="1",
            on_hand=Decimal(on_hand),
            allocated=Decimal(allocated),
            as_of=now,
        ),
        now,
    )


async def record(rt: Runtime, source: str, event: CanonicalEvent) -> None:
    async with transaction(rt.sessions) as session:
        await record_events(session, rt, source, [event])


async def settled(rt: Runtime) -> bool:
    async with rt.sessions() as session:
        busy = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Delivery)
            .where(Delivery.status.in_(["pending", "in_flight"]))  # type: ignore[attr-defined]
        )
    return busy == 0


async def test_store_sales_between_pushes_are_never_undone(stock_rt: Any) -> None:
    rt, shelf, shop = stock_rt
    await record(rt, "erp", level(10))
    await wait_for(lambda: settled(rt), message="first push")
    first = shop.contexts[0].directives
    assert shelf.available == 10 and "delta" not in first  # first push: absolute

    # the store sells 3 and sends the order; the ERP books it, then reports its level
    shelf.sell(3)
    await record(
        rt, "shop", make_event("order.created", make_order("9", skus=("SKU-RED-M",) * 3), utcnow())
    )
    await wait_for(lambda: settled(rt), message="order booked")
    assert shelf.available == 7  # nothing the store sold came back
    await record(rt, "erp", level(10, allocated=3))
    await wait_for(lambda: settled(rt), message="level after the order")
    assert shelf.available == 7

    # an ERP-side change (a delivery of 5 more) reaches the store as +5
    await record(rt, "erp", level(15, allocated=3))
    await wait_for(lambda: settled(rt), message="restock")
    assert shelf.available == 12
    assert shop.contexts[-1].directives["delta"] == "5"


async def test_a_push_is_applied_once_even_when_retried(stock_rt: Any) -> None:
    rt, shelf, shop = stock_rt
    await record(rt, "erp", level(10))
    await wait_for(lambda: settled(rt), message="first push")
    await record(rt, "erp", level(8))
    await wait_for(lambda: settled(rt), message="second push")
    assert shelf.available == 8
    # the same delivery again (e.g. a replay after a timeout) carries the same key and delta
    async with transaction(rt.sessions) as session:
        last = (
            (await session.execute(sa.select(Delivery).order_by(Delivery.id.desc())))
            .scalars()
            .first()
        )  # type: ignore[union-attr]
        assert last is not None
        await session.execute(
            sa.update(Delivery)
            .where(Delivery.id == last.id)
            .values(status="pending", next_attempt_at=utcnow() - timedelta(seconds=1))  # type: ignore[arg-type]
        )
    from app.delivery.service import process_delivery

    await process_delivery(rt, int(last.id))
    again, before = shop.contexts[-1].directives, shop.contexts[-2].directives
    assert again["idempotency_key"] == before["idempotency_key"]
    assert shelf.available == 8
