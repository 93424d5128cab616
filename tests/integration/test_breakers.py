"""One breaker per destination: the same state machine in memory and in Redis, shared by
every worker process, with one trial call at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.config import DeliveryPolicy
from app.delivery.breakers import BreakerStore, MemoryBreakers, RedisBreakers
from tests.conftest import require_redis

POLICY = DeliveryPolicy(breaker_fail_max=3, breaker_reset_seconds=30, request_timeout_seconds=5)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(params=["memory", "redis"])
async def stores(
    request: pytest.FixtureRequest, redis_url: str | None
) -> AsyncIterator[tuple[BreakerStore, BreakerStore]]:
    """Two views of one breaker, as two worker processes have them."""
    if request.param == "memory":
        one = MemoryBreakers()
        yield one, one
        return
    if redis_url is None:
        require_redis()
    a, b = RedisBreakers(redis_url), RedisBreakers(redis_url)
    yield a, b
    await a.close()
    await b.close()


async def fail(store: BreakerStore, now: datetime, *, trial: bool = False) -> str:
    return (await store.record("erp", POLICY, now, "failure", trial=trial)).view.state


async def test_failures_from_every_process_count_towards_one_threshold(
    stores: tuple[BreakerStore, BreakerStore],
) -> None:
    a, b = stores
    assert await fail(a, at(0)) == "closed"
    assert await fail(b, at(1)) == "closed"
    transition = await a.record("erp", POLICY, at(2), "failure", trial=False)
    assert transition.view.state == "open" and transition.changed
    assert transition.view.reopens_at == at(32)
    admission = await b.admit("erp", POLICY, at(10))
    assert not admission.go and admission.retry_at == at(32)


async def test_a_success_resets_the_run_of_failures(
    stores: tuple[BreakerStore, BreakerStore],
) -> None:
    a, b = stores
    await fail(a, at(0))
    await fail(b, at(1))
    await a.record("erp", POLICY, at(2), "success", trial=False)
    assert await fail(b, at(3)) == "closed"  # one failure after the success, not three


async def test_one_trial_at_a_time_and_its_outcome_decides(
    stores: tuple[BreakerStore, BreakerStore],
) -> None:
    a, b = stores
    for second in range(3):
        await fail(a, at(second))
    trial = await a.admit("erp", POLICY, at(40))
    assert trial.go and trial.trial
    other = await b.admit("erp", POLICY, at(40.5))
    assert not other.go  # the other process waits while the trial runs
    failed = await a.record("erp", POLICY, at(41), "failure", trial=True)
    assert failed.changed and failed.view.reopens_at == at(71)  # a whole period again
    assert not (await b.admit("erp", POLICY, at(50))).go
    second_trial = await b.admit("erp", POLICY, at(72))
    assert second_trial.trial
    closed = await b.record("erp", POLICY, at(73), "success", trial=True)
    assert closed.changed and closed.view.state == "closed"
    assert (await a.admit("erp", POLICY, at(74))).go


async def test_a_trial_whose_holder_died_is_given_to_another_after_its_ttl(
    stores: tuple[BreakerStore, BreakerStore],
) -> None:
    a, b = stores
    for second in range(3):
        await fail(a, at(second))
    assert (await a.admit("erp", POLICY, at(40))).trial  # and the process dies
    assert not (await b.admit("erp", POLICY, at(45))).go
    assert (await b.admit("erp", POLICY, at(40 + 5 + 5 + 1))).trial  # request timeout + 5 s


async def test_with_redis_unreachable_each_process_decides_with_its_own_view() -> None:
    closed_port = "redis://127.0.0.1:9/0"
    store = RedisBreakers(closed_port)
    started = time.monotonic()
    assert (await store.admit("erp", POLICY, at(0))).go
    for second in range(3):
        await store.record("erp", POLICY, at(second), "failure", trial=False)
    assert not (await store.admit("erp", POLICY, at(5))).go  # the local breaker opened
    assert await store.read("erp", POLICY, at(5)) is None  # the shared state is unknown
    assert time.monotonic() - started < 5  # short timeouts, no retries
    await store.close()


async def test_concurrent_admissions_give_exactly_one_trial(
    stores: tuple[BreakerStore, BreakerStore],
) -> None:
    a, b = stores
    for second in range(3):
        await fail(a, at(second))
    admissions = await asyncio.gather(
        *(store.admit("erp", POLICY, at(40)) for store in (a, b) * 10)
    )
    assert sum(1 for adm in admissions if adm.trial) == 1


# --- the trust in "closed" (RedisBreakers) ---------------------------------------------------


@pytest.fixture
async def two_processes(redis_url: str | None) -> AsyncIterator[tuple[RedisBreakers, ...]]:
    if redis_url is None:
        require_redis()
    assert redis_url
    a, b = RedisBreakers(redis_url), RedisBreakers(redis_url)
    yield a, b
    await a.close()
    await b.close()


def count_redis_calls(store: RedisBreakers) -> list[str]:
    calls: list[str] = []
    run = store._run

    async def counted(script: Any, name: str, *args: Any) -> Any:
        calls.append(name)
        return await run(script, name, *args)

    store._run = counted  # type: ignore[method-assign]
    return calls


async def test_a_process_just_answered_admits_without_asking_redis_for_a_moment(
    two_processes: tuple[RedisBreakers, RedisBreakers],
) -> None:
    a, _ = two_processes
    calls = count_redis_calls(a)
    assert (await a.admit("erp", POLICY, at(0))).go
    assert (await a.admit("erp", POLICY, at(0.1))).go  # an admission earns no trust
    assert calls == ["erp", "erp"]
    await a.record("erp", POLICY, at(0.2), "success", trial=False)
    assert (await a.admit("erp", POLICY, at(0.5))).go
    assert (await a.admit("erp", POLICY, at(1.1))).go
    assert calls == ["erp", "erp", "erp"]  # the record only
    assert (await a.admit("erp", POLICY, at(1.3))).go  # past the trust: asks again
    assert len(calls) == 4


async def test_a_failure_of_the_process_ends_its_trust_at_once(
    two_processes: tuple[RedisBreakers, RedisBreakers],
) -> None:
    a, _ = two_processes
    await a.record("erp", POLICY, at(0), "success", trial=False)
    calls = count_redis_calls(a)
    failed = await a.record("erp", POLICY, at(0.1), "failure", trial=False)
    assert failed.view.state == "closed"  # one failure of three
    assert (await a.admit("erp", POLICY, at(0.2))).go
    assert calls == ["erp", "erp"]  # the failure, then the admission asked


async def test_a_breaker_opened_elsewhere_is_seen_after_the_trust_or_the_next_failure(
    two_processes: tuple[RedisBreakers, RedisBreakers],
) -> None:
    a, b = two_processes
    await a.record("erp", POLICY, at(0), "success", trial=False)  # the ERP answered a
    for tenth in range(3):  # then it fails for the other process: it opens
        await b.record("erp", POLICY, at(0.1 + tenth / 10), "failure", trial=False)
    # the gap: like a call already in flight when the breaker opened
    assert (await a.admit("erp", POLICY, at(0.5))).go
    # that call's failure is answered "open": the trust ends at once
    failed = await a.record("erp", POLICY, at(0.6), "failure", trial=False)
    assert failed.view.state == "open" and not failed.changed
    assert not (await a.admit("erp", POLICY, at(0.7))).go
    # a process trusting "closed" asks again once its trust is up
    assert (await b.admit("erp", POLICY, at(40))).trial
    await b.record("erp", POLICY, at(40.1), "success", trial=True)
    await a.record("erp", POLICY, at(40.2), "success", trial=False)
    for second in range(3):
        await b.record("erp", POLICY, at(41 + second / 10), "failure", trial=False)
    assert not (await a.admit("erp", POLICY, at(41.3))).go  # trusted until 41.2 only


async def test_the_trust_ends_before_an_open_breaker_can_let_a_second_trial_through(
    two_processes: tuple[RedisBreakers, RedisBreakers],
) -> None:
    a, b = two_processes
    short = DeliveryPolicy(breaker_fail_max=1, breaker_reset_seconds=0.4, request_timeout_seconds=5)
    await a.record("erp", short, at(0), "success", trial=False)  # trusted 0.2 s: half the reset
    await b.record("erp", short, at(0.05), "failure", trial=False)  # open until 0.45
    assert (await b.admit("erp", short, at(0.5))).trial
    assert not (await a.admit("erp", short, at(0.5))).go  # no second call while it runs


async def test_the_trust_is_bounded_by_the_monotonic_clock_too(
    two_processes: tuple[RedisBreakers, RedisBreakers], monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.delivery.breakers as breakers

    monkeypatch.setattr(breakers, "CLOSED_TRUST_SECONDS", 0.05)
    a, _ = two_processes
    calls = count_redis_calls(a)
    await a.record("erp", POLICY, at(0), "success", trial=False)
    await asyncio.sleep(0.06)
    await a.admit("erp", POLICY, at(0))  # the wall clock stood still (or stepped back)
    assert calls == ["erp", "erp"]
