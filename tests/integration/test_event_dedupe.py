"""One version of an entity, one event, whichever way it arrived (``app.ingest.dedupe``):
webhook then backfill poll, poll then a late webhook retry, a cancellation read twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest

from app.db import transaction
from app.flows.recorder import record_events
from app.ingest.dedupe import fresh_events
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import InventoryLevel
from tests.conftest import make_config, make_settings, running_app
from tests.support.factories import make_order
from tests.support.fake_connector import FakeConnector


@pytest.fixture
async def rt(clean_db: str) -> AsyncIterator[Runtime]:
    settings = make_settings(clean_db, schedule_tick_seconds=3600)
    async with running_app(settings, make_config(), connectors={"erp": FakeConnector("erp")}) as (
        app,
        _,
    ):
        yield app.state.runtime


def order_event(
    kind: str = "order.created", note: str | None = None, **extra: object
) -> CanonicalEvent:
    order = make_order("5001", note=note, **extra)
    return make_event(kind, order, order.updated_at or order.created_at)


async def record(rt: Runtime, *events: CanonicalEvent) -> None:
    async with transaction(rt.sessions) as session:
        await record_events(session, rt, "shop", list(events))


async def fresh(rt: Runtime, *events: CanonicalEvent, webhook: bool = False) -> list[str]:
    async with transaction(rt.sessions) as session:
        kept = await fresh_events(session, list(events), webhook=webhook)
    return [e.type for e in kept]


async def test_a_backfill_read_of_an_order_the_webhook_brought_records_nothing(
    rt: Runtime,
) -> None:
    await record(rt, order_event())
    assert await fresh(rt, order_event()) == []


async def test_a_late_webhook_of_an_order_the_backfill_read_records_nothing(rt: Runtime) -> None:
    await record(rt, order_event())  # read by the backfill while the webhook was failing
    assert await fresh(rt, order_event(), webhook=True) == []


async def test_a_changed_order_read_as_created_is_an_update(rt: Runtime) -> None:
    await record(rt, order_event())
    assert await fresh(rt, order_event(note="gift wrap")) == ["order.updated"]
    # the same change already recorded as an update: nothing again
    await record(rt, order_event("order.updated", note="gift wrap"))
    assert await fresh(rt, order_event(note="gift wrap")) == []


async def test_a_cancellation_is_recorded_once_whatever_changed_after(rt: Runtime) -> None:
    await record(rt, order_event("order.cancelled", status="cancelled"))
    later = order_event("order.updated", status="cancelled", note="refunded")
    again = order_event("order.cancelled", status="cancelled", note="refunded")
    assert await fresh(rt, later, again) == ["order.updated"]


async def test_a_batch_with_one_version_twice_keeps_one(rt: Runtime) -> None:
    assert await fresh(rt, order_event(), order_event()) == ["order.created"]


async def test_webhooks_leave_stock_levels_alone(rt: Runtime) -> None:
    # a stock level's time stamp matters (which orders it includes): never dropped on arrival
    level = InventoryLevel(
        source="erp",
        sku="SKU-RED-M",
        location="main",
        on_hand=Decimal(5),
        as_of=make_order().created_at,
    )
    event = make_event("inventory.level_changed", level, level.as_of)
    later = make_event(
        "inventory.level_changed",
        level.model_copy(update={"as_of": level.as_of + timedelta(minutes=1)}),
        level.as_of + timedelta(minutes=1),
    )
    await record(rt, event)
    assert await fresh(rt, later, webhook=True) == ["inventory.level_changed"]
