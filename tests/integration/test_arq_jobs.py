"""``DeliveryWorker`` starts a job in one Redis round trip and never asks Redis about a job it
is running itself; what arq promises stays: a job runs in one worker at a time, only when due."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import RedisSettings, create_pool
from arq.constants import default_queue_name, in_progress_key_prefix, job_key_prefix
from arq.utils import timestamp_ms

from app.delivery.arq_jobs import DeliveryWorker
from tests.conftest import require_redis

pytestmark = pytest.mark.integration

started: list[str] = []
gate = asyncio.Event()


async def slow(ctx: dict[str, Any], name: str) -> str:
    started.append(name)
    await gate.wait()
    return name


@pytest.fixture
async def arq_redis(redis_url: str | None) -> AsyncIterator[Any]:
    if redis_url is None:
        require_redis()
    assert redis_url
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    started.clear()
    gate.clear()
    yield redis_url, pool
    await pool.aclose()


def make_worker(redis_url: str, **options: Any) -> DeliveryWorker:
    return DeliveryWorker(
        functions=[slow],
        redis_settings=RedisSettings.from_dsn(redis_url),
        poll_delay=0.01,
        keep_result=0,
        handle_signals=False,
        **options,
    )


async def stop(*workers: DeliveryWorker) -> None:
    gate.set()
    for worker in workers:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()


async def test_a_due_job_is_taken_by_one_worker_only(arq_redis: Any) -> None:
    url, pool = arq_redis
    await pool.enqueue_job("slow", "a", _job_id="job-a")
    one, two = make_worker(url), make_worker(url)
    one._pool = two._pool = pool
    scores = await asyncio.gather(one._take_job("job-a"), two._take_job("job-a"))
    assert sorted(s > 0 for s in scores) == [False, True]
    assert await pool.exists(in_progress_key_prefix + "job-a")
    # taken: nobody takes it again while it is in progress
    assert await one._take_job("job-a") == 0
    await stop(one, two)


async def test_a_job_not_due_or_gone_is_not_taken(arq_redis: Any) -> None:
    url, pool = arq_redis
    worker = make_worker(url)
    worker._pool = pool
    await pool.enqueue_job("slow", "later", _job_id="job-later", _defer_by=60)
    assert await worker._take_job("job-later") == 0
    assert await worker._take_job("job-never-queued") == 0
    assert not await pool.exists(in_progress_key_prefix + "job-later")
    assert not await pool.exists(in_progress_key_prefix + "job-never-queued")
    # due now: taken, with arq's in-progress expiry and the score the queue holds
    await pool.zadd(default_queue_name, {"job-later": timestamp_ms() - 5})
    score = await worker._take_job("job-later")
    assert 0 < score <= timestamp_ms()
    ttl = await pool.pttl(in_progress_key_prefix + "job-later")
    assert 0 < ttl <= worker.in_progress_timeout_s * 1000
    await stop(worker)


async def test_a_running_job_is_not_asked_about_again(arq_redis: Any) -> None:
    url, pool = arq_redis
    worker = make_worker(url)
    asked: list[str] = []
    take = worker._take_job

    async def counted(job_id: str) -> int:
        asked.append(job_id)
        return await take(job_id)

    worker._take_job = counted  # type: ignore[method-assign]
    runner = asyncio.create_task(worker.async_run())
    await pool.enqueue_job("slow", "b", _job_id="job-b")
    for _ in range(200):
        if started:
            break
        await asyncio.sleep(0.01)
    assert started == ["b"]
    await asyncio.sleep(0.2)  # some twenty polls see the job in the queue while it runs
    assert asked == ["job-b"]
    gate.set()
    for _ in range(200):
        if not await pool.exists(job_key_prefix + "job-b"):
            break
        await asyncio.sleep(0.01)
    assert not await pool.zscore(default_queue_name, "job-b")  # finished and gone
    await stop(worker)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert started == ["b"]


async def test_redis_failing_mid_take_leaves_no_slot_taken(arq_redis: Any) -> None:
    url, pool = arq_redis
    worker = make_worker(url, max_jobs=2)
    worker._pool = pool

    async def unreachable(job_id: str) -> int:
        raise ConnectionError("Redis went away")

    worker._take_job = unreachable  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await worker.start_jobs([b"job-c"])
    # arq's loop ends on the error and the worker reconnects; its job count is intact
    assert worker.job_counter == 0 and worker.tasks == {}
    for _ in range(3):  # max_jobs + 1 permits, all free again
        await asyncio.wait_for(worker.sem.acquire(), 1)
    await stop(worker)


class CountedWorker(DeliveryWorker):
    polls = 0

    async def _poll_iteration(self) -> None:
        self.polls += 1
        await super()._poll_iteration()


async def test_an_idle_worker_polls_at_its_idle_pace_and_picks_up_new_work(
    arq_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.delivery.arq_jobs as arq_jobs

    monkeypatch.setattr(arq_jobs, "IDLE_AFTER_SECONDS", 0.3)
    url, pool = arq_redis
    worker = CountedWorker(
        functions=[slow],
        redis_settings=RedisSettings.from_dsn(url),
        poll_delay=0.01,
        keep_result=0,
        handle_signals=False,
    )
    worker.idle_poll_seconds = 0.2
    # a cron job of the worker's own (named as arq names them) running all along: not work
    await pool.enqueue_job("slow", "cron", _job_id="cron:slow:1")
    runner = asyncio.create_task(worker.async_run())
    await asyncio.sleep(1.3)  # 0.3 s at 10 ms, then 1 s at 200 ms
    assert started == ["cron"]
    # about 35 (fast in its first moments); fast all along: 130. The lower bound is loose: on a
    # loaded machine (the full suite in CI) the loop gets fewer turns (14 once)
    assert 3 < worker.polls < 50
    gate.set()  # jobs from now on finish at once
    enqueued = asyncio.get_running_loop().time()
    await pool.enqueue_job("slow", "c", _job_id="job-c")
    for _ in range(100):
        if len(started) == 2:
            break
        await asyncio.sleep(0.01)
    assert started == ["cron", "c"]
    assert asyncio.get_running_loop().time() - enqueued < 1.0  # the idle pace, with slack
    before = worker.polls
    await asyncio.sleep(0.2)  # it just had work: fast again
    assert worker.polls - before > 3  # fast (about 20); the idle pace would give 1
    await stop(worker)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
