"""The gateway's one-round-trip enqueue writes the job arq's own ``enqueue_job`` would:
arq reads it back, the same delivery queued twice is one job, a finished job (its result
kept) is not queued again, and a deferred one is scored at its due time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name, job_key_prefix, result_key_prefix
from arq.jobs import Job, JobStatus

from app.delivery.queue import ArqQueue, job_id_for


@pytest.fixture
async def arq_pair(redis_url: str | None) -> AsyncIterator[tuple[ArqQueue, ArqRedis]]:
    if redis_url is None:
        pytest.skip("needs Redis")
    queue = ArqQueue.connect_lazily(redis_url)
    reference = await create_pool(RedisSettings.from_dsn(redis_url))
    yield queue, reference
    await queue.close()
    await reference.aclose()


async def test_arq_reads_the_job_as_its_own(arq_pair: tuple[ArqQueue, ArqRedis]) -> None:
    queue, reference = arq_pair
    await queue.enqueue(7)
    await reference.enqueue_job("deliver", 8, _job_id=job_id_for(8))
    ours = await Job(job_id_for(7), reference).info()
    theirs = await Job(job_id_for(8), reference).info()
    assert ours is not None and theirs is not None
    assert (ours.function, ours.args, ours.kwargs, ours.job_try) == ("deliver", (7,), {}, None)
    assert (theirs.function, theirs.args) == ("deliver", (8,))
    assert await Job(job_id_for(7), reference).status() == JobStatus.queued
    ttl_ours = await reference.pttl(job_key_prefix + job_id_for(7))
    ttl_theirs = await reference.pttl(job_key_prefix + job_id_for(8))
    assert abs(ttl_ours - ttl_theirs) < 5_000  # the same expiry: a day


async def test_the_same_delivery_twice_is_one_job(arq_pair: tuple[ArqQueue, ArqRedis]) -> None:
    queue, reference = arq_pair
    await queue.enqueue(9)
    first = await reference.zscore(default_queue_name, job_id_for(9))
    await queue.enqueue(9)
    assert await reference.zcard(default_queue_name) == 1
    assert await reference.zscore(default_queue_name, job_id_for(9)) == first


async def test_a_finished_job_is_not_queued_again(arq_pair: tuple[ArqQueue, ArqRedis]) -> None:
    queue, reference = arq_pair
    await reference.set(result_key_prefix + job_id_for(10), b"done")
    await queue.enqueue(10)
    assert await reference.zcard(default_queue_name) == 0


async def test_a_deferred_job_is_scored_at_its_due_time(
    arq_pair: tuple[ArqQueue, ArqRedis],
) -> None:
    queue, reference = arq_pair
    due = datetime.now(UTC) + timedelta(minutes=5)
    await queue.enqueue(11, at=due)
    score = await reference.zscore(default_queue_name, job_id_for(11))
    assert score is not None and abs(score - due.timestamp() * 1000) < 2
