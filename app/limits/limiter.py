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

Inside ``keeping()`` (the engine opens one around each delivery attempt) a shared slot a call
is done with stays with the block, and the block's next call of the same key takes it without
asking Redis; every kept slot goes back when the block ends. A NetSuite order (its upsert, then
the read back of its tax) so takes one slot in two round trips instead of two in four. The
account never has more calls in flight than before: a kept slot only sits idle between the
calls of one delivery (its own CPU work), it is reused only while its Redis lease still covers
the next call's whole deadline (less half the margin), and it is given back at once when
another call of the block is waiting for or using a slot of the key. Fairness between
processes becomes per delivery rather than per call.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog

from app.limits.redis_slots import NoSlot, RedisSlots, Unreachable
from app.observability import metrics
from connectors._kit.concurrency import MemoryLimiter, no_slot_error
from kernel.errors import RateLimitedError

log = structlog.get_logger("gateway.limits")

RETRY_REDIS_SECONDS = 2.0


@dataclass
class _Kept:
    """A shared slot a finished call left to its ``keeping()`` block."""

    key: str
    token: str
    lease_ends: float  # loop time by which Redis has surely ended the slot's lease


@dataclass
class _Keeping:
    """One ``keeping()`` block: its idle slots and its calls per key (waiting or in a slot)."""

    idle: list[_Kept] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    open: bool = True


_KEEPING: contextvars.ContextVar[_Keeping | None] = contextvars.ContextVar(
    "slot_keeping", default=None
)


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
    async def keeping(self) -> AsyncIterator[None]:
        """Slots stay with this block between its calls; all go back when it ends."""
        block = _Keeping()
        reset = _KEEPING.set(block)
        try:
            yield
        finally:
            _KEEPING.reset(reset)
            block.open = False
            idle, block.idle = block.idle, []
            await asyncio.shield(self._give_back(idle))

    @asynccontextmanager
    async def slot(self, key: str, limit: int, *, hold_seconds: float) -> AsyncIterator[None]:
        block = _KEEPING.get()
        if block is None or not block.open:
            async with self._slot(key, limit, hold_seconds, None):
                yield
            return
        block.calls[key] = block.calls.get(key, 0) + 1
        try:
            async with self._slot(key, limit, hold_seconds, block):
                yield
        finally:
            block.calls[key] -= 1

    @asynccontextmanager
    async def _slot(
        self, key: str, limit: int, hold_seconds: float, block: _Keeping | None
    ) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        kept = self._kept(block, key) if block is not None else None
        if kept is not None and kept.lease_ends - started < hold_seconds + self._lease_margin() / 2:
            # too little of its lease left to cover this call: back, and a fresh one
            await asyncio.shield(self._give_back([kept]))
            kept = None
        if kept is not None:
            token: str | None = kept.token
            lease_ends = kept.lease_ends
        else:
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
            lease_ends = started + hold_seconds + self._lease_margin()
        metrics.CONCURRENCY_SLOTS_IN_USE.labels(key).inc()
        try:
            yield
        finally:
            metrics.CONCURRENCY_SLOTS_IN_USE.labels(key).dec()
            if (
                token is not None
                and block is not None
                and block.open
                and block.calls.get(key, 0) <= 1  # nobody else of the block needs one
            ):
                block.idle.append(_Kept(key, token, lease_ends))
            else:
                await asyncio.shield(self._give_back([_Kept(key, token or "", lease_ends)]))

    def _lease_margin(self) -> float:
        return self._shared.lease_margin_seconds if self._shared is not None else 0.0

    @staticmethod
    def _kept(block: _Keeping, key: str) -> _Kept | None:
        """A slot the block kept for ``key``, taken out of its idle ones."""
        for kept in block.idle:
            if kept.key == key:
                block.idle.remove(kept)
                return kept
        return None

    async def _give_back(self, slots: list[_Kept]) -> None:
        for kept in slots:
            try:
                if kept.token and self._shared is not None:
                    await self._shared.release(kept.key, kept.token)
            finally:
                self._local.release(kept.key)

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
