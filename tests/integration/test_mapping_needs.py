"""One mechanism for mappings: what a connector cannot do without, what the route's rules
require and what the connector uses when it exists are resolved in one place, with the keys
``kernel.mappings`` defines, so a rule and the connector can never disagree about a key.

Through the real planner (route rules), engine and database, with the shared fake connector.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from app.config import parse_config
from app.db import transaction
from app.delivery.actions import release_parked
from app.flows.recorder import record_events
from app.mappings.service import upsert_entries
from app.models import Delivery
from kernel.canonical.events import make_event
from kernel.canonical.order import ShippingLine
from tests.conftest import gateway_config_yaml, make_settings, running_app, wait_for
from tests.support.factories import make_order, usd
from tests.support.fake_connector import FakeConnector


def config(rules: str = "") -> Any:
    return parse_config(gateway_config_yaml() + (f"rules:\n{rules}\n" if rules else ""), "t")


@pytest.fixture
async def gateway(clean_db: str) -> AsyncIterator[Any]:
    started: list[Any] = []

    async def start(rules: str = "") -> tuple[Any, FakeConnector]:
        shop = FakeConnector("shop", side="store")
        erp = FakeConnector(
            "erp",
            required_kinds=frozenset({"sku"}),
            mapping_kinds=frozenset({"shipping_method", "location"}),
        )
        context = running_app(
            make_settings(clean_db), config(rules), connectors={"shop": shop, "erp": erp}
        )
        app, _ = await context.__aenter__()
        started.append(context)
        return app.state.runtime, erp

    yield start
    for context in started:
        await context.__aexit__(None, None, None)


async def send_order(rt: Any, number: str, **extra: Any) -> int:
    order = make_order(number, **extra)
    async with transaction(rt.sessions) as session:
        recorded = await record_events(
            session, rt, "shop", [make_event("order.created", order, order.created_at)]
        )
    (delivery_id,) = recorded.delivery_ids
    return int(delivery_id)


async def status_of(rt: Any, delivery_id: int, status: str) -> Delivery:
    async def check() -> Delivery | None:
        async with rt.sessions() as session:
            row = await session.get(Delivery, delivery_id)
        return row if row is not None and row.status == status else None

    row: Delivery = await wait_for(check, timeout=15, message=f"delivery {status}")
    return row


DHL = ShippingLine(code="dhl-express", title="DHL Express", price=usd("9.90"))


async def test_a_mapping_the_connector_uses_when_it_exists_reaches_it_and_none_parks(
    gateway: Any,
) -> None:
    rt, erp = await gateway()
    async with transaction(rt.sessions) as session:
        await upsert_entries(session, "shipping_method", "erp", {"dhl-express": "SHIP-7"})
    first = await send_order(rt, "5001", shipping_lines=[DHL])
    await status_of(rt, first, "delivered")
    # no location mapping exists: handed over without it, nothing parked
    assert erp.contexts[-1].mappings == {
        "sku": {"SKU-RED-M": "1042"},
        "shipping_method": {"dhl-express": "SHIP-7"},
    }
    second = await send_order(rt, "5002")  # no shipping line: nothing to look up
    await status_of(rt, second, "delivered")
    assert "shipping_method" not in erp.contexts[-1].mappings


async def test_a_kind_the_route_requires_parks_with_the_key_the_connector_reads(
    gateway: Any,
) -> None:
    rt, erp = await gateway("  orders: {required_mappings: [location]}")
    # no location tag: the order's location key is the shop it came from, for the rule and
    # for the connector alike
    parked = await status_of(rt, await send_order(rt, "5003"), "parked")
    assert parked.needs == [{"kind": "location", "key": "shop"}] and erp.delivered == []
    async with transaction(rt.sessions) as session:
        await upsert_entries(session, "location", "erp", {"shop": "LOC-1"})
        assert await release_parked(session, rt, "erp") == [parked.id]
    await status_of(rt, int(parked.id or 0), "delivered")
    assert erp.contexts[-1].mappings["location"] == {"shop": "LOC-1"}
    # a location tag names the order's own location instead
    tagged = await send_order(rt, "5004", tags=["location:WH-2"])
    row = await status_of(rt, tagged, "parked")
    assert row.needs == [{"kind": "location", "key": "WH-2"}]


async def test_a_missing_sku_the_connector_requires_still_parks(gateway: Any) -> None:
    rt, erp = await gateway()
    row = await status_of(rt, await send_order(rt, "5005", skus=("SKU-NEW",)), "parked")
    assert row.needs == [{"kind": "sku", "key": "SKU-NEW"}] and erp.delivered == []
    async with rt.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 1
