"""What one attempt's result means for its delivery: the row's new values and the outcome.

Pure decisions, no I/O: the engine (``service.py``) calls the connector and writes what
``decide`` returns. Kept apart so each error class's consequence reads in one place.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.config import DeliveryPolicy
from app.delivery.breakers import BreakerView, Signal
from app.delivery.outbox import WAITING_FOR_DESTINATION, Outcome
from app.delivery.policy import backoff_seconds
from app.models import Delivery, DeliveryStatus
from kernel.errors import (
    HoldError,
    NeedsMappingError,
    PermanentError,
    RateLimitedError,
    TransientError,
)

# A delivery waiting for its destination to recover is woken when the breaker closes (or
# by the sweeper's trial); this is only the safety net if that wake-up is ever missed.
BREAKER_WAIT_SECONDS = 600.0


def classify(error: BaseException | None) -> tuple[str, bool]:
    """(outcome name, counts as an attempt)."""
    if error is None:
        return "delivered", True
    if isinstance(error, NeedsMappingError):
        return "needs_mapping", False
    if isinstance(error, HoldError):
        return "held", False
    if isinstance(error, RateLimitedError):
        return "rate_limited", False
    if isinstance(error, PermanentError):
        return "permanent", True
    if isinstance(error, TransientError):
        return "transient", True
    return "internal", True


def health_signal(error: BaseException | None) -> Signal | None:
    """What the call says about the destination: it answered, it failed, or nothing."""
    if error is None or isinstance(error, RateLimitedError | PermanentError | HoldError):
        return "success"  # it answered (a refusal is an answer, not an outage)
    if isinstance(error, TransientError):
        return "failure"
    return None  # a mapping gap, or a bug in the connector: not the destination's health


def error_message(error: BaseException | None) -> str | None:
    return None if error is None else (str(error) or type(error).__name__)


def decide(
    policy: DeliveryPolicy,
    delivery: Delivery,
    error: BaseException | None,
    breaker: BreakerView | None,
    attempts: int,
    now: datetime,
) -> tuple[dict[str, Any], Outcome]:
    """The delivery row's new values (status and error fields) and the engine's outcome;
    ``attempts`` are those of the current run (a replay starts a new one)."""
    name = classify(error)[0]
    message = error_message(error)
    if error is None:
        return {
            "status": DeliveryStatus.DELIVERED,
            "delivered_at": now,
            "last_error": None,
            "last_error_class": None,
            "parked_reason": None,
            "needs": None,
            "failing_since": None,
        }, Outcome("done", DeliveryStatus.DELIVERED)
    if isinstance(error, NeedsMappingError):
        return {
            "status": DeliveryStatus.PARKED,
            "parked_reason": message,
            "needs": [{"kind": m.kind, "key": m.key} for m in error.missing],
            "last_error": message,
            "last_error_class": name,
        }, Outcome("done", DeliveryStatus.PARKED)
    if isinstance(error, HoldError):
        return {
            "status": DeliveryStatus.HELD,
            "held_reason": message,
            "last_error": message,
            "last_error_class": name,
        }, Outcome("done", DeliveryStatus.HELD)
    if isinstance(error, RateLimitedError):
        retry_at = now + timedelta(seconds=max(error.retry_after, 0.05))
        return {
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": retry_at,
            "last_error": message,
            "last_error_class": name,
        }, Outcome("retry", DeliveryStatus.PENDING, retry_at)
    if isinstance(error, PermanentError):
        return {
            "status": DeliveryStatus.DEAD,
            "last_error": message,
            "last_error_class": name,
        }, Outcome("done", DeliveryStatus.DEAD)
    assert message is not None
    return _retry_or_dead(policy, delivery, name, breaker, attempts, message, now)


def _retry_or_dead(
    policy: DeliveryPolicy,
    delivery: Delivery,
    name: str,
    breaker: BreakerView | None,
    attempts: int,
    message: str,
    now: datetime,
) -> tuple[dict[str, Any], Outcome]:
    """A transient (or unexpected) failure: wait for the destination, back off, or give up.

    Failures while the destination is down are its health, not the delivery's: they never
    end a delivery. Otherwise the delivery is retried until the retry window has passed since
    its failures began.
    """
    failing_since = delivery.failing_since or now
    if breaker is not None and breaker.state != "closed":
        reopens = breaker.reopens_at
        return {
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": now + timedelta(seconds=BREAKER_WAIT_SECONDS),
            "failing_since": failing_since,
            "last_error": f"{message} ({delivery.destination} is down, circuit breaker open; "
            "waiting for it to recover"
            + (f", next trial call at {reopens.isoformat()})" if reopens else ")"),
            "last_error_class": WAITING_FOR_DESTINATION,
        }, Outcome("skipped", DeliveryStatus.PENDING)
    window = timedelta(seconds=policy.retry_window_seconds)
    if now - failing_since >= window:
        hours = window.total_seconds() / 3600
        return {
            "status": DeliveryStatus.DEAD,
            "failing_since": failing_since,
            "last_error": f"gave up after {attempts} attempts over {hours:g} h "
            f"(retry_window_seconds) while {delivery.destination} otherwise answered: {message}",
            "last_error_class": name,
        }, Outcome("done", DeliveryStatus.DEAD)
    retry_at = now + timedelta(seconds=backoff_seconds(attempts, policy))
    return {
        "status": DeliveryStatus.PENDING,
        "next_attempt_at": retry_at,
        "failing_since": failing_since,
        "last_error": message,
        "last_error_class": name,
    }, Outcome("retry", DeliveryStatus.PENDING, retry_at)
