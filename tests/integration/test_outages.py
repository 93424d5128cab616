"""Outages longer than any retry budget, in simulated time (an hour passes in seconds).

The engine runs as in production (claim, breaker, finish, sweeper) with the shipped default
policy; only the clock is moved forward and the sweeper is the only scheduler (as after a
restart, every retry waits in the database until it is due).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import app.models as models
from app.config import DeliveryPolicy
from app.delivery.service import process_delivery
from app.delivery.sweeper import sweep
from app.main import start_runtime
from app.models import ConnectionState, Delivery
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent
from kernel.errors import TransientError
from kernel.types import DeliveryContext
from tests.conftest import make_config, make_settings
from tests.support.factories import make_order, seed_event
from tests.support.fake_connector import FakeConnector


def refused() -> TransientError:
    return TransientError("ConnectError: [Errno 111] Connection refused")


def refusing(*entity_keys: str) -> Callable[[CanonicalEvent, DeliveryContext], None]:
    """A poison order: the ERP refuses the connection for these orders, whatever else."""

    def decide(event: CanonicalEvent, ctx: DeliveryContext) -> None:
        if event.entity_key in entity_keys:
            raise refused()

    return decide


class ManualQueue:
    """Collects what the engine and sweeper queue; the test runs it."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    async def enqueue(self, delivery_id: int, *, at: datetime | None = None) -> None:
        if delivery_id not in self.ids:
            self.ids.append(delivery_id)

    async def recover(self, delivery_id: int) -> None:
        await self.enqueue(delivery_id)

    async def close(self) -> None:
        return None


@pytest.fixture
async def simulated(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Runtime, FakeConnector, Any]]:
    config = make_config()
    config.delivery = DeliveryPolicy()  # the shipped defaults: 72 h window, breaker 5 / 30 s
    # the ERP: refuses connections while down (script.failing) or for poison orders
    erp = FakeConnector("erp")
    rt, _ = await start_runtime(
        make_settings(clean_db), config, with_worker=False, connectors={"erp": erp}
    )
    queue = ManualQueue()
    rt.queue = queue

    async def advance(seconds: float, step: float = 5.0) -> None:
        """Let ``seconds`` pass: sweep every ``step`` and run what got queued."""
        passed = 0.0
        while passed < seconds:
            monkeypatch.setattr(
                models, "CLOCK_OFFSET", models.CLOCK_OFFSET + timedelta(seconds=step)
            )
            passed += step
            await sweep(rt)
            while queue.ids:
                await process_delivery(rt, queue.ids.pop(0))

    yield rt, erp, advance
    await rt.close()


async def statuses(rt: Runtime) -> dict[str, int]:
    async with rt.sessions() as session:
        rows = await session.execute(
            sa.select(Delivery.status, sa.func.count()).group_by(Delivery.status)
        )
        return {status: int(n) for status, n in rows}


async def test_a_30_minute_outage_dead_letters_nothing_and_delivers_every_order_once(
    simulated: tuple[Runtime, FakeConnector, Any],
) -> None:
    rt, erp, advance = simulated
    erp.script.failing = refused()  # the ERP is down
    for n in range(12):
        await seed_event(rt, make_order(f"70{n:02d}"), enqueue=False)
    # with the old engine: attempts 1-5 fail, the breaker opens, every trial uses an attempt
    # of the delivery it happens to carry, attempt 8 is reached at ~4 minutes: dead
    for _ in range(6):  # 30 minutes, checked every 5
        await advance(300)
        assert "dead" not in await statuses(rt)
    calls_while_down = len(erp.calls)
    # the breaker opened after 5 failures; then one trial per 30 s reset period, no more
    assert calls_while_down <= 5 + (30 * 60) // 30 + 2
    erp.script.failing = None
    await advance(120)
    assert await statuses(rt) == {"delivered": 12}
    assert sorted(erp.accepted) == sorted(f"shop:order:70{n:02d}" for n in range(12))
    async with rt.sessions() as session:
        state = await session.scalar(
            sa.select(ConnectionState.breaker_state).where(ConnectionState.connection_id == "erp")
        )
    assert state == "closed"


async def test_a_poison_order_does_not_keep_the_breaker_open_for_the_others(
    simulated: tuple[Runtime, FakeConnector, Any],
) -> None:
    rt, erp, advance = simulated
    erp.script.decide = refusing("shop:order:7100")
    erp.script.failing = refused()
    await seed_event(rt, make_order("7100"), enqueue=False)
    for n in range(1, 6):
        await seed_event(rt, make_order(f"71{n:02d}"), enqueue=False)
    await advance(120)  # the breaker opens; the poison order is among those waiting
    erp.script.failing = None
    await advance(180)
    counts = await statuses(rt)
    # trials rotate: the poison order failing its trial does not stop the others
    assert counts.get("delivered") == 5, counts
    assert "shop:order:7100" not in erp.accepted


async def test_one_delivery_failing_alone_is_retried_for_the_window_then_dead(
    simulated: tuple[Runtime, FakeConnector, Any],
) -> None:
    rt, erp, advance = simulated
    rt.config.delivery = DeliveryPolicy(retry_window_seconds=3600, breaker_fail_max=1000)
    erp.script.decide = refusing("shop:order:7200")
    delivery_id = await seed_event(rt, make_order("7200"), enqueue=False)
    await advance(3000, step=60)
    assert (await statuses(rt)).get("pending") == 1
    await advance(1200, step=60)
    async with rt.sessions() as session:
        row = await session.get(Delivery, delivery_id)
    assert row is not None and row.status == "dead"
    assert "over 1 h (retry_window_seconds)" in (row.last_error or "")


async def test_one_sweep_queues_what_still_waits_for_a_destination_that_recovered(
    simulated: tuple[Runtime, FakeConnector, Any],
) -> None:
    # the breaker closed in a process that died before it released the waiting deliveries
    rt, _, _ = simulated
    delivery_id = await seed_event(rt, make_order("7300"), enqueue=False)
    async with rt.sessions() as session, session.begin():
        await session.execute(
            sa.update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(
                last_error_class="breaker_open",
                next_attempt_at=models.utcnow() + timedelta(minutes=10),
            )
        )
    queue = rt.queue
    assert isinstance(queue, ManualQueue)
    await sweep(rt)
    assert delivery_id in queue.ids  # queued by this sweep, not postponed to the next one
    await process_delivery(rt, queue.ids.pop(0))
    assert await statuses(rt) == {"delivered": 1}


async def test_a_breaker_no_process_mirrored_is_mirrored_and_tried_in_the_same_sweep(
    simulated: tuple[Runtime, FakeConnector, Any],
) -> None:
    # the breaker opened in the shared store; the process died before writing its copy
    rt, _, _ = simulated
    waiting = [await seed_event(rt, make_order(f"74{i:02}"), enqueue=False) for i in range(5)]
    async with rt.sessions() as session, session.begin():
        await session.execute(
            sa.update(Delivery)
            .where(sa.column("id").in_(waiting))
            .values(
                last_error_class="breaker_open",
                next_attempt_at=models.utcnow() + timedelta(minutes=10),
            )
        )
    opened = models.utcnow() - timedelta(seconds=40)  # the reset period (30 s) is over
    for _ in range(rt.breakers.policy("erp").breaker_fail_max):
        await rt.breakers.record("erp", opened, "failure", trial=False)
    queue = rt.queue
    assert isinstance(queue, ManualQueue)
    await sweep(rt)
    async with rt.sessions() as session:
        state = await session.get(ConnectionState, "erp")
    assert state is not None and state.breaker_state == "open"
    # this sweep saw the copy it just wrote: trial candidates, not the whole backlog
    assert len(queue.ids) == 3 and set(queue.ids) <= set(waiting)
