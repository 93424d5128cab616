"""The delivery engine against a real database, with the shared fake connector as the
destination (scripted errors, then an ERP that answers with the items its SKUs map to)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from app.config import GatewayConfig
from app.db import transaction
from app.delivery.actions import release_parked, replay
from app.delivery.worker import InProcessWorker
from app.main import start_runtime
from app.mappings.service import upsert_entries
from app.models import CanonicalEventRow, ConnectionState, Delivery, DeliveryAttempt, EntityLink
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import Order
from kernel.errors import NeedsMappingError, PermanentError, RateLimitedError, TransientError
from kernel.mappings import ORDER_EVENTS, require
from kernel.types import DeliveryContext, DeliveryResult, MappingNeed, RemoteLink
from tests.conftest import make_config, make_settings, wait_for
from tests.support.factories import make_order, seed_event
from tests.support.fake_connector import FakeConnector, Script


def so_of_mapped_items(event: CanonicalEvent, ctx: DeliveryContext) -> DeliveryResult | None:
    """The ERP's answer to an order: a sales order named after the items its SKUs map to."""
    if event.type not in ORDER_EVENTS:
        return None  # a cancel names the order only
    skus = [line.sku or "" for line in event.payload_as(Order).lines]
    items = require(ctx, "sku", skus)
    name = "-".join(items[sku] for sku in skus)
    return DeliveryResult(links=[RemoteLink("order", event.entity_key, f"SO-{name}")])


def scripted(errors: list[Exception] | None = None) -> FakeConnector:
    """The ERP: needs a SKU mapping per line; raises ``errors`` in turn, then takes orders."""
    script = Script(deliver_errors=list(errors or []), decide=so_of_mapped_items)
    return FakeConnector("erp", script, required_kinds={"sku"})


@pytest.fixture
async def engine_rt(clean_db: str) -> AsyncIterator[Any]:
    started: list[tuple[Runtime, Any]] = []

    async def start(connector: FakeConnector, config: GatewayConfig | None = None) -> Runtime:
        settings = make_settings(clean_db)
        rt, _ = await start_runtime(
            settings, config or make_config(), with_worker=False, connectors={"erp": connector}
        )
        worker = InProcessWorker(rt)
        worker.start()
        started.append((rt, worker))
        return rt

    yield start
    for rt, worker in started:
        await worker.stop()
        await rt.close()


async def delivery(rt: Runtime, delivery_id: int) -> Delivery:
    async with rt.sessions() as session:
        row = await session.get(Delivery, delivery_id)
        assert row is not None
        return row


async def attempts(rt: Runtime, delivery_id: int) -> list[DeliveryAttempt]:
    async with rt.sessions() as session:
        rows = await session.execute(
            sa.select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
        return list(rows.scalars())


async def wait_status(rt: Runtime, delivery_id: int, status: str, timeout: float = 15) -> Delivery:
    async def check() -> Delivery | None:
        row = await delivery(rt, delivery_id)
        return row if row.status == status else None

    result: Delivery = await wait_for(check, timeout=timeout, message=f"delivery {status}")
    return result


async def test_transient_errors_are_retried_then_delivered_and_linked(engine_rt: Any) -> None:
    connector = scripted([TransientError("502 from NetSuite"), TransientError("timeout")])
    rt = await engine_rt(connector)
    delivery_id = await seed_event(rt, make_order("2001"))
    row = await wait_status(rt, delivery_id, "delivered")
    assert row.attempts == 3
    outcomes = [a.outcome for a in await attempts(rt, delivery_id)]
    assert outcomes == ["transient", "transient", "delivered"]
    async with rt.sessions() as session:
        link = await session.scalar(
            sa.select(EntityLink).where(EntityLink.our_key == "shop:order:2001")
        )
    assert link is not None and link.remote_id == "SO-1042"


async def test_permanent_error_goes_dead_at_once_with_the_reason(engine_rt: Any) -> None:
    connector = scripted([PermanentError("NetSuite rejected: Please enter a value for [entity]")])
    rt = await engine_rt(connector)
    delivery_id = await seed_event(rt, make_order("2002"))
    row = await wait_status(rt, delivery_id, "dead")
    assert row.attempts == 1
    assert "Please enter a value for [entity]" in (row.last_error or "")
    assert len(connector.calls) == 1


async def test_transient_errors_of_one_delivery_end_after_the_retry_window(
    engine_rt: Any,
) -> None:
    # the destination answers (its breaker stays closed); only this delivery keeps failing
    connector = scripted([TransientError("503")] * 50)
    config = make_config(retry_window_seconds=0.6, breaker_fail_max=100)
    rt = await engine_rt(connector, config)
    delivery_id = await seed_event(rt, make_order("2003"))
    row = await wait_status(rt, delivery_id, "dead")
    assert row.attempts >= 2 and len(connector.calls) == row.attempts
    assert f"gave up after {row.attempts} attempts over" in (row.last_error or "")
    assert "retry_window_seconds" in (row.last_error or "")


async def test_rate_limit_waits_without_using_an_attempt(engine_rt: Any) -> None:
    connector = scripted([RateLimitedError("429", retry_after=0.2)] * 4)
    rt = await engine_rt(connector, make_config(retry_window_seconds=0.1))
    delivery_id = await seed_event(rt, make_order("2004"))
    row = await wait_status(rt, delivery_id, "delivered")
    assert row.attempts == 1  # four 429s are neither attempts nor failures
    assert [a.outcome for a in await attempts(rt, delivery_id)].count("rate_limited") == 4


async def test_unmapped_sku_parks_then_mapping_releases_it(engine_rt: Any) -> None:
    connector = scripted()
    rt = await engine_rt(connector)
    delivery_id = await seed_event(rt, make_order("2005", skus=("SKU-RED-M", "SKU-NEW")))
    row = await wait_status(rt, delivery_id, "parked")
    assert "SKU-NEW" in (row.parked_reason or "") and connector.calls == []
    async with transaction(rt.sessions) as session:
        await upsert_entries(session, "sku", "erp", {"SKU-NEW": "2077"})
        released = await release_parked(session, rt, "erp")
    assert released == [delivery_id]
    await wait_status(rt, delivery_id, "delivered")
    assert len(connector.calls) == 1


async def test_open_breaker_defers_without_burning_attempts(engine_rt: Any) -> None:
    # breaker_fail_max=3 in the test config; the window is shorter than the outage
    connector = scripted([TransientError("connection refused")] * 12)
    config = make_config(retry_window_seconds=0.2, breaker_reset_seconds=0.3)
    rt = await engine_rt(connector, config)
    ids = [await seed_event(rt, make_order(f"30{i:02d}")) for i in range(5)]
    await wait_for(lambda: _breaker_opened(rt), message="breaker open")
    for delivery_id in ids:
        await wait_status(rt, delivery_id, "delivered", timeout=30)
    async with rt.sessions() as session:
        total_attempts = await session.scalar(sa.select(sa.func.sum(Delivery.attempts)))
    # every failed call (the first three, then one trial at a time) was an attempt, but
    # waiting on the open breaker was not, and nothing died though the outage outlasted
    # the retry window
    assert total_attempts == 12 + 5


async def _breaker_opened(rt: Runtime) -> bool:
    async with rt.sessions() as session:
        state = await session.scalar(
            sa.select(ConnectionState.breaker_state).where(ConnectionState.connection_id == "erp")
        )
    return state == "open"


async def test_updates_wait_for_the_create_of_the_same_order(engine_rt: Any) -> None:
    connector = scripted([TransientError("slow start")] * 2)
    rt = await engine_rt(connector)
    order = make_order("2006")
    create_id = await seed_event(rt, order, "order.created")
    update_id = await seed_event(rt, order, "order.updated")
    cancel_id = await seed_event(rt, order, "order.cancelled")
    for delivery_id in (create_id, update_id, cancel_id):
        await wait_status(rt, delivery_id, "delivered")
    # the update and cancel never went out before the create had succeeded
    assert [event_type for event_type, _ in connector.delivered] == [
        "order.created",
        "order.created",
        "order.created",
        "order.updated",
        "order.cancelled",
    ]


async def test_replay_of_a_dead_delivery_sends_it_again(engine_rt: Any) -> None:
    connector = scripted([PermanentError("item inactive")])
    rt = await engine_rt(connector)
    delivery_id = await seed_event(rt, make_order("2007"))
    await wait_status(rt, delivery_id, "dead")
    async with transaction(rt.sessions) as session:
        assert [step.id for step in await replay(session, rt, [delivery_id])] == [delivery_id]
    row = await wait_status(rt, delivery_id, "delivered")
    # a replay starts a fresh run (its backoff), and its attempt is numbered after the first
    assert (row.attempts, row.run_attempts) == (2, 1)


async def test_expired_lease_is_reclaimed_by_the_sweeper(engine_rt: Any) -> None:
    connector = scripted()
    rt = await engine_rt(connector)
    delivery_id = await seed_event(rt, make_order("2008"), enqueue=False)
    # a worker claimed it and died: in_flight with a lease that has run out
    from datetime import timedelta

    from app.models import utcnow

    async with transaction(rt.sessions) as session:
        await session.execute(
            sa.update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(
                status="in_flight",
                lease_owner="dead-worker",
                lease_expires_at=utcnow() - timedelta(seconds=1),
            )
        )
    await wait_status(rt, delivery_id, "delivered")
    assert len(connector.calls) == 1


async def test_a_stored_event_that_no_longer_validates_goes_dead_with_the_reason(
    engine_rt: Any,
) -> None:
    connector = scripted()
    rt = await engine_rt(connector)
    delivery_id = await seed_event(rt, make_order("2009"), enqueue=False)
    # stored before today's validation (or by hand): a negative quantity
    async with transaction(rt.sessions) as session:
        event_id = (await session.get(Delivery, delivery_id)).canonical_event_id  # type: ignore[union-attr]
        row = await session.get(CanonicalEventRow, event_id)
        assert row is not None
        payload = dict(row.payload)
        payload["lines"] = [{**payload["lines"][0], "quantity": "-5"}]
        await session.execute(
            sa.update(CanonicalEventRow)
            .where(CanonicalEventRow.id == event_id)
            .values(payload=payload)
        )
    row = await wait_status(rt, delivery_id, "dead")
    assert "does not pass validation any more" in (row.last_error or "")
    assert "lines[0].quantity" in (row.last_error or "")
    assert connector.calls == []


def looks_up_skus(event: CanonicalEvent, ctx: DeliveryContext) -> None:
    """An ERP that declares no mappings up front; finds a SKU missing only when it looks
    (like Tryton's product lookup by code), and then takes a mapping if the gateway has one."""
    unknown = [
        line.sku
        for line in event.payload_as(Order).lines
        if line.sku not in ctx.mappings.get("sku", {}) and line.sku != "SKU-RED-M"
    ]
    if unknown:
        raise NeedsMappingError([MappingNeed("sku", sku or "") for sku in unknown])


async def test_a_mapping_the_connector_asked_for_reaches_it_after_the_release(
    engine_rt: Any,
) -> None:
    connector = FakeConnector("erp", Script(decide=looks_up_skus))
    rt = await engine_rt(connector)
    delivery_id = await seed_event(rt, make_order("2010", skus=("SKU-RED-M", "SKU-ODD")))
    await wait_status(rt, delivery_id, "parked")
    async with transaction(rt.sessions) as session:
        await upsert_entries(session, "sku", "erp", {"SKU-ODD": "3001"})
        assert await release_parked(session, rt, "erp") == [delivery_id]
    await wait_status(rt, delivery_id, "delivered")
    assert len(connector.calls) == 2


async def test_a_connector_crashing_before_the_call_is_retried_not_stuck(engine_rt: Any) -> None:
    connector = scripted()
    # its mapping question crashes once (a bug in the connector), then answers
    connector.script.mapping_errors.append(KeyError("a bug in the connector"))
    rt = await engine_rt(connector)
    # written without the look-up keys: asking for them here would take the crash
    delivery_id = await seed_event(rt, make_order("2011"), lookup=False)
    row = await wait_status(rt, delivery_id, "delivered")
    outcomes = [a.outcome for a in await attempts(rt, delivery_id)]
    assert outcomes == ["internal", "delivered"] and row.attempts == 2
