"""The delivery queue's one-round-trip enqueue writes what arq's own ``enqueue_job`` writes,
under the same rule: a job or a kept result under the id already means nothing to do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import structlog
from arq.constants import default_queue_name, job_key_prefix, result_key_prefix
from arq.jobs import Job, JobStatus

from app.delivery.queue import ArqQueue, QueueUnavailable, job_id_for
from app.models import utcnow
from tests.conftest import require_redis

pytestmark = pytest.mark.integration


@pytest.fixture
async def queue(redis_url: str | None) -> AsyncIterator[ArqQueue]:
    if redis_url is None:
        require_redis()
    assert redis_url is not None
    arq_queue = ArqQueue.connect_lazily(redis_url)
    yield arq_queue
    await arq_queue.close()


async def test_the_job_is_arq_s_and_queued_once(queue: ArqQueue) -> None:
    redis = queue.redis
    for _ in range(3):
        await queue.enqueue(41)
    await redis.enqueue_job("deliver", 42, _job_id=job_id_for(42))  # arq's own, to compare
    ours, theirs = Job(job_id_for(41), redis), Job(job_id_for(42), redis)
    mine, arqs = await ours.info(), await theirs.info()
    assert mine is not None and arqs is not None
    assert (mine.function, mine.args, mine.kwargs, mine.job_try) == ("deliver", (41,), {}, None)
    assert (arqs.function, arqs.args) == ("deliver", (42,))
    assert await ours.status() == JobStatus.queued
    assert await redis.zcard(default_queue_name) == 2  # three enqueues, one job
    # the same expiry as arq's (a day beyond the due time)
    ttl_mine = await redis.pttl(job_key_prefix + job_id_for(41))
    ttl_arq = await redis.pttl(job_key_prefix + job_id_for(42))
    assert abs(ttl_mine - ttl_arq) < 5_000


async def test_a_later_attempt_is_scored_at_its_time(queue: ArqQueue) -> None:
    at = utcnow() + timedelta(minutes=5)
    await queue.enqueue(43, at=at)
    score = await queue.redis.zscore(default_queue_name, job_id_for(43))
    assert score is not None and abs(score - at.timestamp() * 1000) < 2
    assert score > time.time() * 1000 + 250_000  # not run before its time


async def test_a_kept_result_blocks_the_same_id(queue: ArqQueue) -> None:
    # arq keeps a finished job's result under its id for a while: enqueueing it again then
    # is refused, by arq and by us alike (the sweeper queues it once the result expires)
    await queue.redis.set(result_key_prefix + job_id_for(44), b"result", px=60_000)
    await queue.enqueue(44)
    assert await queue.redis.zscore(default_queue_name, job_id_for(44)) is None


async def test_enqueues_of_one_moment_share_one_round_trip(
    queue: ArqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    real = queue.redis.pipeline

    def counted(*args: Any, **kwargs: Any) -> Any:
        sent.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(queue.redis, "pipeline", counted)
    await asyncio.gather(*(queue.enqueue(n) for n in range(100, 150)))
    assert len(sent) == 1  # fifty webhooks answered at once: one pipeline
    assert await queue.redis.zcard(default_queue_name) == 50


async def test_a_script_redis_forgot_is_loaded_again(queue: ArqQueue) -> None:
    await queue.enqueue(45)
    await queue.redis.script_flush()  # what a Redis restart does
    await queue.enqueue(46)
    assert await queue.redis.zscore(default_queue_name, job_id_for(46)) is not None


async def test_no_redis_is_a_clear_failure_then_a_quick_one() -> None:
    down = ArqQueue.connect_lazily("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(QueueUnavailable, match="did not take the job"):
            await down.enqueue(47)
        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match="a moment ago"):
            await down.enqueue(48)  # no second wait: the sweeper queues both
        assert time.monotonic() - started < 0.05
    finally:
        await down.close()


async def test_a_webhook_s_enqueue_does_not_wait_for_redis(queue: ArqQueue) -> None:
    started = time.monotonic()
    queue.enqueue_soon(49)  # returns at once: the answer goes out
    assert time.monotonic() - started < 0.01
    assert await queue.redis.zscore(default_queue_name, job_id_for(49)) is None  # not yet
    deadline = time.monotonic() + 5
    while await queue.redis.zscore(default_queue_name, job_id_for(49)) is None:
        assert time.monotonic() < deadline, "the batch was never sent"
        await asyncio.sleep(0.01)


async def test_a_batch_redis_refused_is_logged_for_the_sweeper() -> None:
    down = ArqQueue.connect_lazily("redis://127.0.0.1:1/0")
    try:
        with structlog.testing.capture_logs() as logs:
            down.enqueue_soon(50)
            down.enqueue_soon(51)
            await asyncio.gather(*down._sending)
        failed = [e for e in logs if e["event"].startswith("enqueue failed")]
        assert [e["delivery_ids"] for e in failed] == [[50, 51]]
        with pytest.raises(QueueUnavailable, match="a moment ago"):
            down.enqueue_soon(52)  # the sweeper queues it; no wait for Redis meanwhile
    finally:
        await down.close()
