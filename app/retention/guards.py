"""What retention means for replays: a delivery whose payload was purged is never sent."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.errors import Conflict
from app.models import CanonicalEventRow


async def purged_events(session: AsyncSession, event_ids: Iterable[int]) -> set[int]:
    """Of these canonical events, those whose payload retention has purged."""
    wanted = set(event_ids)
    if not wanted:
        return set()
    rows = await session.execute(
        sa.select(col(CanonicalEventRow.id)).where(
            col(CanonicalEventRow.id).in_(wanted), col(CanonicalEventRow.purged_at).is_not(None)
        )
    )
    return {int(i) for i in rows.scalars() if i is not None}


def payload_purged(delivery_id: int) -> Conflict:
    return Conflict(
        f"delivery {delivery_id} cannot be sent again: its payload was purged by retention",
        hint="have the source send the record again (a new webhook or poll makes a new "
        "delivery); retention.payloads_days in the config sets how long payloads are kept",
    )
