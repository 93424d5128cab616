"""Backoff: grows exponentially, is capped, and is jittered."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import DeliveryPolicy
from app.delivery.policy import backoff_seconds

POLICY = DeliveryPolicy(backoff_base_seconds=2, backoff_max_seconds=600)


@given(attempt=st.integers(min_value=1, max_value=60), seed=st.integers())
def test_backoff_stays_within_floor_and_cap(attempt: int, seed: int) -> None:
    delay = backoff_seconds(attempt, POLICY, random.Random(seed))
    assert 1.0 <= delay <= min(600, 2 * 2 ** (attempt - 1))


def test_backoff_ceiling_doubles_until_the_cap() -> None:
    ceilings = [
        max(backoff_seconds(n, POLICY, random.Random(s)) for s in range(300)) for n in (1, 2, 3, 4)
    ]
    assert ceilings[0] <= 2 < ceilings[1] <= 4 < ceilings[2] <= 8 < ceilings[3] <= 16
    assert max(backoff_seconds(30, POLICY, random.Random(s)) for s in range(50)) <= 600


def test_backoff_is_jittered() -> None:
    delays = {backoff_seconds(5, POLICY, random.Random(s)) for s in range(20)}
    assert len(delays) == 20  # no thundering herd after an outage


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        backoff_seconds(0, POLICY)
