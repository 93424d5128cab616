"""Maintenance windows where they can break: the engine never calls a connection in a window
(no attempt, no breaker failure) and delivers once it ends; a window added through the API
holds in every process; removing a window releases what waited; polls wait without failing.

The ERP here answers 503 while its maintenance runs, as a real one does: had the engine
called it during the window, attempts would be used and the breaker (3 failures) would open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

import app.models as models
from app.config import GatewayConfig, PollConfig
from app.configuration.maintenance import MaintenanceWindow
from app.delivery.service import process_delivery
from app.delivery.sweeper import sweep
from app.delivery.worker import InProcessWorker
from app.main import start_runtime
from app.models import ConnectionState, Delivery, DeliveryAttempt, Finding, PollCursor, utcnow
from app.runtime import Runtime
from app.scheduling import jobs
from kernel.canonical.events import CanonicalEvent
from kernel.errors import TransientError
from kernel.types import DeliveryContext
from tests.api.conftest import OPERATOR
from tests.conftest import make_config, make_settings, running_app, wait_for
from tests.support.factories import make_order, seed_event
from tests.support.fake_connector import FakeConnector, Script

pytestmark = pytest.mark.integration


def once(start: datetime, end: datetime, reason: str | None = None) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(
        {"from": start.isoformat(), "to": end.isoformat(), "reason": reason}
    )


class ErpInMaintenance(FakeConnector):
    """An ERP that answers 503 until ``until`` (its maintenance), then takes every order;
    it records when each call came."""

    def __init__(self, until: datetime | None = None) -> None:
        self.until = until or utcnow()
        self.called_at: list[datetime] = []
        super().__init__("erp", Script(decide=self._maintenance_answer))

    def _maintenance_answer(self, event: CanonicalEvent, ctx: DeliveryContext) -> None:
        now = utcnow()
        self.called_at.append(now)
        if now < self.until:
            raise TransientError("503 Service Unavailable: scheduled maintenance")


def config_with(*windows: MaintenanceWindow, fail_max: int = 3) -> GatewayConfig:
    config = make_config(breaker_fail_max=fail_max)
    erp = config.connection("erp")
    assert erp is not None
    erp.maintenance = list(windows)
    return config


Start = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def worker_rt(clean_db: str) -> AsyncIterator[Start]:
    """Runtimes with the in-process worker and its sweeper (every 0.5 s), like ``serve``."""
    started: list[tuple[Runtime, InProcessWorker]] = []

    async def start(erp: FakeConnector, config: GatewayConfig) -> Runtime:
        rt, _ = await start_runtime(
            make_settings(clean_db), config, with_worker=False, connectors={"erp": erp}
        )
        worker = InProcessWorker(rt)
        worker.start()
        started.append((rt, worker))
        return rt

    yield start
    for rt, worker in started:
        await worker.stop()
        await rt.close()


async def rows(rt: Runtime, *ids: int) -> list[Delivery]:
    async with rt.sessions() as session:
        found = await session.execute(
            sa.select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id)  # type: ignore[union-attr]
        )
        return list(found.scalars())


async def attempt_outcomes(rt: Runtime, delivery_id: int) -> list[str]:
    async with rt.sessions() as session:
        found = await session.execute(
            sa.select(DeliveryAttempt.outcome).where(DeliveryAttempt.delivery_id == delivery_id)
        )
        return list(found.scalars())


async def all_delivered(rt: Runtime, ids: list[int], timeout: float = 15) -> list[Delivery]:
    async def done() -> list[Delivery] | None:
        found = await rows(rt, *ids)
        return found if all(r.status == "delivered" for r in found) else None

    result: list[Delivery] = await wait_for(done, timeout=timeout, message="all delivered")
    return result


async def test_an_order_waits_for_the_window_without_a_call_or_an_attempt(
    worker_rt: Start,
) -> None:
    end = utcnow() + timedelta(seconds=2.5)
    erp = ErpInMaintenance(until=end)
    rt = await worker_rt(erp, config_with(once(utcnow() - timedelta(seconds=1), end, "upgrade")))
    ids = [await seed_event(rt, make_order(f"81{n:02d}")) for n in range(5)]

    async def all_waiting() -> bool:
        return all(r.last_error_class == "maintenance" for r in await rows(rt, *ids))

    await wait_for(all_waiting, timeout=5, message="the orders wait for the window")
    for row in await rows(rt, *ids):
        assert row.status == "pending" and row.attempts == 0
        assert row.next_attempt_at == end  # out when the window ends, not before
        assert "maintenance window (upgrade) until" in (row.last_error or "")
    assert erp.called_at == []  # the connector was never asked

    delivered = await all_delivered(rt, ids)
    # each went out once, after the window, with its first and only attempt
    assert len(erp.called_at) == 5 and min(erp.called_at) >= end
    assert [r.attempts for r in delivered] == [1] * 5
    for delivery_id in ids:
        assert await attempt_outcomes(rt, delivery_id) == ["delivered"]


async def test_a_window_does_not_open_the_breaker(worker_rt: Start) -> None:
    end = utcnow() + timedelta(seconds=2)
    erp = ErpInMaintenance(until=end)
    rt = await worker_rt(erp, config_with(once(utcnow(), end), fail_max=3))
    ids = [await seed_event(rt, make_order(f"82{n:02d}")) for n in range(8)]
    await all_delivered(rt, ids)
    assert erp.calls and all(call.ok for call in erp.calls)  # not one call got the 503
    assert (await rt.breakers.admit("erp", utcnow())).go
    async with rt.sessions() as session:
        state = await session.get(ConnectionState, "erp")
    assert state is None or state.breaker_state in (None, "closed")


async def test_a_window_added_through_the_api_holds_in_every_process(clean_db: str) -> None:
    """Two processes on one database: the API's (with its worker) and a worker alone that
    has no window in its config: both leave the ERP alone while the window is open."""
    api_erp, worker_erp = FakeConnector("erp"), FakeConnector("erp")
    settings = make_settings(clean_db)
    async with running_app(settings, make_config(), connectors={"erp": api_erp}) as (app, client):
        worker_rt, _ = await start_runtime(
            settings, make_config(), with_worker=False, connectors={"erp": worker_erp}
        )
        worker = InProcessWorker(worker_rt)
        worker.start()
        try:
            added = await client.post(
                "/api/v1/connections/erp/maintenance-windows",
                json={
                    "from": utcnow().isoformat(),
                    "to": (utcnow() + timedelta(hours=2)).isoformat(),
                    "reason": "NetSuite upgrade",
                },
                headers=OPERATOR,
            )
            assert added.status_code == 201, added.text
            api_rt: Runtime = app.state.runtime
            # each process queues (and so claims) its own: both must see the stored window
            ids = [await seed_event(api_rt, make_order(f"83{n}")) for n in range(3)]
            ids += [await seed_event(worker_rt, make_order(f"84{n}")) for n in range(3)]

            async def all_waiting() -> bool:
                found = await rows(api_rt, *ids)
                return all(r.last_error_class == "maintenance" for r in found)

            await wait_for(all_waiting, timeout=5, message="both processes defer to the window")
            assert api_erp.calls == [] and worker_erp.calls == []

            # the operator ends the maintenance early: what waited goes out at once
            window_id = added.json()["id"]
            deleted = await client.delete(
                f"/api/v1/connections/erp/maintenance-windows/{window_id}", headers=OPERATOR
            )
            assert deleted.status_code == 200, deleted.text
            delivered = await all_delivered(api_rt, ids, timeout=10)
            assert [r.attempts for r in delivered] == [1] * 6
            assert len(api_erp.calls) + len(worker_erp.calls) == 6
        finally:
            await worker.stop()
            await worker_rt.close()


@pytest.fixture
async def manual_rt(clean_db: str) -> AsyncIterator[Start]:
    """Runtimes without a worker: the test runs the engine and the sweeper itself."""
    started: list[Runtime] = []

    async def start(erp: FakeConnector, config: GatewayConfig) -> Runtime:
        rt, _ = await start_runtime(
            make_settings(clean_db), config, with_worker=False, connectors={"erp": erp}
        )
        started.append(rt)
        return rt

    yield start
    for rt in started:
        await rt.close()


class Collect:
    """A queue that only remembers what was queued."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    async def enqueue(self, delivery_id: int, *, at: datetime | None = None) -> None:
        self.ids.append(delivery_id)

    async def recover(self, delivery_id: int) -> None:
        self.ids.append(delivery_id)

    async def close(self) -> None:
        return None


async def test_a_window_taken_out_of_the_config_releases_what_waited(manual_rt: Start) -> None:
    """The obvious clean-up: the window was wrong, the operator removes it from the config
    and restarts; what waited for it must not sit until the old window's end."""
    erp = FakeConnector("erp")
    window = once(utcnow() - timedelta(minutes=1), utcnow() + timedelta(hours=3))
    before = await manual_rt(erp, config_with(window))
    before.queue = Collect()
    delivery_id = await seed_event(before, make_order("8501"), enqueue=False)
    assert (await process_delivery(before, delivery_id)).kind == "skipped"
    (row,) = await rows(before, delivery_id)
    assert row.status == "pending" and row.next_attempt_at > utcnow() + timedelta(hours=2)

    after = await manual_rt(erp, config_with())  # restarted without the window
    queue = Collect()
    after.queue = queue
    await sweep(after)
    assert delivery_id in queue.ids
    await process_delivery(after, delivery_id)
    (row,) = await rows(after, delivery_id)
    assert row.status == "delivered" and row.attempts == 1 and len(erp.calls) == 1


async def test_the_window_does_not_count_against_the_retry_window(
    manual_rt: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery failing for 20 s of its 30 s retry window waits out a 60 s window: its
    next failure is retried, not dead-lettered for time it spent waiting."""
    erp = FakeConnector("erp", Script(failing=TransientError("502 Bad Gateway")))
    window = once(utcnow() - timedelta(seconds=1), utcnow() + timedelta(seconds=60))
    rt = await manual_rt(erp, config_with(window, fail_max=100))
    rt.queue = Collect()
    delivery_id = await seed_event(rt, make_order("8601"), enqueue=False)
    async with rt.sessions() as session, session.begin():
        row = await session.get(Delivery, delivery_id)
        assert row is not None
        row.failing_since = utcnow() - timedelta(seconds=20)
    await process_delivery(rt, delivery_id)  # deferred to the window's end
    monkeypatch.setattr(models, "CLOCK_OFFSET", models.CLOCK_OFFSET + timedelta(seconds=61))
    await process_delivery(rt, delivery_id)
    (row,) = await rows(rt, delivery_id)
    assert len(erp.calls) == 1 and row.attempts == 1
    assert row.status == "pending", row.last_error  # 21 s of failing, not 81


async def test_polls_wait_for_the_window_without_failing(
    manual_rt: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    erp = FakeConnector(
        "erp",
        Script(poll_errors=[TransientError("503 Service Unavailable")] * 5),
        poll_streams={"inventory"},
    )
    config = config_with(once(utcnow() - timedelta(seconds=1), utcnow() + timedelta(minutes=5)))
    erp_config = config.connection("erp")
    assert erp_config is not None
    erp_config.poll = PollConfig(streams=["inventory"], interval_seconds=60)
    rt = await manual_rt(erp, config)
    done = await jobs.run_due_jobs(rt)
    assert "poll:erp:inventory" not in done and erp.polls == []
    async with rt.sessions() as session:
        assert await session.get(PollCursor, ("erp", "inventory")) is None  # due at the end
        findings = (await session.execute(sa.select(Finding.kind))).scalars().all()
    assert "poll_failed" not in findings

    monkeypatch.setattr(models, "CLOCK_OFFSET", models.CLOCK_OFFSET + timedelta(minutes=5))
    done = await jobs.run_due_jobs(rt)
    assert "poll:erp:inventory" in done and len(erp.polls) == 1  # at once when it ends
