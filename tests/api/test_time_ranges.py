"""Deliveries and events filter by a time range: since inclusive, until exclusive, no offset
meaning UTC; a range that ends before it starts or a date that is not one is a 422."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col

from app.db import transaction
from app.models import Delivery, utcnow
from tests.api.conftest import Gateway, seed


async def _delivery_created(gw: Gateway, at: datetime) -> int:
    s = await seed(gw.rt, status="dead")
    async with transaction(gw.rt.sessions) as session:
        await session.execute(
            sa.update(Delivery).where(col(Delivery.id) == s.delivery).values(created_at=at)
        )
    return s.delivery


async def test_deliveries_filter_by_created_at(gw: Gateway) -> None:
    now = utcnow().replace(microsecond=0)
    old = await _delivery_created(gw, now - timedelta(days=3))
    mid = await _delivery_created(gw, now - timedelta(days=1))
    new = await _delivery_created(gw, now)

    async def ids(**params: object) -> list[int]:
        return [d["id"] for d in await gw.pages("/deliveries", limit=1, **params)]

    two_days = (now - timedelta(days=2)).isoformat()
    assert await ids(since=two_days) == [new, mid]
    assert await ids(until=two_days) == [old]
    # since inclusive, until exclusive: the instant of ``mid`` is in one and not the other
    at_mid = (now - timedelta(days=1)).isoformat()
    assert await ids(since=at_mid, until=now.isoformat()) == [mid]
    naive = (now - timedelta(days=2)).replace(tzinfo=None).isoformat()
    assert await ids(since=naive, status="dead") == [new, mid]  # no offset: UTC
    offset = (now - timedelta(days=2)).astimezone().isoformat()
    assert await ids(since=offset) == [new, mid]
    assert await ids(since=at_mid, until=at_mid) == []  # an empty range is not an error


@pytest.mark.parametrize("path", ["/deliveries", "/events"])
@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "is after until"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "1999-12-31T00:00:00Z"}, "since"),
    ],
)
async def test_a_bad_time_range_is_422_naming_it(
    gw: Gateway, path: str, params: dict[str, str], says: str
) -> None:
    answer = await gw.get(path, **params)
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["error"]["message"]
