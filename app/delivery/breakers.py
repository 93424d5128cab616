"""One circuit breaker per destination connection.

With Redis configured the breaker state lives in Redis, so every worker process and the API
(which reports it) see the same state; otherwise it lives in this process.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pybreaker

from app.config import GatewayConfig
from connectors.base import NeedsMappingError, PermanentError, RateLimitedError

# Data problems say nothing about the destination's health; they never trip the breaker.
_NOT_FAILURES = (PermanentError, NeedsMappingError, RateLimitedError)


class BreakerRegistry:
    def __init__(self, config: GatewayConfig, redis_url: str | None = None) -> None:
        self._config = config
        self._redis_url = redis_url
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}

    def get(self, destination: str) -> pybreaker.CircuitBreaker:
        breaker = self._breakers.get(destination)
        if breaker is None:
            policy = self._config.policy_for(destination)
            breaker = pybreaker.CircuitBreaker(
                fail_max=policy.breaker_fail_max,
                reset_timeout=policy.breaker_reset_seconds,
                exclude=list(_NOT_FAILURES),
                state_storage=self._storage(destination),
                name=destination,
                throw_new_error_on_trip=False,
            )
            self._breakers[destination] = breaker
        return breaker

    def _storage(self, destination: str) -> pybreaker.CircuitBreakerStorage:
        if not self._redis_url:
            return pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        import redis  # sync client: pybreaker's storage API is synchronous

        client = redis.Redis.from_url(self._redis_url)
        return pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, client, namespace=f"erp-gateway:breaker:{destination}"
        )

    def state(self, destination: str) -> str:
        """closed | open | half-open, as a person reading the API expects it."""
        breaker = self.get(destination)
        state = breaker.current_state
        if state == pybreaker.STATE_OPEN and self.reopens_at(destination) <= datetime.now(UTC):
            return pybreaker.STATE_HALF_OPEN  # the next call is a trial
        return str(state)

    def reopens_at(self, destination: str) -> datetime:
        """When an open breaker lets the next trial call through."""
        breaker = self.get(destination)
        opened = breaker._state_storage.opened_at or datetime.now(UTC)
        if opened.tzinfo is None:
            opened = opened.replace(tzinfo=UTC)
        return opened + timedelta(seconds=breaker.reset_timeout)
