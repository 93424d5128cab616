"""Approvals: held deliveries a person approves (send on) or rejects (final).

A delivery is held by the price guard, by an amendment of an order the ERP can no longer
change by itself, by an over-shipment or an over-return. The decision is kept in the
delivery's ``directives["decision"]`` (outcome, note, who, when) so the trace shows it and a
connector can tell an approved amendment from a new one. A rejection is final: the delivery
gets its own status (``rejected``) that no replay of dead work selects; an operator can only
re-open it as held, to be decided again. Queueing runs after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.approvals.schemas import (
    BULK_DECISION_CAP,
    ApprovalOut,
    BulkDecisionOut,
    BulkDecisionRequest,
    DecisionOut,
    HeldPrice,
    Outcome,
)
from app.delivery import actions
from app.delivery.outbox import enqueue_after_commit, waiting_behind
from app.errors import Conflict, NotFound
from app.flows.products.guards import accept_guarded
from app.models import Delivery, DeliveryStatus, utcnow
from app.ops.deliveries import DeliveryFilter
from app.ops.pagination import Page, decode_cursor, page_of
from app.retention.guards import payload_purged, purged_events
from app.runtime import Runtime

log = structlog.get_logger("gateway.approvals")

DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


def _price(directives: dict[str, Any] | None, name: str) -> str | None:
    value = (directives or {}).get(name)
    return None if value is None else str(value)


def approval_out(delivery: Delivery) -> ApprovalOut:
    return ApprovalOut(
        id=int(delivery.id or 0),
        flow=delivery.flow,
        event_type=delivery.event_type,
        source=delivery.source,
        destination=delivery.destination,
        entity_key=delivery.entity_key,
        status=delivery.status,
        held_reason=delivery.held_reason,
        created_at=delivery.created_at,
        previous_price=_price(delivery.directives, "previous_price"),
        effective_price=_price(delivery.directives, "effective_price"),
        held_prices=_held_prices(delivery),
    )


def _held_prices(delivery: Delivery) -> list[HeldPrice]:
    """The prices of a held price.changed that tripped the guard (none for other work)."""
    listed = (delivery.directives or {}).get("guarded_prices") or []
    return [HeldPrice.model_validate(p) for p in listed if isinstance(p, dict) and p.get("held")]


def held_filter(
    destination: str | None = None,
    flow: str | None = None,
    event_type: str | None = None,
    entity_key: str | None = None,
) -> DeliveryFilter:
    return DeliveryFilter(
        (DeliveryStatus.HELD,),
        destination=destination,
        flow=flow,
        entity_key=entity_key,
        event_type=event_type,
    )


async def list_approvals(
    session: AsyncSession, where: DeliveryFilter, cursor: str | None, limit: int
) -> Page[ApprovalOut]:
    after = decode_cursor(cursor, int)
    stmt = where.apply(sa.select(Delivery))
    if after is not None:
        stmt = stmt.where(col(Delivery.id) < after)
    stmt = stmt.order_by(col(Delivery.id).desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    items, next_cursor = page_of(rows, limit, lambda d: int(d.id or 0))
    return Page(items=[approval_out(d) for d in items], next_cursor=next_cursor)


# --- deciding -----------------------------------------------------------------------------


def _decision(outcome: Outcome, note: str | None, who: str) -> dict[str, Any]:
    return {"outcome": outcome, "note": note, "by": who, "at": utcnow().isoformat()}


async def _set_decided(
    session: AsyncSession, delivery: Delivery, values: dict[str, Any], decision: dict[str, Any]
) -> bool:
    """Apply the decision if the delivery is still held (another operator may have been first)."""
    directives = {**(delivery.directives or {}), "decision": decision}
    result = await session.execute(
        sa.update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery.id, DELIVERIES.c.status == DeliveryStatus.HELD)
        .values(**values, directives=directives)
        .returning(DELIVERIES.c.id)
    )
    return result.first() is not None


async def _approve(
    session: AsyncSession, rt: Runtime, rows: Sequence[Delivery], note: str | None, who: str
) -> tuple[list[int], dict[int, str]]:
    """Send held deliveries on with a fresh attempt budget; returns (ids, baselines set)."""
    now = utcnow()
    values = {
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "failing_since": None,
        "next_attempt_at": now,
        "last_error": None,
        "last_error_class": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
    approved: list[int] = []
    baselines: dict[int, str] = {}
    for delivery in rows:
        if not await _set_decided(session, delivery, values, _decision("approved", note, who)):
            continue
        delivery_id = int(delivery.id or 0)
        approved.append(delivery_id)
        # every price it carries is what the next change of that price is compared with
        if await accept_guarded(session, delivery):
            effective = _price(delivery.directives, "effective_price")
            if effective is not None:
                baselines[delivery_id] = effective
    enqueue_after_commit(session, rt, approved)
    return approved, baselines


async def _waiting_behind(session: AsyncSession, rejected: Sequence[Delivery]) -> list[int]:
    """Pending deliveries that waited for the rejected ones: the first per ordering key."""
    found: set[int] = set()
    for delivery in rejected:
        found.update(await waiting_behind(session, delivery))
    return sorted(found)


async def _reject(
    session: AsyncSession, rt: Runtime, rows: Sequence[Delivery], note: str | None, who: str
) -> tuple[list[int], list[int]]:
    """Reject held deliveries (final: no replay of dead work picks them up) and queue what
    waited behind them; returns (rejected, queued)."""
    now = utcnow()
    values = {
        "status": DeliveryStatus.REJECTED,
        "last_error": f"rejected by an operator: {note}" if note else "rejected by an operator",
        "last_error_class": "rejected",
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
    rejected = [
        d for d in rows if await _set_decided(session, d, values, _decision("rejected", note, who))
    ]
    queued = await _waiting_behind(session, rejected)
    enqueue_after_commit(session, rt, queued)
    return [int(d.id or 0) for d in rejected], queued


async def _held_or_error(session: AsyncSession, delivery_id: int) -> Delivery:
    delivery = await session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", hint="GET /api/v1/approvals lists what waits")
    if delivery.status != DeliveryStatus.HELD:
        raise Conflict(
            f"delivery {delivery_id} is not held (status {delivery.status}); "
            "only held deliveries wait for a decision",
            hint="replay a dead or delivered one with POST /api/v1/deliveries/{id}/replay",
        )
    return delivery


def _not_held_anymore(delivery_id: int) -> Conflict:
    return Conflict(
        f"delivery {delivery_id} was decided by someone else meanwhile",
        hint="GET /api/v1/deliveries/{id} shows its status and directives.decision",
    )


async def decide(
    session: AsyncSession,
    rt: Runtime,
    delivery_id: int,
    outcome: Outcome,
    note: str | None,
    who: str,
) -> DecisionOut:
    """Approve or reject one held delivery; 404 unknown, 409 not held."""
    delivery = await _held_or_error(session, delivery_id)
    baseline: str | None = None
    if outcome == "approved":
        done, baselines = await _approve(session, rt, [delivery], note, who)
        queued = done
        baseline = baselines.get(delivery_id)
    else:
        done, queued = await _reject(session, rt, [delivery], note, who)
    if not done:
        raise _not_held_anymore(delivery_id)
    decided = await session.get(Delivery, delivery_id, populate_existing=True)
    assert decided is not None
    return DecisionOut(
        id=delivery_id,
        decision=outcome,
        status=decided.status,
        note=note,
        decided_by=who,
        decided_at=decided.updated_at,
        price_baseline=baseline,
        queued=queued,
    )


async def decide_bulk(
    session: AsyncSession, rt: Runtime, outcome: Outcome, request: BulkDecisionRequest, who: str
) -> BulkDecisionOut:
    """Decide the held deliveries matching ids and/or filter, oldest first, capped per call."""
    where = held_filter(request.destination, request.flow, request.event_type, request.entity_key)
    stmt = where.apply(sa.select(Delivery))
    if request.ids:
        stmt = stmt.where(col(Delivery.id).in_(request.ids))
    # oldest first: approving keeps each entity's order
    stmt = stmt.order_by(col(Delivery.id)).limit(BULK_DECISION_CAP + 1)
    rows = list((await session.execute(stmt)).scalars())
    capped = len(rows) > BULK_DECISION_CAP
    rows = rows[:BULK_DECISION_CAP]
    queued: list[int] = []
    if request.dry_run:
        decided = [int(d.id or 0) for d in rows]
    elif outcome == "approved":
        decided, _ = await _approve(session, rt, rows, request.note, who)
        queued = decided
    else:
        decided, queued = await _reject(session, rt, rows, request.note, who)
    done = set(decided)
    return BulkDecisionOut(
        decision=outcome,
        decided=decided,
        count=len(decided),
        dry_run=request.dry_run,
        capped=capped,
        skipped=sorted({i for i in request.ids or () if i not in done}),
        queued=queued,
    )


async def reopen(
    session: AsyncSession, rt: Runtime, delivery_id: int, note: str | None, who: str
) -> DecisionOut:
    """Hold a rejected delivery again for a new decision; 404 unknown, 409 not rejected."""
    delivery = await session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    if delivery.status != DeliveryStatus.REJECTED:
        raise Conflict(
            f"delivery {delivery_id} is not rejected (status {delivery.status})",
            hint="only rejected deliveries are re-opened; held ones wait for a decision",
        )
    if await purged_events(session, [delivery.canonical_event_id]):
        raise payload_purged(delivery_id)
    await actions.replay(session, rt, [delivery_id])
    decided = await session.get(Delivery, delivery_id, populate_existing=True)
    assert decided is not None
    directives = {**(decided.directives or {}), "decision": _decision("reopened", note, who)}
    await session.execute(
        sa.update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(directives=directives)
    )
    return DecisionOut(
        id=delivery_id,
        decision="reopened",
        status=decided.status,
        note=note,
        decided_by=who,
        decided_at=decided.updated_at,
        price_baseline=None,
        queued=[],
    )
