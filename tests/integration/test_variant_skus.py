"""Variant SKUs a store generates for configurable products resolve through their base SKU."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.db import transaction
from app.delivery.actions import release_parked
from app.delivery.worker import InProcessWorker
from app.flows.recorder import record_events
from app.main import start_runtime
from app.mappings.service import upsert_entries
from app.models import Delivery, utcnow
from app.runtime import Runtime
from kernel.canonical.events import make_event
from kernel.canonical.order import Order
from tests.conftest import make_settings, wait_for
from tests.integration.test_flow_pipeline import flows_config
from tests.support.factories import make_order
from tests.support.fake_connector import FakeConnector

PATTERN = "^(?P<base>[A-Z]+)-[A-Z]+-(XS|S|M|L|XL)$"


def items(erp: FakeConnector) -> list[list[str]]:
    """The ERP's item of each line of every order it took, from the SKU mappings it got."""
    return [
        [call.ctx.mappings["sku"][line.sku or ""] for line in call.event.payload_as(Order).lines]
        for call in erp.calls
        if call.ok
    ]


@pytest.fixture
async def variant_rt(clean_db: str) -> AsyncIterator[tuple[Runtime, FakeConnector]]:
    config = flows_config(f"  orders: {{variant_sku_pattern: '{PATTERN}'}}")
    erp = FakeConnector("erp", required_kinds={"sku"})
    rt, _ = await start_runtime(
        make_settings(clean_db), config, with_worker=False, connectors={"erp": erp}
    )
    worker = InProcessWorker(rt)
    worker.start()
    yield rt, erp
    await worker.stop()
    await rt.close()


async def status(rt: Runtime, delivery_id: int) -> str:
    async with rt.sessions() as session:
        row = await session.get(Delivery, delivery_id)
        assert row is not None
        return row.status


async def test_variant_uses_its_base_mapping_and_waits_for_it(variant_rt: Any) -> None:
    rt, erp = variant_rt
    async with transaction(rt.sessions) as session:
        await upsert_entries(session, "sku", "erp", {"TSHIRT": "1042"})
        first = await record_events(
            session,
            rt,
            "shop",
            [make_event("order.created", make_order("1", skus=("TSHIRT-RED-M",)), utcnow())],
        )
        second = await record_events(
            session,
            rt,
            "shop",
            [make_event("order.created", make_order("2", skus=("HOODIE-BLUE-L",)), utcnow())],
        )
    await wait_for(lambda: _is(rt, first.delivery_ids[0], "delivered"), message="variant delivered")
    assert items(erp) == [["1042"]]
    await wait_for(lambda: _is(rt, second.delivery_ids[0], "parked"), message="unknown base parked")
    async with transaction(rt.sessions) as session:
        await upsert_entries(session, "sku", "erp", {"HOODIE": "2001"})
        assert await release_parked(session, rt, "erp") == second.delivery_ids
    await wait_for(lambda: _is(rt, second.delivery_ids[0], "delivered"), message="released")
    assert items(erp)[-1] == ["2001"]


async def _is(rt: Runtime, delivery_id: int, wanted: str) -> bool:
    return await status(rt, delivery_id) == wanted
