"""Two queues behind one interface: arq on Redis, or in-process when no Redis is configured.

Both dedupe by delivery id (arq by job id), so enqueueing twice is harmless; the sweeper and
the lease make up for anything a queue loses (a crash, a restart, a lost Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

log = structlog.get_logger("gateway.queue")


def job_id_for(delivery_id: int) -> str:
    return f"delivery:{delivery_id}"


class DeliveryQueue(Protocol):
    async def enqueue(self, delivery_id: int, *, at: datetime | None = None) -> None: ...

    async def recover(self, delivery_id: int) -> None:
        """Queue a delivery whose worker's lease expired (the worker likely died)."""
        ...

    async def close(self) -> None: ...


# A Redis call on the request path waits at most this long: enqueueing after a commit is
# best-effort (the sweeper is the guarantee), so a hung Redis never slows a webhook answer.
ENQUEUE_TIMEOUT_SECONDS = 0.25
# After a failed enqueue, skip Redis for this long instead of paying the timeout per request.
ENQUEUE_COOL_DOWN_SECONDS = 2.0


class QueueUnavailable(Exception):
    """The queue could not take the job now; the sweeper will queue it later."""


# KEYS: the job, its result, the queue; ARGV: expiry (ms), the job, its id, its score
_ENQUEUE_SCRIPT = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
    return 0
end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
return 1
"""


@dataclass
class _Batch:
    jobs: list[tuple[list[Any], list[Any]]]
    sent: asyncio.Future[None]
    unwaited: list[int] = field(default_factory=list)  # delivery ids nobody waits for


class ArqQueue:
    """Enqueues ``deliver`` jobs; the job id is the delivery id, so duplicates collapse."""

    def __init__(self, redis: object) -> None:
        from arq.connections import ArqRedis

        assert isinstance(redis, ArqRedis)
        self.redis = redis
        self._skip_until = 0.0
        self._sha: str | None = None  # the enqueue script, once loaded
        self._gathering: _Batch | None = None
        self._sending: set[asyncio.Task[None]] = set()

    @classmethod
    def connect_lazily(cls, redis_url: str) -> ArqQueue:
        """A queue whose connection opens on first use: the API starts with Redis down."""
        from arq.connections import ArqRedis

        return cls(
            ArqRedis.from_url(
                redis_url,
                socket_timeout=ENQUEUE_TIMEOUT_SECONDS * 2,
                socket_connect_timeout=ENQUEUE_TIMEOUT_SECONDS * 2,
            )
        )

    async def enqueue(self, delivery_id: int, *, at: datetime | None = None) -> None:
        """Queue the delivery: it joins the batch being gathered, sent on the next turn of
        the event loop with whatever else was enqueued meanwhile (one Redis round trip)."""
        loop = asyncio.get_running_loop()
        batch = self._join(delivery_id, at)
        try:
            await asyncio.wait_for(asyncio.shield(batch.sent), ENQUEUE_TIMEOUT_SECONDS)
        except Exception as exc:
            self._skip_until = loop.time() + ENQUEUE_COOL_DOWN_SECONDS
            raise QueueUnavailable(f"Redis did not take the job: {type(exc).__name__}") from exc

    def enqueue_soon(self, delivery_id: int, *, at: datetime | None = None) -> None:
        """Queue without waiting for Redis: what a webhook answer does, so a busy event loop
        (whose turns the 0.25 s deadline counted too) never leaves a delivery to the sweeper,
        and a slow Redis never slows the answer. A batch Redis does not take is logged with
        its delivery ids; the sweeper queues them."""
        self._join(delivery_id, at, waited=False)

    def _join(self, delivery_id: int, at: datetime | None, *, waited: bool = True) -> _Batch:
        """Add the job to the batch being gathered (started here if none is)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._skip_until:
            raise QueueUnavailable("Redis failed a moment ago; the sweeper will queue this")
        batch = self._gathering
        if batch is None:
            batch = self._gathering = _Batch([], loop.create_future())
            # nobody may be left to read a failure (every waiter timed out): read it here
            batch.sent.add_done_callback(lambda sent: sent.cancelled() or sent.exception())
            task = loop.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        batch.jobs.append(self._job(delivery_id, at))
        if not waited:
            batch.unwaited.append(delivery_id)
        return batch

    def _job(self, delivery_id: int, at: datetime | None) -> tuple[list[Any], list[Any]]:
        """The keys and arguments of ``_ENQUEUE_SCRIPT`` for arq's ``enqueue_job("deliver",
        delivery_id, _job_id=…, _defer_until=at)``: the job made by arq's own serializer,
        kept as long as arq keeps it (a day past its due time)."""
        from arq.constants import job_key_prefix, result_key_prefix
        from arq.jobs import serialize_job

        redis = self.redis
        job_id = job_id_for(delivery_id)
        now_ms = int(time.time() * 1000)
        score = now_ms if at is None else max(int(at.timestamp() * 1000), now_ms)
        job = serialize_job(
            "deliver", (delivery_id,), {}, None, now_ms, serializer=redis.job_serializer
        )
        keys = [job_key_prefix + job_id, result_key_prefix + job_id, redis.default_queue_name]
        return keys, [score - now_ms + redis.expires_extra_ms, job, job_id, score]

    async def _send(self, batch: _Batch) -> None:
        """Send a gathered batch: one script call per job, pipelined.

        arq's ``enqueue_job`` costs three or four round trips per job (WATCH, EXISTS,
        MULTI … EXEC); under load each of them also waits for a busy event loop, which
        made enqueues miss their deadline and leave deliveries to the sweeper. The script
        keeps arq's rule (a job or a result under the id already: nothing) atomically.
        """
        await asyncio.sleep(0)  # the enqueues of this turn join first
        self._gathering = None
        try:
            await self._run_scripts(batch.jobs)
        except Exception as exc:
            self._skip_until = asyncio.get_running_loop().time() + ENQUEUE_COOL_DOWN_SECONDS
            if batch.unwaited:  # the others' callers hear of it themselves
                log.warning(
                    "enqueue failed; the sweeper will queue these deliveries",
                    delivery_ids=batch.unwaited,
                    error=f"Redis did not take the jobs: {type(exc).__name__}",
                )
            batch.sent.set_exception(exc)
        else:
            batch.sent.set_result(None)

    async def _run_scripts(self, jobs: list[tuple[list[Any], list[Any]]]) -> None:
        from redis.exceptions import NoScriptError

        for attempt in range(2):
            if self._sha is None:
                self._sha = await self.redis.script_load(_ENQUEUE_SCRIPT)
            async with self.redis.pipeline(transaction=False) as pipe:
                for keys, args in jobs:
                    pipe.evalsha(self._sha, len(keys), *keys, *args)
                try:
                    await pipe.execute()
                    return
                except NoScriptError:  # Redis restarted: load it again (the jobs are idempotent)
                    self._sha = None
                    if attempt:
                        raise

    async def recover(self, delivery_id: int) -> None:
        # A dead worker leaves arq's in-progress marker for job_timeout + 10 s; the database
        # lease already says the attempt is abandoned, so clear the marker and let any
        # worker pick the job up now. The claim keeps a slow-but-alive worker from doubling.
        from arq.constants import in_progress_key_prefix

        try:
            await asyncio.wait_for(
                self.redis.delete(in_progress_key_prefix + job_id_for(delivery_id)),
                ENQUEUE_TIMEOUT_SECONDS,
            )
        except Exception as exc:
            raise QueueUnavailable(f"Redis unreachable: {type(exc).__name__}") from exc
        await self.enqueue(delivery_id)

    async def ping(self) -> None:
        await asyncio.wait_for(self.redis.ping(), ENQUEUE_TIMEOUT_SECONDS * 2)

    async def close(self) -> None:
        # batches on their way finish first (each within the socket timeout)
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self.redis.aclose()


class InProcessQueue:
    """An asyncio scheduler: a heap of (due time, delivery id) and a pool of runner tasks."""

    def __init__(self, run: RunDelivery, concurrency: int) -> None:
        self._run = run
        self._concurrency = concurrency
        self._heap: list[tuple[float, int, int]] = []
        self._known: set[int] = set()  # queued or running: enqueue is a no-op for these
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.get_running_loop()
        self._closing = False

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._runner(), name=f"delivery-runner-{i}")
            for i in range(self._concurrency)
        ]

    async def enqueue(self, delivery_id: int, *, at: datetime | None = None) -> None:
        if delivery_id in self._known:
            return
        self._push(delivery_id, at)

    async def recover(self, delivery_id: int) -> None:
        await self.enqueue(delivery_id)  # running here already: that run still owns it

    def _push(self, delivery_id: int, at: datetime | None) -> None:
        due = self._loop.time() + (max(0.0, (at - _now()).total_seconds()) if at else 0.0)
        self._known.add(delivery_id)
        heapq.heappush(self._heap, (due, next(self._counter), delivery_id))
        self._wakeup.set()

    async def _runner(self) -> None:
        while not self._closing:
            delivery_id = await self._next_due()
            if delivery_id is None:
                return
            try:
                retry_at = await self._run(delivery_id)
            except Exception:
                log.exception(
                    "delivery run crashed; the sweeper will pick it up", delivery_id=delivery_id
                )
                retry_at = None
            self._known.discard(delivery_id)
            if retry_at is not None:
                self._push(delivery_id, retry_at)

    async def _next_due(self) -> int | None:
        while not self._closing:
            if self._heap:
                due, _, delivery_id = self._heap[0]
                delay = due - self._loop.time()
                if delay <= 0:
                    heapq.heappop(self._heap)
                    return delivery_id
            else:
                delay = None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
        return None

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Stop taking work; let attempts in progress finish (they hold open transactions
        and leases), then cancel what is still running after ``grace_seconds``."""
        self._closing = True
        self._wakeup.set()
        if self._tasks:
            _, still_running = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in still_running:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


class RunDelivery(Protocol):
    async def __call__(self, delivery_id: int) -> datetime | None: ...


def _now() -> datetime:
    from app.models import utcnow

    return utcnow()
