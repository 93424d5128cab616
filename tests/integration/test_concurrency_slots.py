"""NetSuite's concurrency limit is per account: the gateway keeps to it across every worker
process (slots in Redis), and within the process when embedded or when Redis is away.

Each test puts the promise where it breaks: two OS processes calling the NetSuite simulator
at once, a holder killed with SIGKILL, Redis going down and coming back, waiters of two
processes racing for a freed slot, a waiter that died in the queue, a short lease next to a
long one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from app.limits import GatewayLimiter, build_limiter
from app.limits import limiter as limiter_module
from app.limits.redis_slots import _ACQUIRE, WAITER_GRACE_MS, redis_keys
from app.settings import Settings
from connectors.netsuite.auth import TbaCredentials
from connectors.netsuite.client import NetSuiteClient, RecordRef
from kernel.errors import RateLimitedError
from simulators.netsuite.simulator import NetSuiteSimulator
from tests.conftest import NS_CREDS, require_redis
from tests.support.processes import (
    Proc,
    ProcessGroup,
    free_port,
    poll,
    process_group,
    wait_http,
    wait_log,
)
from tests.support.tcpproxy import TcpProxy

LIMIT = 2
LATENCY_SECONDS = 0.3


@pytest.fixture
def shared_redis(redis_url: str | None) -> str:
    return redis_url or require_redis()  # slots across processes need Redis


@pytest.fixture
def group(tmp_path: Path) -> Iterator[ProcessGroup]:
    with process_group(tmp_path) as started:
        yield started


def result_of(proc: Proc) -> dict[str, Any] | None:
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if line.startswith("RESULT "):
            parsed: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return parsed
    return None


class InFlight:
    """Calls inside their slot right now, and the most there ever were."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.order: list[str] = []

    @asynccontextmanager
    async def call(self, name: str = "", seconds: float = 0.1) -> AsyncIterator[None]:
        self.now += 1
        self.most = max(self.most, self.now)
        self.order.append(name)
        try:
            await asyncio.sleep(seconds)
            yield
        finally:
            self.now -= 1


async def in_slot(limiter: GatewayLimiter, flight: InFlight, key: str, name: str = "") -> None:
    async with limiter.slot(key, LIMIT, hold_seconds=5), flight.call(name):
        pass


# --- two processes, one account ---------------------------------------------------------


def test_two_worker_processes_never_exceed_the_accounts_limit_at_netsuite(
    shared_redis: str, group: ProcessGroup, tmp_path: Path
) -> None:
    port = free_port()
    ns_url = f"http://127.0.0.1:{port}"
    args = ["-m", "simulators.netsuite.simulator", "--port", str(port)]
    args += [a for k, v in NS_CREDS.items() for a in (f"--{k.replace('_', '-')}", v)]
    # the simulator refuses only far above the gateway's limit: it measures what arrives
    netsuite = group.python("netsuite", [*args, "--concurrency-limit", "50"])
    go = tmp_path / "go"
    env = {
        "SLOT_REDIS": shared_redis,
        "SLOT_NS_URL": ns_url,
        "SLOT_NS_CREDS": json.dumps(NS_CREDS),
        "SLOT_LIMIT": str(LIMIT),
        "SLOT_CALLS": "5",
        "SLOT_GO": str(go),
    }
    workers = [
        group.python(name, ["-m", "tests.support.slot_process", "calls"], env)
        for name in ("worker-1", "worker-2")
    ]
    wait_http(f"{ns_url}/_sim/stats", netsuite)  # all three start at once
    httpx.post(f"{ns_url}/_sim/faults", json={"latency_seconds": LATENCY_SECONDS})
    for worker in workers:
        wait_log(worker, "ready", timeout=20)
    go.touch()  # ten calls at once, five from each process
    results = [
        poll(partial(result_of, w), timeout=15, message=f"{w.name}'s calls") for w in workers
    ]
    stats = httpx.get(f"{ns_url}/_sim/stats").json()
    assert results == [{"ok": 5, "rate_limited": 0, "failed": []}] * 2
    assert stats["max_in_flight"] == LIMIT  # reached, never exceeded
    assert "429" not in stats["responses"]


def test_a_holder_killed_with_sigkill_frees_its_slot_after_the_lease(
    shared_redis: str, group: ProcessGroup
) -> None:
    key, hold_seconds, margin = "netsuite:killed-holder", 1.0, 2.0
    env = {
        "SLOT_REDIS": shared_redis,
        "SLOT_KEY": key,
        "SLOT_LIMIT": "1",
        "SLOT_HOLD_SECONDS": str(hold_seconds),
    }
    holder = group.python("holder", ["-m", "tests.support.slot_process", "hold"], env)
    wait_log(holder, "holding", timeout=20)
    held_from = time.monotonic()

    async def take_it() -> float:
        busy = GatewayLimiter(shared_redis, max_wait_seconds=0.3, lease_margin_seconds=margin)
        with pytest.raises(RateLimitedError):  # a live holder keeps its slot
            async with busy.slot(key, 1, hold_seconds=1):
                pass
        await busy.close()
        holder.kill9()
        patient = GatewayLimiter(shared_redis, max_wait_seconds=8, lease_margin_seconds=margin)
        async with patient.slot(key, 1, hold_seconds=1):
            taken = time.monotonic()
        await patient.close()
        return taken - held_from

    after = asyncio.run(take_it())
    # the dead holder's lease (its call's bound + the margin) ends; nothing else frees it
    assert after < hold_seconds + margin + 1.5


# --- Redis away: the in-process limit, said once -----------------------------------------


async def test_redis_down_falls_back_to_the_in_process_limit_with_a_log_line(
    shared_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limiter_module, "RETRY_REDIS_SECONDS", 0.3)
    target = urlparse(shared_redis)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    key = "netsuite:redis-away"
    ours = GatewayLimiter(proxy.url_for(shared_redis), max_wait_seconds=1.0)
    other = GatewayLimiter(shared_redis, max_wait_seconds=1.0)  # another worker process
    flight = InFlight()
    try:
        async with AsyncExitStack() as held:
            for _ in range(LIMIT):  # the other process holds every slot of the account
                await held.enter_async_context(other.slot(key, LIMIT, hold_seconds=5))
            with pytest.raises(RateLimitedError):
                await in_slot(ours, flight, key)  # shared through Redis: none for us

            proxy.down()
            with capture_logs() as logs:
                await asyncio.gather(*(in_slot(ours, flight, key) for _ in range(6)))
            assert flight.most == LIMIT  # this process alone keeps to the limit
            warnings = [e for e in logs if e["log_level"] == "warning"]
            assert len(warnings) == 1  # one line per episode, not one per call
            assert "Redis unreachable" in warnings[0]["event"]

            proxy.up()
            await asyncio.sleep(0.4)  # past the retry pause
            with capture_logs() as logs, pytest.raises(RateLimitedError):
                await in_slot(ours, flight, key)  # shared again
            assert any("reachable again" in e["event"] for e in logs)
    finally:
        await ours.close()
        await other.close()
        proxy.close()


async def test_redis_that_stops_answering_falls_back_within_its_timeout(
    shared_redis: str,
) -> None:
    target = urlparse(shared_redis)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    limiter = GatewayLimiter(proxy.url_for(shared_redis), max_wait_seconds=5)
    flight = InFlight()
    try:
        await in_slot(limiter, flight, "netsuite:redis-hangs")  # connected
        proxy.hang()
        started = time.monotonic()
        await asyncio.gather(*(in_slot(limiter, flight, "netsuite:redis-hangs") for _ in range(4)))
        assert time.monotonic() - started < 2.0  # not stuck on a silent Redis
        assert flight.most == LIMIT
    finally:
        proxy.up()
        await limiter.close()
        proxy.close()


# --- the queue in Redis ---------------------------------------------------------------------


async def test_a_freed_slot_goes_to_the_waiter_that_came_first_across_processes(
    shared_redis: str,
) -> None:
    key = "netsuite:fair"
    holder, first, second = (GatewayLimiter(shared_redis, max_wait_seconds=5) for _ in range(3))
    flight = InFlight()

    async def take(limiter: GatewayLimiter, name: str) -> None:
        async with limiter.slot(key, 1, hold_seconds=5), flight.call(name, 0.2):
            pass

    try:
        async with AsyncExitStack() as held:
            await held.enter_async_context(holder.slot(key, 1, hold_seconds=5))
            a1 = asyncio.create_task(take(first, "A1"))
            await asyncio.sleep(0.15)
            b1 = asyncio.create_task(take(second, "B1"))
            await asyncio.sleep(0.15)
            # A's second call: handed A1's slot within its process the moment A1 ends, it
            # must still queue behind B1, which has waited longer
            a2 = asyncio.create_task(take(first, "A2"))
            await asyncio.sleep(0.15)
        await asyncio.gather(a1, b1, a2)
        assert flight.order == ["A1", "B1", "A2"]
        assert flight.most == 1
    finally:
        for limiter in (holder, first, second):
            await limiter.close()


async def test_a_waiter_that_died_in_the_queue_does_not_block_it(shared_redis: str) -> None:
    key = "netsuite:dead-waiter"
    limiter = GatewayLimiter(shared_redis, max_wait_seconds=6)
    client = aioredis.Redis.from_url(shared_redis)
    try:
        async with limiter.slot(key, 1, hold_seconds=5):
            # a waiter of a process killed while it waited: queued once, never heard again
            granted, _, _ = await client.eval(
                _ACQUIRE, 4, *redis_keys(key), "dead-waiter", 1, 5000, WAITER_GRACE_MS
            )
            assert granted == 0
        started = time.monotonic()
        async with limiter.slot(key, 1, hold_seconds=5):
            waited = time.monotonic() - started
        # it waited behind the dead one until its grace ran out, then got the slot
        assert WAITER_GRACE_MS / 1000 - 0.7 < waited < WAITER_GRACE_MS / 1000 + 1.5
    finally:
        await limiter.close()
        await client.aclose()


async def test_a_shorter_lease_never_drops_a_longer_holder(shared_redis: str) -> None:
    key = "netsuite:leases"
    limiter = GatewayLimiter(shared_redis, max_wait_seconds=2, lease_margin_seconds=2)
    client = aioredis.Redis.from_url(shared_redis)
    holders_key = redis_keys(key)[0]
    try:
        async with limiter.slot(key, LIMIT, hold_seconds=60):  # a slow call: lease 62 s
            async with limiter.slot(key, LIMIT, hold_seconds=0.1):  # a quick one after it
                pass
            # the holders must outlive the slow call's lease, or its slot vanishes and a
            # third call gets in while it still runs
            assert await client.pttl(holders_key) > 55_000
            assert await client.zcard(holders_key) == 1
    finally:
        await limiter.close()
        await client.aclose()


# --- embedded: no Redis, the process's own slots ----------------------------------------


async def test_embedded_gateway_keeps_netsuite_calls_to_the_limit_and_waits_are_rate_limits() -> (
    None
):
    limiter = build_limiter(Settings(redis_url=None, lease_seconds=3.2))  # waits 0.8 s
    assert not limiter.shared
    sim = NetSuiteSimulator(TbaCredentials.from_mapping(NS_CREDS), items=("1042",))
    sim.concurrency_limit = 50  # measure what arrives
    sim.set_latency(0.5)
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport) as http:
        # two connections to one account share its slots
        clients = [
            NetSuiteClient(
                http,
                "http://ns",
                TbaCredentials.from_mapping(NS_CREDS),
                timeout_seconds=5,
                limiter=limiter,
                concurrency_limit=LIMIT,
            )
            for _ in range(2)
        ]
        ref = RecordRef("inventoryItem", "1042")
        results = await asyncio.gather(
            *(clients[i % 2].get(ref) for i in range(6)), return_exceptions=True
        )
    assert sim.stats.max_in_flight == LIMIT
    limited = [r for r in results if isinstance(r, RateLimitedError)]
    ok = [r for r in results if isinstance(r, dict)]
    assert len(ok) + len(limited) == 6, results
    # 0.8 s of waiting is two rounds of 0.5 s calls: the third round gives up, with a
    # RateLimitedError (no attempt) and before sending anything
    assert len(limited) == 2
    assert all(r.retry_after > 0 for r in limited)
    assert sum(sim.stats.requests.values()) == len(ok)
    await limiter.close()


# --- a delivery keeps its slot between its calls (keeping) ------------------------------------


def count_shared(limiter: GatewayLimiter) -> dict[str, int]:
    """How often the limiter asks Redis for a slot and gives one back."""
    shared = limiter._shared
    assert shared is not None
    counts = {"acquire": 0, "release": 0}
    acquire, release = shared.acquire, shared.release

    async def counted_acquire(*args: Any) -> str:
        counts["acquire"] += 1
        return await acquire(*args)

    async def counted_release(*args: Any) -> None:
        counts["release"] += 1
        await release(*args)

    shared.acquire = counted_acquire  # type: ignore[method-assign]
    shared.release = counted_release  # type: ignore[method-assign]
    return counts


async def test_a_delivery_takes_one_slot_for_its_calls_and_gives_it_back_at_the_end(
    shared_redis: str,
) -> None:
    key = "netsuite:keep"
    limiter = GatewayLimiter(shared_redis, max_wait_seconds=2)
    client = aioredis.Redis.from_url(shared_redis)
    counts = count_shared(limiter)
    try:
        async with limiter.keeping():
            for _ in range(3):  # e.g. a customer upsert, the order, the read back of its tax
                async with limiter.slot(key, LIMIT, hold_seconds=5):
                    pass
            assert await client.zcard(redis_keys(key)[0]) == 1  # kept between the calls
        assert counts == {"acquire": 1, "release": 1}
        assert await client.zcard(redis_keys(key)[0]) == 0  # back when the delivery ends
        assert limiter._local.in_use(key) == 0
        # without the block every call takes and gives back its own
        for _ in range(2):
            async with limiter.slot(key, LIMIT, hold_seconds=5):
                pass
        assert counts == {"acquire": 3, "release": 3}
    finally:
        await limiter.close()
        await client.aclose()


async def test_kept_slots_never_let_more_calls_in_flight_than_the_limit(
    shared_redis: str,
) -> None:
    key = "netsuite:keep-limit"
    limiters = [GatewayLimiter(shared_redis, max_wait_seconds=10) for _ in range(2)]
    flight = InFlight()

    async def delivery(limiter: GatewayLimiter, n: int) -> None:
        async with limiter.keeping():
            for call in range(3):
                async with (
                    limiter.slot(key, LIMIT, hold_seconds=5),
                    flight.call(f"{n}.{call}", 0.02),
                ):
                    pass
                await asyncio.sleep(0.005)  # the connector's own work between its calls

    try:
        await asyncio.gather(*(delivery(limiters[n % 2], n) for n in range(8)))
        assert flight.most <= LIMIT and len(flight.order) == 24
    finally:
        for limiter in limiters:
            await limiter.close()


async def test_a_kept_slot_whose_lease_cannot_cover_the_next_call_is_replaced(
    shared_redis: str,
) -> None:
    key = "netsuite:keep-lease"
    limiter = GatewayLimiter(shared_redis, max_wait_seconds=2, lease_margin_seconds=2)
    client = aioredis.Redis.from_url(shared_redis)
    counts = count_shared(limiter)
    try:
        async with limiter.keeping():
            async with limiter.slot(key, LIMIT, hold_seconds=0.1):  # leased for 2.1 s
                pass
            async with limiter.slot(key, LIMIT, hold_seconds=30):  # needs 31 s of it
                assert counts == {"acquire": 2, "release": 1}
                assert await client.zcard(redis_keys(key)[0]) == 1
        assert counts == {"acquire": 2, "release": 2}
    finally:
        await limiter.close()
        await client.aclose()


async def test_calls_of_one_delivery_at_once_each_get_a_slot_and_none_waits_on_a_kept_one(
    shared_redis: str,
) -> None:
    key = "netsuite:keep-gather"
    limiter = GatewayLimiter(shared_redis, max_wait_seconds=1)
    flight = InFlight()

    async def call(name: str) -> None:
        async with limiter.slot(key, 1, hold_seconds=5), flight.call(name, 0.05):
            pass

    try:
        started = time.monotonic()
        async with limiter.keeping():
            # one slot for two calls at once: the second waits for the first, which must
            # give its slot back instead of keeping it (or the second waits out its bound)
            await asyncio.gather(call("a"), call("b"))
        assert flight.most == 1 and sorted(flight.order) == ["a", "b"]
        assert time.monotonic() - started < 0.9
    finally:
        await limiter.close()
