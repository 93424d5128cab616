"""A replay keeps numbering attempts: the new ones are 11, 12… after ten, even once
retention deleted the old attempt rows; and its backoff starts over (a new run)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col

from app.db import transaction
from app.models import Delivery, DeliveryAttempt
from kernel.errors import TransientError
from tests.api.conftest import Gateway, add_attempt, seed
from tests.conftest import wait_for

OLD_ATTEMPTS = 10


async def test_attempts_after_a_replay_continue_the_numbering_with_a_fresh_backoff(
    gw: Gateway,
) -> None:
    s = await seed(gw.rt, status="dead", attempts=OLD_ATTEMPTS, last_error="gave up")
    await add_attempt(gw.rt, s.delivery, OLD_ATTEMPTS, "transient")
    async with transaction(gw.rt.sessions) as session:  # retention took the older rows
        await session.execute(
            sa.delete(DeliveryAttempt).where(col(DeliveryAttempt.number) < OLD_ATTEMPTS)
        )
    gw.erp.script.deliver_errors.append(TransientError("HTTP 503 (scripted)"))

    replayed = await gw.write("POST", f"/deliveries/{s.delivery}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["attempts"] == OLD_ATTEMPTS  # the count is kept

    async def tried() -> Delivery | None:
        async with gw.rt.sessions() as session:
            row = await session.get(Delivery, s.delivery)
        return row if row is not None and row.attempts > OLD_ATTEMPTS else None

    # The tests' backoff is 25-50 ms, so the retry may be over before a poll sees the first
    # failure: then its quick success is itself the proof the backoff was a first failure's,
    # not an eleventh's (up to 600 s in production, 0.5 s here).
    retrying = await wait_for(tried, message="the replay's first attempt")
    if retrying.attempts == OLD_ATTEMPTS + 1 and retrying.status == "pending":
        assert retrying.run_attempts == 1
        assert (retrying.next_attempt_at - retrying.updated_at).total_seconds() <= 2.01
    await gw.wait_status(s.delivery, "delivered")

    detail = await gw.ok(f"/deliveries/{s.delivery}")
    numbers = [(a["number"], a["outcome"]) for a in detail["attempts"]]
    assert numbers == [
        (OLD_ATTEMPTS, "transient"),
        (OLD_ATTEMPTS + 1, "transient"),
        (OLD_ATTEMPTS + 2, "delivered"),
    ]
    assert detail["attempt_count"] == OLD_ATTEMPTS + 2
