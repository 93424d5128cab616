"""The in-process slots (``connectors._kit.concurrency.MemoryLimiter``): the embedded
gateway's limit, and the gate in front of the Redis slots in every worker process."""

from __future__ import annotations

import asyncio

import pytest

from connectors._kit.concurrency import MemoryLimiter, limiter_for
from kernel.contract import ConnectionSettings
from kernel.errors import RateLimitedError

KEY = "netsuite:1234567"


async def test_at_most_limit_calls_hold_a_slot_and_all_of_them_get_one() -> None:
    limiter = MemoryLimiter(max_wait_seconds=5)
    now = most = 0

    async def call() -> None:
        nonlocal now, most
        async with limiter.slot(KEY, 3, hold_seconds=1):
            now += 1
            most = max(most, now)
            await asyncio.sleep(0.01)
            now -= 1

    await asyncio.gather(*(call() for _ in range(20)))
    assert most == 3
    assert limiter.in_use(KEY) == 0


async def test_a_freed_slot_goes_to_the_first_waiter_not_a_newcomer() -> None:
    limiter = MemoryLimiter(max_wait_seconds=5)
    order: list[str] = []

    async def call(name: str) -> None:
        async with limiter.slot(KEY, 1, hold_seconds=1):
            order.append(name)
            await asyncio.sleep(0.01)

    await limiter.acquire(KEY, 1)
    waiting = [asyncio.create_task(call(n)) for n in ("first", "second")]
    await asyncio.sleep(0.01)
    limiter.release(KEY)
    newcomer = asyncio.create_task(call("newcomer"))  # arrives as the slot is freed
    await asyncio.gather(*waiting, newcomer)
    assert order == ["first", "second", "newcomer"]


async def test_no_slot_in_time_is_a_rate_limit_that_leaks_nothing() -> None:
    limiter = MemoryLimiter(max_wait_seconds=0.05)
    await limiter.acquire(KEY, 1)
    with pytest.raises(RateLimitedError) as caught:
        async with limiter.slot(KEY, 1, hold_seconds=1):
            pass
    assert caught.value.retry_after > 0  # comes back later, without using an attempt
    assert caught.value.detail == {"slot": KEY, "limit": 1}
    assert limiter.in_use(KEY) == 1
    limiter.release(KEY)
    async with limiter.slot(KEY, 1, hold_seconds=1):  # the one who gave up left no trace
        assert limiter.in_use(KEY) == 1
    assert limiter.in_use(KEY) == 0


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    limiter = MemoryLimiter(max_wait_seconds=5)
    await limiter.acquire(KEY, 1)
    cancelled = asyncio.create_task(limiter.acquire(KEY, 1))
    after = asyncio.create_task(limiter.acquire(KEY, 1))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    limiter.release(KEY)
    await asyncio.wait_for(after, 1)  # the slot skipped the cancelled waiter
    assert limiter.in_use(KEY) == 1


def test_without_the_core_every_connection_shares_one_process_limiter() -> None:
    plain = [ConnectionSettings(id=i, type="netsuite", base_url="http://ns") for i in "ab"]
    assert limiter_for(plain[0]) is limiter_for(plain[1])
    core = MemoryLimiter()
    given = ConnectionSettings(id="c", type="netsuite", base_url="http://ns", limiter=core)
    assert limiter_for(given) is core
