"""Retry policy: exponential backoff with full jitter, capped."""

from __future__ import annotations

import random

from app.config import DeliveryPolicy


def backoff_seconds(
    attempt: int, policy: DeliveryPolicy, rng: random.Random | None = None
) -> float:
    """Delay before retry number ``attempt`` (1-based): uniform in [base/2, min(cap, base·2^(n-1))].

    Full jitter spreads retries of many deliveries that failed together (an outage), so the
    destination is not hit by a thundering herd when it comes back; the lower bound keeps
    a retry from firing instantly.
    """
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    ceiling = min(policy.backoff_max_seconds, policy.backoff_base_seconds * 2 ** (attempt - 1))
    floor = min(ceiling, policy.backoff_base_seconds / 2)
    return (rng or random).uniform(floor, ceiling)
