"""arq's worker with a cheaper way to start a job (one Redis round trip instead of four, and
none for a job this worker is running already) and slower polls when there is nothing to do.

arq polls its queue (a sorted set of job ids by due time) and, for every due id it sees,
watches the job's in-progress key, reads it and the job's score, and sets the key in a
MULTI/EXEC: four round trips per id per poll. A job stays in the queue until it finishes, so
every poll (every ``worker_poll_seconds``) paid those four again for each job still running,
here or in another worker, only to find its in-progress key set.

``DeliveryWorker`` keeps arq's rules and keys and changes only that step:

- ids of jobs running in this worker are skipped before any call (they are in progress by
  definition: their key was set when this worker took them);
- the check and the take are one Lua script (``_TAKE``), atomic in Redis as arq's optimistic
  transaction is: a job is taken only if no worker holds it (no in-progress key) and it is
  due (its score is not in the future), and taking it sets the in-progress key with arq's
  expiry. Two workers can never both take a job.

Everything after the take (reading the job, running it, retries, finishing) is arq's own.

arq polls every ``poll_delay`` (``worker_poll_seconds``, 20 ms: it bounds the queueing delay of
every order), 50 round trips a second for a worker with nothing to do. Once a worker has seen no
due job and run none for ``IDLE_AFTER_SECONDS``, it polls every ``idle_poll_seconds``
(``worker_idle_poll_seconds``) instead, until it sees one again: the first order after a quiet
spell may wait that much longer to start; under steady traffic nothing changes. Its own cron
jobs (the sweeper, the scheduler) do not count as work.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

log = structlog.get_logger("gateway.worker")

# a worker that has seen no due job and run none for this long polls at its idle pace
IDLE_AFTER_SECONDS = 1.0

# KEYS: the job's in-progress key, the queue. ARGV: job id, now (ms), in-progress expiry (ms).
# Returns the job's score once taken, else 0 (running elsewhere, finished, or not due yet).
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[3], '1')
return tonumber(score)
"""


class DeliveryWorker(Worker):
    """arq's ``Worker``; only ``start_jobs`` differs (see the module docstring)."""

    _take: Any = None  # the registered script, once Redis is connected
    # how often to poll once idle (``worker_idle_poll_seconds``); at most ``poll_delay``: never
    idle_poll_seconds: float = 0.0
    _busy_at: float = 0.0  # loop time a due job was last seen or one was last running

    async def _poll_iteration(self) -> None:
        await super()._poll_iteration()
        now = self.loop.time()
        if not self._busy_at or any(
            not task.done() and _work(job_id) for job_id, task in self.tasks.items()
        ):
            self._busy_at = now  # (a worker just started polls fast for its first second)
        extra = self.idle_poll_seconds - self.poll_delay_s
        if extra > 0 and now - self._busy_at >= IDLE_AFTER_SECONDS:
            await asyncio.sleep(extra)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        if any(_work(job_id.decode()) for job_id in job_ids):
            self._busy_at = self.loop.time()
        running = {job_id for job_id, task in self.tasks.items() if not task.done()}
        for job_id_b in job_ids:
            job_id = job_id_b.decode()
            if job_id in running:
                continue  # this worker holds it: nothing to ask Redis
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            try:
                score = await self._take_job(job_id)
            except BaseException:
                self.job_counter -= 1
                self.sem.release()
                raise  # Redis trouble: arq's loop ends and the worker reconnects
            if not score:
                # running in another worker, finished and gone, or re-queued for later
                self.job_counter -= 1
                self.sem.release()
                continue
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    async def _take_job(self, job_id: str) -> int:
        if self._take is None:
            self._take = self.pool.register_script(_TAKE)
        result = await self._take(
            keys=[in_progress_key_prefix + job_id, self.queue_name],
            args=[job_id, timestamp_ms(), int(self.in_progress_timeout_s * 1000)],
        )
        return int(result or 0)


def _work(job_id: str) -> bool:
    """A delivery's job, not one of the worker's own cron jobs (the sweeper, the scheduler):
    those run every few seconds and are no reason to poll fast."""
    return not job_id.startswith("cron:")
