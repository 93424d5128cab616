"""The core's ``ConcurrencyLimiter``: slots shared by every worker process through Redis,
or kept in this process when embedded (no Redis).

A call first takes a slot of this process's ``MemoryLimiter`` (so at most ``limit`` of its
waiters reach Redis), then, with Redis, a slot in Redis (``redis_slots``), which is what
bounds the account across processes. The whole wait is bounded by ``max_wait_seconds``
(well inside a delivery's lease); past it the call raises RateLimitedError, not an attempt.

When Redis does not answer (a blip, a restart) the call goes ahead on this process's slot
alone, with one warning per episode, and Redis is asked again after ``RETRY_REDIS_SECONDS``:
deliveries continue at the local limit, and the overlap with other processes is what
NetSuite's own 429 (also a RateLimitedError, not an attempt) then catches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from app.limits.redis_slots import NoSlot, RedisSlots, Unreachable
from app.observability import metrics
from connectors._kit.concurrency import MemoryLimiter, no_slot_error
from kernel.errors import RateLimitedError

log = structlog.get_logger("gateway.limits")

RETRY_REDIS_SECONDS = 2.0


class GatewayLimiter:
    """Per-key slots: in Redis across processes when ``redis_url``, else in this process."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        max_wait_seconds: float,
        lease_margin_seconds: float = 2.0,
    ) -> None:
        self.max_wait_seconds = max_wait_seconds
        self._local = MemoryLimiter(max_wait_seconds=max_wait_seconds)
        self._shared = (
            RedisSlots(redis_url, lease_margin_seconds=lease_margin_seconds) if redis_url else None
        )
        self._unreachable_since: float | None = None
        self._retry_redis_at = 0.0

    @property
    def shared(self) -> bool:
        return self._shared is not None

    @asynccontextmanager
    async def slot(self, key: str, limit: int, *, hold_seconds: float) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self._local.acquire(key, limit, wait_seconds=self.max_wait_seconds)
        except RateLimitedError:
            _count(key, "timeout", loop.time() - started)
            raise
        try:
            token, outcome = await self._take_shared(
                key, limit, hold_seconds, started + self.max_wait_seconds
            )
        except BaseException:
            self._local.release(key)
            raise
        _count(key, outcome, loop.time() - started)
        metrics.CONCURRENCY_SLOTS_IN_USE.labels(key).inc()
        try:
            yield
        finally:
            metrics.CONCURRENCY_SLOTS_IN_USE.labels(key).dec()
            try:
                if token is not None and self._shared is not None:
                    await asyncio.shield(self._shared.release(key, token))
            finally:
                self._local.release(key)

    async def _take_shared(
        self, key: str, limit: int, hold_seconds: float, deadline: float
    ) -> tuple[str | None, str]:
        """(token, outcome): a Redis slot, or None and "local" when Redis is away."""
        if self._shared is None:
            return None, "acquired"
        if time.monotonic() < self._retry_redis_at:
            return None, "local"
        try:
            token = await self._shared.acquire(key, limit, hold_seconds, deadline)
        except NoSlot:
            self._back(key)  # Redis answered: no slot is an answer too
            waited = self.max_wait_seconds
            _count(key, "timeout", waited)
            raise no_slot_error(key, limit, waited) from None
        except Unreachable as exc:
            self._went_away(key, exc)
            return None, "local"
        self._back(key)
        return token, "acquired"

    def _back(self, key: str) -> None:
        """Redis answered: end the episode, so the next outage is logged again."""
        if self._unreachable_since is not None:
            log.info(
                "concurrency slots in Redis reachable again; sharing the limit across processes",
                slot=key,
                after_seconds=round(time.monotonic() - self._unreachable_since, 1),
            )
            self._unreachable_since = None

    def _went_away(self, key: str, exc: Exception) -> None:
        now = time.monotonic()
        self._retry_redis_at = now + RETRY_REDIS_SECONDS
        if self._unreachable_since is None:
            self._unreachable_since = now
            log.warning(
                "concurrency slots in Redis unreachable; this process keeps to the limit on "
                "its own until Redis answers (other processes may add to it: the remote "
                "system's 429s are retried without using attempts); check Redis",
                slot=key,
                error=str(exc),
            )

    async def close(self) -> None:
        if self._shared is not None:
            await self._shared.close()


def _count(key: str, outcome: str, waited: float) -> None:
    metrics.CONCURRENCY_SLOTS.labels(key, outcome).inc()
    metrics.CONCURRENCY_WAIT_SECONDS.labels(key).observe(max(waited, 0.0))
