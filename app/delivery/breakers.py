"""One circuit breaker per destination connection.

Each worker process keeps its breakers in memory (no network round trip on the hot path);
with Redis configured, every state change is published there so the API process, which
reports breakers to operators, sees what the workers see.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pybreaker

from app.config import GatewayConfig
from connectors.base import NeedsMappingError, PermanentError, RateLimitedError

# Data problems say nothing about the destination's health; they never trip the breaker.
_NOT_FAILURES = (PermanentError, NeedsMappingError, RateLimitedError)
_KEY = "erp-gateway:breaker:{}"


class _Publisher(pybreaker.CircuitBreakerListener):
    """Writes a breaker's state and opening time to Redis when it changes (rare)."""

    def __init__(self, redis_client: Any) -> None:
        self.redis = redis_client

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        opened = cb._state_storage.opened_at
        self.redis.hset(
            _KEY.format(cb.name),
            mapping={"state": new_state.name, "opened_at": opened.isoformat() if opened else ""},
        )


class BreakerRegistry:
    def __init__(self, config: GatewayConfig, redis_url: str | None = None) -> None:
        self._config = config
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}
        self._redis: Any = None
        if redis_url:
            import redis  # sync client: pybreaker listeners are synchronous

            self._redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def get(self, destination: str) -> pybreaker.CircuitBreaker:
        breaker = self._breakers.get(destination)
        if breaker is None:
            policy = self._config.policy_for(destination)
            breaker = pybreaker.CircuitBreaker(
                fail_max=policy.breaker_fail_max,
                reset_timeout=policy.breaker_reset_seconds,
                exclude=list(_NOT_FAILURES),
                listeners=[_Publisher(self._redis)] if self._redis is not None else [],
                name=destination,
                throw_new_error_on_trip=False,
            )
            self._breakers[destination] = breaker
        return breaker

    def local_state(self, destination: str) -> str:
        """This process's view: closed | open | half-open (open past its timeout = half-open)."""
        state = str(self.get(destination).current_state)
        if state == pybreaker.STATE_OPEN and self.reopens_at(destination) <= datetime.now(UTC):
            return pybreaker.STATE_HALF_OPEN  # the next call is a trial
        return state

    def state(self, destination: str) -> str:
        """What operators see: the state the workers published, else this process's."""
        if self._redis is None:
            return self.local_state(destination)
        published = self._redis.hgetall(_KEY.format(destination))
        if not published:
            return pybreaker.STATE_CLOSED
        state = str(published.get("state", pybreaker.STATE_CLOSED))
        if state == pybreaker.STATE_OPEN and self._published_reopen(
            published, destination
        ) <= datetime.now(UTC):
            return pybreaker.STATE_HALF_OPEN
        return state

    def reopens_at(self, destination: str) -> datetime:
        """When an open breaker lets the next trial call through."""
        if self._redis is not None and destination not in self._breakers:
            return self._published_reopen(
                self._redis.hgetall(_KEY.format(destination)), destination
            )
        breaker = self.get(destination)
        opened = breaker._state_storage.opened_at or datetime.now(UTC)
        return _aware(opened) + timedelta(seconds=breaker.reset_timeout)

    def _published_reopen(self, published: dict[str, str], destination: str) -> datetime:
        opened_text = published.get("opened_at") or ""
        opened = datetime.fromisoformat(opened_text) if opened_text else datetime.now(UTC)
        reset = self._config.policy_for(destination).breaker_reset_seconds
        return _aware(opened) + timedelta(seconds=reset)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
