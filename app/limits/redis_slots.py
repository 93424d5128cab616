"""A counting semaphore in Redis, shared by every worker process: slots with leases, a fair
queue, one Lua script per step.

Per key (``{key}`` is a hash tag, so a Redis Cluster keeps the four on one node):

- ``holders``: ZSET token → lease end (ms). A holder's lease is its call's deadline plus a
  margin; a process killed with kill -9 never releases, and its slots free themselves when
  the leases end (the call it was making cannot run longer than that either);
- ``queue``: ZSET token → ticket (``seq`` INCR): the waiters in arrival order. A waiter gets
  a slot only when fewer than ``limit - holders`` waiters are ahead of it, so one process
  with many waiters cannot starve another, whoever polls first;
- ``alive``: ZSET token → the waiter's last poll + a grace period: a waiter that stops
  polling (its process died) leaves the queue instead of blocking it.

Times come from Redis (``TIME``), so worker clocks never disagree about a lease. No library
on redis-py asyncio does this: ``redis-rate-limiters``/``py-redis-limiters`` pop tokens from
a list, so a killed holder's token is lost until the whole semaphore expires, and neither it
nor ``python-redis-lock``/``pottery`` (locks; sync) queue waiters fairly across processes.

Waiters poll (10 ms doubling to 50 ms) and are woken at once when a slot of the same key is
released in this process. Redis trouble is the caller's to handle (``Unreachable``); a
release that fails is left to the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import uuid
from typing import Any

REDIS_TIMEOUT_SECONDS = 0.5
# a waiter not heard from for this long is gone (it polls every 50 ms at most)
WAITER_GRACE_MS = 2000
FIRST_NAP_SECONDS = 0.01
MAX_NAP_SECONDS = 0.05
_KEYS = ("holders", "queue", "alive", "seq")

# KEYS: holders, queue, alive, seq. ARGV: token, limit, lease_ms, grace_ms.
# Returns {granted 0|1, slots held, the waiter's place in the queue}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token, limit = ARGV[1], tonumber(ARGV[2])
local lease_ms, grace_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('ZREM', KEYS[2], gone)
  redis.call('ZREM', KEYS[3], gone)
end
local result
if redis.call('ZSCORE', KEYS[1], token) then
  result = {1, redis.call('ZCARD', KEYS[1]), 0}
else
  if not redis.call('ZSCORE', KEYS[2], token) then
    redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), token)
  end
  local held = redis.call('ZCARD', KEYS[1])
  local place = redis.call('ZRANK', KEYS[2], token)
  if place < limit - held then
    redis.call('ZREM', KEYS[2], token)
    redis.call('ZREM', KEYS[3], token)
    redis.call('ZADD', KEYS[1], now + lease_ms, token)
    result = {1, held + 1, place}
  else
    redis.call('ZADD', KEYS[3], now + grace_ms, token)
    result = {0, held, place}
  end
end
-- idle keys go away by themselves; all four together, so seq never restarts under a queue,
-- and never before the longest lease: a caller with a shorter one must not drop the holders
local keep = 2 * math.max(lease_ms, grace_ms)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then keep = math.max(keep, tonumber(last[2]) - now + grace_ms) end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
return result
"""
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""


class Unreachable(Exception):
    """Redis did not answer (in time): the caller decides locally."""


class NoSlot(Exception):
    """The wait bound passed without a slot (the waiter has left the queue)."""


def redis_keys(key: str) -> list[str]:
    return [f"erp-gateway:slots:{{{key}}}:{part}" for part in _KEYS]


class RedisSlots:
    """Acquire and release slots in Redis; every call bounded by ``REDIS_TIMEOUT_SECONDS``."""

    def __init__(self, redis_url: str, *, lease_margin_seconds: float = 2.0) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(
            redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self.lease_margin_seconds = lease_margin_seconds
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._freed: dict[str, asyncio.Event] = {}

    async def _run(self, script: Any, key: str, *args: Any) -> Any:
        try:
            return await asyncio.wait_for(
                script(keys=redis_keys(key), args=list(args)), REDIS_TIMEOUT_SECONDS
            )
        except Exception as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc

    async def acquire(self, key: str, limit: int, hold_seconds: float, deadline: float) -> str:
        """A slot's token, once a slot is ours; NoSlot at ``deadline`` (loop time),
        Unreachable when Redis does not answer."""
        loop = asyncio.get_running_loop()
        token = f"{self._owner}:{uuid.uuid4().hex[:12]}"
        lease_ms = int((hold_seconds + self.lease_margin_seconds) * 1000)
        nap = FIRST_NAP_SECONDS
        try:
            while True:
                granted, _, _ = await self._run(
                    self._acquire, key, token, limit, lease_ms, WAITER_GRACE_MS
                )
                if granted:
                    return token
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise NoSlot(key)
                await self._nap(key, min(nap * random.uniform(0.8, 1.2), remaining))
                nap = min(nap * 2, MAX_NAP_SECONDS)
        except NoSlot:
            await self._leave(key, token)
            raise
        except asyncio.CancelledError:
            await asyncio.shield(self._leave(key, token))
            raise

    async def release(self, key: str, token: str) -> None:
        """Give the slot back; if Redis does not answer, its lease ends it."""
        try:
            await self._leave(key, token)
        finally:
            freed = self._freed.pop(key, None)
            if freed is not None:
                freed.set()  # this process's waiters for the key look again now

    async def _leave(self, key: str, token: str) -> None:
        with contextlib.suppress(Unreachable):
            await self._run(self._release, key, token)

    async def _nap(self, key: str, seconds: float) -> None:
        freed = self._freed.setdefault(key, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(freed.wait(), seconds)

    async def close(self) -> None:
        await self._redis.aclose()
