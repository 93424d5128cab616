"""Slots for calls in flight to a remote system, within this process
(``kernel.contract.ConcurrencyLimiter``).

Some systems count concurrent requests rather than requests per second (NetSuite: per
account, 429 over the limit). ``MemoryLimiter`` keeps, per key, at most ``limit`` slots in
use. Waiters are served in arrival order: a freed slot is handed to the first waiter, so a
newcomer never overtakes one; a waiter gives up after ``max_wait_seconds`` with a
RateLimitedError (not an attempt: the delivery is re-queued instead of hanging).

A connector uses ``limiter_for(settings)``: the core's limiter (shared through Redis by every
worker process, or in-process when embedded), or without the core (tests, scripts) one
process-wide ``MemoryLimiter``, so two connections to one account still share the limit.
The core also puts a ``MemoryLimiter`` in front of its Redis slots (at most ``limit`` waiters
per process reach Redis) and falls back to it alone when Redis does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from kernel.contract import ConcurrencyLimiter, ConnectionSettings
from kernel.errors import RateLimitedError

DEFAULT_MAX_WAIT_SECONDS = 10.0
# a call that found no slot comes back after about this long (jittered, so they spread)
RETRY_AFTER_SECONDS = 1.0


def no_slot_error(key: str, limit: int, waited: float) -> RateLimitedError:
    """What a caller gets when no slot came free in time (the same for every limiter)."""
    return RateLimitedError(
        f"all {limit} slots for {key} stayed in use for {waited:.1f}s; the call goes out "
        "again shortly (if this lasts, the traffic needs more concurrency than the "
        "connection's concurrency limit allows)",
        retry_after=RETRY_AFTER_SECONDS * random.uniform(0.5, 1.5),
        detail={"slot": key, "limit": limit},
    )


@dataclass
class _Gate:
    """One key's slots: how many are in use and who waits, first come first served."""

    limit: int
    in_use: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)

    def hand_over(self) -> None:
        """Give free slots to the first waiters (the slot passes on; in_use counts it)."""
        while self.waiters and self.in_use < self.limit:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a waiter that gave up is skipped
                self.in_use += 1
                waiter.set_result(None)


class MemoryLimiter:
    """Per-key counting semaphores in this process, fair and bounded in wait.

    Holds no event-loop object while idle (a key's state goes once its last slot is given
    back), so one instance may outlive the loops that used it.
    """

    def __init__(self, *, max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS) -> None:
        self.max_wait_seconds = max_wait_seconds
        self._gates: dict[str, _Gate] = {}

    def in_use(self, key: str) -> int:
        gate = self._gates.get(key)
        return gate.in_use if gate else 0

    async def acquire(self, key: str, limit: int, *, wait_seconds: float | None = None) -> None:
        """Take one of ``limit`` slots of ``key``; RateLimitedError after the wait bound."""
        gate = self._gates.setdefault(key, _Gate(limit))
        gate.limit = limit
        if gate.in_use < limit and not gate.waiters:
            gate.in_use += 1
            return
        wait = self.max_wait_seconds if wait_seconds is None else wait_seconds
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate.waiters.append(waiter)
        try:
            async with asyncio.timeout(wait):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release(key)  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    gate.waiters.remove(waiter)
                gate.hand_over()  # a newcomer may have queued behind us while a slot was free
                self._forget_if_idle(key, gate)
            if isinstance(exc, TimeoutError):
                raise no_slot_error(key, limit, wait) from None
            raise

    def release(self, key: str) -> None:
        gate = self._gates.get(key)
        if gate is None or gate.in_use <= 0:
            return
        gate.in_use -= 1
        gate.hand_over()
        self._forget_if_idle(key, gate)

    def _forget_if_idle(self, key: str, gate: _Gate) -> None:
        if gate.in_use == 0 and not gate.waiters and self._gates.get(key) is gate:
            del self._gates[key]

    @asynccontextmanager
    async def slot(self, key: str, limit: int, *, hold_seconds: float) -> AsyncIterator[None]:
        # hold_seconds bounds a dead holder's slot across processes; in one process a dead
        # holder takes its slots with it
        await self.acquire(key, limit)
        try:
            yield
        finally:
            self.release(key)


_PROCESS_LIMITER = MemoryLimiter()


def limiter_for(settings: ConnectionSettings) -> ConcurrencyLimiter:
    """The connection's limiter: the core's, else this process's shared one."""
    return settings.limiter if settings.limiter is not None else _PROCESS_LIMITER
