"""One circuit breaker per destination connection, shared by every process delivering to it.

closed ─ ``breaker_fail_max`` transient failures in a row ─▶ open ─ ``breaker_reset_seconds``
─▶ half-open: ONE trial call at a time (across all processes); its success closes the
breaker, its failure opens it again. A breaker's failures are the destination's health, not
a delivery's: the engine never dead-letters a delivery while its destination's breaker is
open (see ``app.delivery.service``).

Embedded (no Redis): pybreaker's state machine in memory, plus a trial slot. With Redis, the
same machine runs as one Lua script per step, atomic across worker processes. pybreaker
cannot do that part itself: it is synchronous (its Redis storage would block the event loop
on every call) and lets every half-open call through. Every Redis call has a short timeout;
when Redis does not answer, the process falls back to its own in-memory breaker (the local
view) and logs it once, so a Redis blip never stops delivery to a healthy destination.

Admitting a call to a closed breaker changes nothing in Redis, so a process whose own last
call to the destination succeeded (Redis answering its record "closed") admits calls without
asking again for ``CLOSED_TRUST_SECONDS`` (at most half the reset period), until one of its
calls fails: one round trip less per delivery while the destination answers. Nothing else
earns that trust, an admission included: a process that has not just been answered asks. A
breaker opened meanwhile by another process's failures is seen when the trust is up or at this
process's first failure; the calls admitted in that gap went to a destination that had just
answered this process, and if they fail they are like the calls already in flight when a
breaker opens: recorded against the open breaker, their deliveries wait for the destination,
never dead-lettered. Open and half-open breakers always ask Redis, and the trust cannot outlive
the open period (it ends before the breaker could turn half-open), so there is still one trial
at a time across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import pybreaker
import structlog

from app.config import DeliveryPolicy, GatewayConfig

log = structlog.get_logger("gateway.breakers")

State = Literal["closed", "open", "half-open"]
Signal = Literal["success", "failure"]

REDIS_TIMEOUT_SECONDS = 0.5
# how long after its own call succeeded a process admits calls without asking Redis again
CLOSED_TRUST_SECONDS = 1.0
_KEY = "erp-gateway:breaker:{}"


@dataclass(frozen=True)
class BreakerView:
    """What a breaker says now; ``reopens_at``: when an open breaker lets a trial through."""

    state: State
    reopens_at: datetime | None = None


CLOSED = BreakerView("closed")


@dataclass(frozen=True)
class Admission:
    """May this process call the destination now? ``trial``: it is the one half-open call."""

    go: bool
    trial: bool = False
    retry_at: datetime | None = None  # when not ``go``: when to look again


@dataclass(frozen=True)
class Transition:
    """The breaker after a call's outcome; ``changed``: opened, re-opened or closed by it."""

    view: BreakerView
    changed: bool


class BreakerStore(Protocol):
    async def admit(self, name: str, policy: DeliveryPolicy, now: datetime) -> Admission: ...

    async def record(
        self, name: str, policy: DeliveryPolicy, now: datetime, signal: Signal, *, trial: bool
    ) -> Transition: ...

    async def release_trial(self, name: str) -> None: ...

    async def view(self, name: str, policy: DeliveryPolicy, now: datetime) -> BreakerView: ...


def trial_ttl(policy: DeliveryPolicy) -> timedelta:
    """How long a trial slot is held if its holder never reports (it died mid-call)."""
    return timedelta(seconds=policy.request_timeout_seconds + 5)


class _Failure(Exception):
    """Fed to pybreaker to count one failure of the destination."""


def _ok() -> None:
    return None


def _fail() -> None:
    raise _Failure


class MemoryBreakers:
    """pybreaker breakers in this process, with one trial slot each (the embedded default)."""

    def __init__(self) -> None:
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}
        self._trial_until: dict[str, datetime] = {}

    def _get(self, name: str, policy: DeliveryPolicy) -> pybreaker.CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = pybreaker.CircuitBreaker(
                fail_max=policy.breaker_fail_max,
                reset_timeout=policy.breaker_reset_seconds,
                name=name,
                throw_new_error_on_trip=False,
            )
            self._breakers[name] = breaker
        return breaker

    def _reopens_at(self, breaker: pybreaker.CircuitBreaker) -> datetime:
        opened = breaker._state_storage.opened_at or datetime.now(UTC)
        return _aware(opened) + timedelta(seconds=breaker.reset_timeout)

    async def admit(self, name: str, policy: DeliveryPolicy, now: datetime) -> Admission:
        breaker = self._get(name, policy)
        if breaker.current_state == pybreaker.STATE_CLOSED:
            return Admission(go=True)
        reopens = self._reopens_at(breaker)
        if now < reopens:
            return Admission(go=False, retry_at=reopens)
        held_until = self._trial_until.get(name)
        if held_until is not None and held_until > now:
            return Admission(go=False, retry_at=held_until)
        self._trial_until[name] = now + trial_ttl(policy)
        return Admission(go=True, trial=True)

    async def record(
        self, name: str, policy: DeliveryPolicy, now: datetime, signal: Signal, *, trial: bool
    ) -> Transition:
        breaker = self._get(name, policy)
        was_closed = breaker.current_state == pybreaker.STATE_CLOSED
        if trial:
            self._trial_until.pop(name, None)
        if signal == "success":
            if was_closed:
                breaker.call(_ok)  # resets the run of failures
                return Transition(CLOSED, changed=False)
            breaker.close()
            return Transition(CLOSED, changed=True)
        if was_closed:
            with contextlib.suppress(_Failure, pybreaker.CircuitBreakerError):
                breaker.call(_fail)
            if breaker.current_state == pybreaker.STATE_CLOSED:
                return Transition(CLOSED, changed=False)
            breaker._state_storage.opened_at = now  # the gateway's clock, not pybreaker's
            return Transition(BreakerView("open", self._reopens_at(breaker)), changed=True)
        if trial:
            breaker.open()  # the trial failed: wait a whole reset period again
            breaker._state_storage.opened_at = now
            return Transition(BreakerView("open", self._reopens_at(breaker)), changed=True)
        # a call admitted before the breaker opened failed late: it is already open
        return Transition(await self.view(name, policy, now), changed=False)

    async def release_trial(self, name: str) -> None:
        self._trial_until.pop(name, None)

    async def view(self, name: str, policy: DeliveryPolicy, now: datetime) -> BreakerView:
        breaker = self._get(name, policy)
        if breaker.current_state == pybreaker.STATE_CLOSED:
            return CLOSED
        reopens = self._reopens_at(breaker)
        return BreakerView("half-open" if now >= reopens else "open", reopens)


# One script per step: Redis runs each atomically, so two workers can never both take the
# trial slot, and failures from every process count towards one threshold.
# Hash fields: state (closed|open), failures, opened_ms, trial_until_ms.
_ADMIT = """
local h = redis.call('HMGET', KEYS[1], 'state', 'opened_ms', 'trial_until_ms')
if h[1] ~= 'open' then return {1, 0, 0} end
local now, reset, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reopens = tonumber(h[2] or '0') + reset
if now < reopens then return {0, 0, reopens} end
local held = tonumber(h[3] or '0')
if held > now then return {0, 0, held} end
redis.call('HSET', KEYS[1], 'trial_until_ms', now + ttl)
return {1, 1, 0}
"""
_RECORD = """
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'opened_ms')
local now, fail_max, reset = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local failure, trial = ARGV[4] == 'failure', ARGV[5] == '1'
local open = h[1] == 'open'
if trial then redis.call('HSET', KEYS[1], 'trial_until_ms', 0) end
if not failure then
  if open then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opened_ms', 0)
    return {0, 1, 0}
  end
  if tonumber(h[2] or '0') > 0 then redis.call('HSET', KEYS[1], 'failures', 0) end
  return {0, 0, 0}
end
if open then
  if trial then
    redis.call('HSET', KEYS[1], 'opened_ms', now)
    return {1, 1, now + reset}
  end
  return {1, 0, tonumber(h[3] or '0') + reset}
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= fail_max then
  redis.call('HSET', KEYS[1], 'state', 'open', 'failures', 0, 'opened_ms', now)
  return {1, 1, now + reset}
end
return {0, 0, 0}
"""


class RedisBreakers:
    """The breakers in Redis, shared by every process; the local view when Redis is away."""

    def __init__(self, redis_url: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(
            redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._admit = self._redis.register_script(_ADMIT)
        self._record = self._redis.register_script(_RECORD)
        self._local = MemoryBreakers()
        self._unreachable_since: float | None = None
        # name -> (gateway clock, monotonic clock) until which "closed" is trusted
        self._closed_until: dict[str, tuple[datetime, float]] = {}

    def _trust_closed(self, name: str, policy: DeliveryPolicy, now: datetime) -> None:
        """Our call succeeded and Redis says closed at ``now``: admit without asking for a
        short while (both clocks, so a step of the wall clock cannot stretch it)."""
        ttl = min(CLOSED_TRUST_SECONDS, policy.breaker_reset_seconds / 2)
        self._closed_until[name] = (now + timedelta(seconds=ttl), time.monotonic() + ttl)

    def _trusted(self, name: str, now: datetime) -> bool:
        until = self._closed_until.get(name)
        return until is not None and now < until[0] and time.monotonic() < until[1]

    async def _run(self, script: Any, name: str, *args: Any) -> list[int] | None:
        try:
            result = await asyncio.wait_for(
                script(keys=[_KEY.format(name)], args=list(args)), REDIS_TIMEOUT_SECONDS
            )
        except Exception as exc:  # any Redis trouble: decide locally, never stop delivery
            if self._unreachable_since is None:
                self._unreachable_since = time.monotonic()
                log.warning(
                    "breaker state in Redis unreachable; using this process's own view",
                    breaker=name,
                    error=type(exc).__name__,
                )
            return None
        if self._unreachable_since is not None:
            log.info("breaker state in Redis reachable again", breaker=name)
            self._unreachable_since = None
        return [int(v) for v in result]

    async def admit(self, name: str, policy: DeliveryPolicy, now: datetime) -> Admission:
        if self._trusted(name, now):
            return Admission(go=True)
        got = await self._run(
            self._admit,
            name,
            _ms(now),
            int(policy.breaker_reset_seconds * 1000),
            int(trial_ttl(policy).total_seconds() * 1000),
        )
        if got is None:
            self._closed_until.pop(name, None)
            return await self._local.admit(name, policy, now)
        go, trial, retry_ms = got
        if not go or trial:
            self._closed_until.pop(name, None)
        return Admission(go=bool(go), trial=bool(trial), retry_at=_at(retry_ms) if not go else None)

    async def record(
        self, name: str, policy: DeliveryPolicy, now: datetime, signal: Signal, *, trial: bool
    ) -> Transition:
        got = await self._run(
            self._record,
            name,
            _ms(now),
            policy.breaker_fail_max,
            int(policy.breaker_reset_seconds * 1000),
            signal,
            "1" if trial else "0",
        )
        if got is None:
            self._closed_until.pop(name, None)
            return await self._local.record(name, policy, now, signal, trial=trial)
        is_open, changed, reopens_ms = got
        if signal == "success" and not is_open:
            self._trust_closed(name, policy, now)  # the destination just answered us
        else:
            self._closed_until.pop(name, None)
        view = BreakerView("open", _at(reopens_ms)) if is_open else CLOSED
        return Transition(view, changed=bool(changed))

    async def release_trial(self, name: str) -> None:
        with contextlib.suppress(Exception):  # else the slot expires by itself (trial_ttl)
            await asyncio.wait_for(
                self._redis.hset(_KEY.format(name), "trial_until_ms", 0), REDIS_TIMEOUT_SECONDS
            )
        await self._local.release_trial(name)

    async def view(self, name: str, policy: DeliveryPolicy, now: datetime) -> BreakerView:
        shared = await self.read(name, policy, now)
        return shared if shared is not None else await self._local.view(name, policy, now)

    async def read(self, name: str, policy: DeliveryPolicy, now: datetime) -> BreakerView | None:
        """The shared state, or None when Redis cannot be read right now."""
        try:
            state, opened_ms = await asyncio.wait_for(
                self._redis.hmget(_KEY.format(name), ["state", "opened_ms"]),
                REDIS_TIMEOUT_SECONDS,
            )
        except Exception:
            return None
        if state != b"open":
            return CLOSED
        reopens = _at(int(opened_ms or 0) + int(policy.breaker_reset_seconds * 1000))
        return BreakerView("half-open" if now >= reopens else "open", reopens)

    async def close(self) -> None:
        await self._redis.aclose()


class BreakerRegistry:
    """The runtime's breakers: shared in Redis when configured, else in this process."""

    def __init__(self, config: GatewayConfig, redis_url: str | None = None) -> None:
        self._config = config
        self.store: BreakerStore = RedisBreakers(redis_url) if redis_url else MemoryBreakers()

    def policy(self, destination: str) -> DeliveryPolicy:
        return self._config.policy_for(destination)

    async def admit(self, destination: str, now: datetime) -> Admission:
        return await self.store.admit(destination, self.policy(destination), now)

    async def record(
        self, destination: str, now: datetime, signal: Signal, *, trial: bool
    ) -> Transition:
        return await self.store.record(
            destination, self.policy(destination), now, signal, trial=trial
        )

    async def release_trial(self, destination: str) -> None:
        await self.store.release_trial(destination)

    async def view(self, destination: str, now: datetime) -> BreakerView:
        return await self.store.view(destination, self.policy(destination), now)

    async def shared_view(self, destination: str, now: datetime) -> BreakerView | None:
        """The state every process shares, or None if it cannot be read now (Redis away)."""
        if isinstance(self.store, RedisBreakers):
            return await self.store.read(destination, self.policy(destination), now)
        return await self.store.view(destination, self.policy(destination), now)

    async def close(self) -> None:
        if isinstance(self.store, RedisBreakers):
            await self.store.close()


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
