"""Deliveries for operators: the outbox list, one delivery with its attempts, replays.

Writes go through ``app.delivery.actions`` (one place decides what a replay means) and run
in the caller's transaction; what they queue is enqueued once it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.api.pii import exchanges_without_signatures
from app.delivery import actions
from app.errors import Conflict, NotFound
from app.models import Delivery, DeliveryAttempt, DeliveryStatus
from app.ops.pagination import Page, page_of
from app.ops.queries import as_utc, newest_first
from app.ops.schemas import (
    BULK_REPLAY_CAP,
    AttemptOut,
    BulkReplayOut,
    BulkReplayRequest,
    DeliveryDetail,
    DeliveryOut,
    ReplayItem,
)
from app.retention.guards import payload_purged, purged_events
from app.runtime import Runtime

ON_ITS_WAY = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT)


@dataclass(frozen=True)
class DeliveryFilter:
    statuses: Sequence[str] = ()
    destination: str | None = None
    source: str | None = None
    flow: str | None = None
    entity_key: str | None = None
    event_type: str | None = None
    since: datetime | None = None  # created_at, inclusive
    until: datetime | None = None  # created_at, exclusive

    def apply(self, stmt: Any) -> Any:
        if self.since is not None:
            stmt = stmt.where(col(Delivery.created_at) >= as_utc(self.since))
        if self.until is not None:
            stmt = stmt.where(col(Delivery.created_at) < as_utc(self.until))
        if self.statuses:
            stmt = stmt.where(col(Delivery.status).in_(list(self.statuses)))
        for column, value in (
            (Delivery.destination, self.destination),
            (Delivery.source, self.source),
            (Delivery.flow, self.flow),
            (Delivery.entity_key, self.entity_key),
            (Delivery.event_type, self.event_type),
        ):
            if value is not None:
                stmt = stmt.where(col(column) == value)
        return stmt


async def list_deliveries(
    session: AsyncSession, where: DeliveryFilter, cursor: str | None, limit: int
) -> Page[DeliveryOut]:
    stmt = newest_first(where.apply(sa.select(Delivery)), col(Delivery.id), cursor, limit)
    rows = list((await session.execute(stmt)).scalars())
    items, next_cursor = page_of(rows, limit, lambda d: int(d.id or 0))
    return Page(items=[DeliveryOut.model_validate(d) for d in items], next_cursor=next_cursor)


async def _delivery_or_404(session: AsyncSession, delivery_id: int) -> Delivery:
    delivery = await session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    return delivery


async def get_delivery(session: AsyncSession, delivery_id: int) -> DeliveryDetail:
    delivery = await _delivery_or_404(session, delivery_id)
    attempts = (
        await session.execute(
            sa.select(DeliveryAttempt)
            .where(col(DeliveryAttempt.delivery_id) == delivery_id)
            .order_by(col(DeliveryAttempt.id))
        )
    ).scalars()
    data = DeliveryOut.model_validate(delivery).model_dump(exclude={"attempts"})
    return DeliveryDetail(
        **data,
        attempt_count=delivery.attempts,
        attempts=[_attempt_out(a) for a in attempts],
    )


def _attempt_out(attempt: DeliveryAttempt) -> AttemptOut:
    out = AttemptOut.model_validate(attempt)
    # older rows may hold a signature a connector sent; nobody gets to see it
    out.exchanges = exchanges_without_signatures(out.exchanges)
    return out


def _on_its_way(delivery: Delivery) -> Conflict:
    return Conflict(
        f"delivery {delivery.id} is already on its way (status {delivery.status})",
        hint="replay is for delivered, dead, parked, superseded or rejected deliveries; "
        "watch GET /api/v1/deliveries/{id} for the outcome",
    )


def _held(delivery: Delivery) -> Conflict:
    return Conflict(
        f"delivery {delivery.id} is held for a decision: {delivery.held_reason}",
        hint="approve or reject it with POST /api/v1/approvals/{id}/approve or /reject",
    )


async def replay_delivery(session: AsyncSession, rt: Runtime, delivery_id: int) -> DeliveryOut:
    """Replay one delivery; 409 if it is on its way (a replay would double it) or held.

    A rejected delivery is re-opened as held; a guarded change over its guard is held.
    """
    delivery = await _delivery_or_404(session, delivery_id)
    if delivery.status in ON_ITS_WAY:
        raise _on_its_way(delivery)
    if delivery.status == DeliveryStatus.HELD:
        raise _held(delivery)
    if await purged_events(session, [delivery.canonical_event_id]):
        raise payload_purged(delivery_id)
    if not await actions.replay(session, rt, [delivery_id]):
        # the worker changed it between our read and the update
        raise _on_its_way(await _delivery_or_404(session, delivery_id))
    return DeliveryOut.model_validate(await _delivery_or_404(session, delivery_id))


async def bulk_replay(
    session: AsyncSession, rt: Runtime, request: BulkReplayRequest
) -> BulkReplayOut:
    """Replay what matches the filter, oldest first (keeps per-entity order), capped per call.

    ``status: dead`` never selects rejected deliveries (they have their own status); the
    result lists what each delivery becomes, and a dry run shows exactly that without doing it.
    """
    where = DeliveryFilter(
        statuses=[request.status] if request.status else (),
        destination=request.destination,
        flow=request.flow,
        entity_key=request.entity_key,
        event_type=request.event_type,
    )
    stmt = where.apply(sa.select(Delivery)).where(
        col(Delivery.status).in_((*actions.REPLAYABLE, DeliveryStatus.REJECTED))
    )
    if request.ids:
        stmt = stmt.where(col(Delivery.id).in_(request.ids))
    elif request.status is None or request.status != DeliveryStatus.REJECTED:
        # re-opening rejected work is a decision: only by asking for it by status or id
        stmt = stmt.where(col(Delivery.status) != DeliveryStatus.REJECTED)
    stmt = stmt.order_by(col(Delivery.id)).limit(BULK_REPLAY_CAP + 1)
    matched = list((await session.execute(stmt)).scalars())
    capped = len(matched) > BULK_REPLAY_CAP
    matched = matched[:BULK_REPLAY_CAP]
    if request.dry_run:
        steps = await actions.plan_replay(session, rt, matched)
    else:
        steps = await actions.replay(session, rt, [int(d.id or 0) for d in matched])
    done = {s.id for s in steps}
    skipped = sorted({i for i in request.ids or () if i not in done})
    return BulkReplayOut(
        replayed=[s.id for s in steps if s.becomes == DeliveryStatus.PENDING],
        held=[s.id for s in steps if s.becomes == DeliveryStatus.HELD],
        items=[ReplayItem(**asdict(s)) for s in steps],
        count=len(steps),
        dry_run=request.dry_run,
        capped=capped,
        skipped=skipped,
    )
