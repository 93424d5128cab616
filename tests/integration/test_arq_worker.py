"""Deliveries through Redis and a real arq worker (the production path)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import RedisSettings
from arq.worker import Worker

from app.delivery.arq_jobs import DeliveryWorker
from app.delivery.service import process_delivery
from app.delivery.worker import deliver, sweep_task, worker_options
from app.main import start_runtime
from app.runtime import Runtime
from kernel.errors import TransientError
from tests.conftest import make_config, make_settings, require_redis
from tests.integration.test_delivery_engine import scripted, wait_status
from tests.support.factories import make_order, seed_event
from tests.support.fake_connector import FakeConnector

pytestmark = pytest.mark.integration


@pytest.fixture
async def arq_stack(clean_db: str, redis_url: str | None) -> AsyncIterator[Any]:
    if redis_url is None:
        require_redis()
    runtimes: list[Runtime] = []
    workers: list[tuple[Worker, asyncio.Task[None]]] = []

    async def start(connector: FakeConnector, config: Any = None) -> Runtime:
        settings = make_settings(clean_db, redis_url=redis_url)
        config = config or make_config()
        api_rt, _ = await start_runtime(settings, config, with_worker=False)  # enqueues via arq
        worker_rt, _ = await start_runtime(
            settings, config, with_worker=False, connectors={"erp": connector}
        )
        runtimes.extend([api_rt, worker_rt])
        worker = DeliveryWorker(  # what ``erp-gateway worker`` runs
            **{**worker_options(settings), "poll_delay": 0.05},
            redis_settings=RedisSettings.from_dsn(redis_url),
            ctx={"runtime": worker_rt},
        )
        workers.append((worker, asyncio.create_task(worker.async_run())))
        return api_rt

    yield start
    for worker, task in workers:
        # arq cancels a job still running (often the sweeper cron) and re-raises that here
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for rt in runtimes:
        await rt.close()


async def test_arq_worker_delivers_and_retries_with_the_same_job(arq_stack: Any) -> None:
    connector = scripted([TransientError("502"), TransientError("502")])
    rt = await arq_stack(connector)
    delivery_id = await seed_event(rt, make_order("4001"))
    row = await wait_status(rt, delivery_id, "delivered")
    assert row.attempts == 3 and len(connector.calls) == 3


async def test_enqueueing_twice_runs_the_delivery_once(arq_stack: Any) -> None:
    connector = scripted()
    rt = await arq_stack(connector)
    delivery_id = await seed_event(rt, make_order("4002"), enqueue=False)
    queue = rt.require_queue()
    await asyncio.gather(*(queue.enqueue(delivery_id) for _ in range(5)))
    await wait_status(rt, delivery_id, "delivered")
    # a duplicate job could still sneak in after the first finished; it must find nothing to do
    assert (await process_delivery(rt, delivery_id)).kind == "skipped"
    assert len(connector.calls) == 1


async def test_lost_enqueue_is_recovered_by_the_sweeper_cron(arq_stack: Any) -> None:
    connector = scripted()
    rt = await arq_stack(connector)
    # committed, but the process died before it could enqueue
    delivery_id = await seed_event(rt, make_order("4003"), enqueue=False)
    await wait_status(rt, delivery_id, "delivered", timeout=20)
    assert len(connector.calls) == 1


def test_worker_settings_tie_job_timeout_to_the_lease() -> None:
    settings = make_settings(
        "sqlite+aiosqlite:///unused.db", redis_url="redis://127.0.0.1:6379/15", lease_seconds=42
    )
    opts = worker_options(settings)
    assert opts["job_timeout"] == 42 and opts["keep_result"] == 0
    assert opts["handle_signals"] is False  # ours: finish in-flight work, hand back the rest
    assert opts["functions"] == [deliver]
    assert opts["cron_jobs"][0].coroutine is sweep_task


async def test_a_stale_wake_up_of_a_waiting_delivery_does_not_hold_its_job(
    arq_stack: Any,
) -> None:
    # A wake-up (a trial candidate queued by one sweeper) can reach a worker after another
    # worker took the delivery and put it back to wait for its destination. The job must not
    # then sit in arq until the wait's safety net (600 s): the breaker's closing enqueues the
    # delivery under the same job id, which would be a no-op, and the delivery stuck.
    from datetime import timedelta

    import sqlalchemy as sa
    from arq.constants import default_queue_name, job_key_prefix

    from app.delivery.outbox import WAITING_FOR_DESTINATION
    from app.delivery.queue import job_id_for
    from app.models import Delivery, utcnow

    connector = scripted()
    rt = await arq_stack(connector, make_config(breaker_reset_seconds=600))
    for _ in range(3):  # the ERP is down: the breaker opens, no trial for ten minutes
        await rt.breakers.record("erp", utcnow(), "failure", trial=False)
    delivery_id = await seed_event(rt, make_order("4004"), enqueue=False)

    async def set_due(due: Any) -> None:
        async with rt.sessions() as session, session.begin():
            await session.execute(
                sa.update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(last_error_class=WAITING_FOR_DESTINATION, next_attempt_at=due)
            )

    await set_due(utcnow() + timedelta(seconds=600))  # waiting for its destination
    queue = rt.require_queue()
    redis = queue.redis  # type: ignore[attr-defined]
    job = job_id_for(delivery_id)
    await queue.enqueue(delivery_id)  # the stale wake-up
    for _ in range(200):
        if not await redis.exists(job_key_prefix + job):
            break
        await asyncio.sleep(0.05)
    assert not await redis.exists(job_key_prefix + job)  # done with, not deferred
    assert await redis.zscore(default_queue_name, job) is None
    assert connector.calls == []
    # the ERP answers a trial: the breaker closes and what waited is released and queued
    await rt.breakers.record("erp", utcnow(), "success", trial=True)
    await set_due(utcnow())
    await queue.enqueue(delivery_id)
    await wait_status(rt, delivery_id, "delivered", timeout=10)
