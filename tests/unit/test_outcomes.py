"""Each error class's consequence for a delivery, decided without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.config import DeliveryPolicy
from app.delivery.breakers import BreakerView
from app.delivery.outcomes import decide
from app.models import Delivery, DeliveryStatus
from kernel.errors import PermanentError, RateLimitedError, TransientError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = DeliveryPolicy(retry_window_seconds=3600)


def _delivery(failing_since: datetime | None = None) -> Delivery:
    return Delivery(
        canonical_event_id=1,
        flow="orders",
        event_type="order.created",
        source="shop",
        destination="erp",
        entity_key="order:1",
        ordering_key="order:1",
        next_attempt_at=NOW,
        accepted_at=NOW,
        created_at=NOW,
        updated_at=NOW,
        failing_since=failing_since,
    )


def test_a_transient_failure_is_retried_and_remembers_when_failures_began() -> None:
    values, outcome = decide(POLICY, _delivery(), TransientError("503"), None, 1, NOW)
    assert outcome.kind == "retry" and values["status"] == DeliveryStatus.PENDING
    assert values["failing_since"] == NOW


def test_the_retry_window_counts_from_the_first_failure_not_the_attempts() -> None:
    began = NOW - timedelta(seconds=3601)
    values, outcome = decide(POLICY, _delivery(began), TransientError("503"), None, 3, NOW)
    assert values["status"] == DeliveryStatus.DEAD and outcome.kind == "done"
    assert "gave up after 3 attempts over 1 h" in values["last_error"]


def test_a_destination_that_is_down_never_ends_a_delivery_however_long_it_lasts() -> None:
    began = NOW - timedelta(days=30)
    down = BreakerView("open", reopens_at=NOW + timedelta(seconds=30))
    values, outcome = decide(POLICY, _delivery(began), TransientError("503"), down, 90, NOW)
    assert values["status"] == DeliveryStatus.PENDING and outcome.kind == "skipped"
    assert values["last_error_class"] == "breaker_open"


def test_a_refusal_is_final_and_a_rate_limit_is_not_a_failure() -> None:
    values, _ = decide(POLICY, _delivery(), PermanentError("bad sku"), None, 1, NOW)
    assert values["status"] == DeliveryStatus.DEAD
    slow_down = RateLimitedError("slow", retry_after=7)
    values, outcome = decide(POLICY, _delivery(), slow_down, None, 0, NOW)
    assert outcome.retry_at == NOW + timedelta(seconds=7) and "failing_since" not in values
