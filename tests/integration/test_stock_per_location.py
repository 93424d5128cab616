"""Per-location stock and the store's orders in transit: an order lowers the stock of the
location it ships from, not every location, and not twice once the ERP has booked it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from app.config import GatewayConfig
from app.db import transaction
from app.delivery.worker import InProcessWorker
from app.main import start_runtime
from app.mappings.service import upsert_entries
from app.models import utcnow
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import InventoryLevel, StockAvailability
from kernel.types import DeliveryContext
from tests.conftest import make_settings, wait_for
from tests.integration.test_flow_pipeline import (
    T0,
    deliveries,
    flows_config,
    level,
    record,
)
from tests.integration.test_stock_push import settled
from tests.support.factories import make_order
from tests.support.fake_connector import FakeConnector, Script

PER_LOCATION = "  inventory: {mode: per_location, erp_clock_margin_seconds: 0"


@pytest.fixture
async def flow_rt(clean_db: str) -> AsyncIterator[Callable[[GatewayConfig], Awaitable[Runtime]]]:
    """Runtimes without a worker: what each event plans, nothing sent."""
    started: list[Runtime] = []

    async def start(config: GatewayConfig) -> Runtime:
        rt, _ = await start_runtime(make_settings(clean_db), config, with_worker=False)
        started.append(rt)
        return rt

    yield start
    for rt in started:
        await rt.close()


async def map_locations(rt: Runtime) -> None:
    """Orders tagged WH-n ship from ERP location n; ERP location n is store location gid-n."""
    async with transaction(rt.sessions) as session:
        await upsert_entries(session, "location", "erp", {"WH-1": "1", "WH-2": "2"})
        await upsert_entries(session, "location", "shop", {"1": "gid-1", "2": "gid-2"})


def order(external_id: str, *skus: str, tags: tuple[str, ...] = ()) -> CanonicalEvent:
    return make_event("order.created", make_order(external_id, skus=skus, tags=list(tags)), T0)


async def pending_stock(rt: Runtime, sku: str) -> dict[str | None, Decimal]:
    """What the store is about to be sent for ``sku``: store location → available."""
    return {
        d.payload["location"]: Decimal(d.payload["available"])
        for d in await deliveries(rt, destination="shop", status="pending")
        if d.payload and d.payload.get("sku") == sku
    }


async def test_an_order_for_one_location_lowers_that_location_only(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config(PER_LOCATION + "}"))
    await map_locations(rt)
    await record(rt, "shop", order("1", "SKU-1", "SKU-1", "SKU-1", tags=("location:WH-2",)))
    await record(rt, "erp", level("SKU-1", "1", "10", T0), level("SKU-1", "2", "10", T0))
    assert await pending_stock(rt, "SKU-1") == {"gid-1": 10, "gid-2": 7}


async def test_an_order_without_a_location_counts_at_the_default_or_everywhere(
    flow_rt: Any,
) -> None:
    # no tag, and its source (shop) has no location mapping: the gateway cannot tell
    rt = await flow_rt(flows_config(PER_LOCATION + "}"))
    await map_locations(rt)
    await record(rt, "shop", order("1", "SKU-1"))
    await record(rt, "erp", level("SKU-1", "1", "10", T0), level("SKU-1", "2", "10", T0))
    assert await pending_stock(rt, "SKU-1") == {"gid-1": 9, "gid-2": 9}  # never oversold

    rt = await flow_rt(flows_config(PER_LOCATION + ", default_order_location: '1'}"))
    await map_locations(rt)
    await record(rt, "shop", order("1", "SKU-2"))
    await record(rt, "erp", level("SKU-2", "1", "10", T0), level("SKU-2", "2", "10", T0))
    assert await pending_stock(rt, "SKU-2") == {"gid-1": 9, "gid-2": 10}


async def test_an_order_ships_from_its_source_connections_location(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config(PER_LOCATION + ", default_order_location: '1'}"))
    await map_locations(rt)
    async with transaction(rt.sessions) as session:  # one shop, one warehouse
        await upsert_entries(session, "location", "erp", {"shop": "2"})
    await record(rt, "shop", order("1", "SKU-1"))
    await record(rt, "erp", level("SKU-1", "1", "10", T0), level("SKU-1", "2", "10", T0))
    assert await pending_stock(rt, "SKU-1") == {"gid-1": 10, "gid-2": 9}


async def test_a_bundle_is_short_where_its_order_ships_from(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config(PER_LOCATION + ', bundles: {"KIT": {"A": 2}}}'))
    await map_locations(rt)
    await record(rt, "shop", order("1", "KIT", tags=("location:WH-2",)))
    await record(rt, "shop", order("2", "A", "A", "A", "A", tags=("location:WH-1",)))
    await record(rt, "erp", level("A", "1", "10", T0), level("A", "2", "10", T0))
    assert await pending_stock(rt, "KIT") == {"gid-1": 3, "gid-2": 4}
    assert await pending_stock(rt, "A") == {"gid-1": 6, "gid-2": 10}


async def test_aggregate_mode_still_counts_every_order_once(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config("  inventory: {mode: aggregate}"))
    await map_locations(rt)
    await record(rt, "shop", order("1", "SKU-1", tags=("location:WH-2",)))
    await record(rt, "shop", order("2", "SKU-1"))
    await record(rt, "erp", level("SKU-1", "1", "10", T0), level("SKU-1", "3", "5", T0))
    assert await pending_stock(rt, "SKU-1") == {None: 13}


# --- through the worker: computed when sent, after the ERP booked the order ---------------


@pytest.fixture
async def per_location_rt(
    clean_db: str,
) -> AsyncIterator[tuple[Runtime, dict[str | None, Decimal]]]:
    shelf: dict[str | None, Decimal] = {}

    def take(event: CanonicalEvent, ctx: DeliveryContext) -> None:
        item = event.payload_as(StockAvailability)
        shelf[item.location] = item.available  # per location: always absolute

    rt, _ = await start_runtime(
        make_settings(clean_db),
        flows_config(PER_LOCATION + "}"),
        with_worker=False,
        connectors={
            "shop": FakeConnector("shop", Script(decide=take), side="store"),
            "erp": FakeConnector("erp"),
        },
    )
    await map_locations(rt)
    worker = InProcessWorker(rt)
    worker.start()
    yield rt, shelf
    await worker.stop()
    await rt.close()


def level_now(location: str, on_hand: int, allocated: int = 0) -> CanonicalEvent:
    now = utcnow()
    return make_event(
        "inventory.level_changed",
        InventoryLevel(
            source="erp",
            sku="SKU-1",
            location=location,
            on_hand=Decimal(on_hand),
            allocated=Decimal(allocated),
            as_of=now,
        ),
        now,
    )


async def test_a_booked_order_leaves_transit_when_its_locations_level_has_it(
    per_location_rt: Any,
) -> None:
    rt, shelf = per_location_rt
    await record(rt, "erp", level_now("1", 10), level_now("2", 10))
    await wait_for(lambda: settled(rt), message="first pushes")
    assert shelf == {"gid-1": 10, "gid-2": 10}

    # the store sells 3 from WH-2; the ERP books the order (its level not updated yet)
    sold = make_order("9", skus=("SKU-1",) * 3, tags=["location:WH-2"])
    await record(rt, "shop", make_event("order.created", sold, utcnow()))
    await wait_for(lambda: settled(rt), message="order booked")
    assert shelf == {"gid-1": 10, "gid-2": 7}

    # WH-2's level now has the order; WH-1's level is older than the booking but says
    # nothing of it: the order is subtracted once, at WH-2
    await record(rt, "erp", level_now("2", 10, allocated=3))
    await wait_for(lambda: settled(rt), message="WH-2's level after the order")
    assert shelf == {"gid-1": 10, "gid-2": 7}
