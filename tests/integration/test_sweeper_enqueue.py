"""The sweeper queues what it read at once, a batch per Redis round trip: a delivery a
worker finishes between the sweeper's read and its enqueue has no job left to collapse
into, so every enqueue that comes late makes a job a worker then claims for nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.constants import default_queue_name

from app.delivery import sweeper
from app.delivery.queue import ArqQueue
from app.main import start_runtime
from app.runtime import Runtime
from tests.conftest import make_config, make_settings, require_redis
from tests.support.factories import make_order, seed_event

pytestmark = pytest.mark.integration


@pytest.fixture
async def rt(clean_db: str, redis_url: str | None) -> AsyncIterator[Runtime]:
    if redis_url is None:
        require_redis()
    runtime, _ = await start_runtime(
        make_settings(clean_db, redis_url=redis_url), make_config(), with_worker=False
    )
    yield runtime
    await runtime.close()


async def test_a_backlog_is_queued_in_a_few_round_trips(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 2 * sweeper.ENQUEUE_BATCH + 30
    # committed, never queued: what a process that died after its commits leaves behind
    ids = [await seed_event(rt, make_order(f"77{n:03d}"), enqueue=False) for n in range(count)]
    queue = rt.require_queue()
    assert isinstance(queue, ArqQueue)
    pipelines: list[int] = []
    run_scripts = queue._run_scripts

    async def counted(jobs: list[Any]) -> None:
        pipelines.append(len(jobs))
        await run_scripts(jobs)

    monkeypatch.setattr(queue, "_run_scripts", counted)

    assert await sweeper.sweep(rt) == count
    assert pipelines == [sweeper.ENQUEUE_BATCH, sweeper.ENQUEUE_BATCH, 30]  # was one per id
    queued = await queue.redis.zrange(default_queue_name, 0, -1)
    assert sorted(int(job.decode().rpartition(":")[2]) for job in queued) == sorted(ids)
