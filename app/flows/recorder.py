"""Recording events: canonical rows, planned deliveries, findings — one transaction.

Every producer of events goes through ``record_events``: the webhook endpoint, the pollers
and the scheduled jobs. The caller owns the transaction; deliveries are queued only after it
commits (``enqueue_after_commit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.delivery.lookup import lookup_for
from app.delivery.outbox import DELIVERIES, enqueue_after_commit
from app.erasure.refs import note_event
from app.flows.plan import PlanContext, Planned
from app.flows.planning import plan_event
from app.flows.rules import RulesConfig, effective_rules
from app.flows.state import note_version
from app.ingest.dedupe import fresh_events
from app.models import CanonicalEventRow, DeliveryStatus, Finding, utcnow
from app.observability import metrics
from app.runtime import Runtime
from kernel.canonical.events import EVENT_TYPES, CanonicalEvent

log = structlog.get_logger("gateway.flows")

EVENTS: sa.Table = CanonicalEventRow.__table__  # type: ignore[attr-defined]
FINDINGS: sa.Table = Finding.__table__  # type: ignore[attr-defined]
# Built once, executed with bound values, so SQLAlchemy compiles each only once.
_INSERT_EVENT = sa.insert(EVENTS).returning(EVENTS.c.id)
_INSERT_DELIVERY = sa.insert(DELIVERIES).returning(DELIVERIES.c.id)


@dataclass
class Recorded:
    event_ids: list[int] = field(default_factory=list)
    delivery_ids: list[int] = field(default_factory=list)
    held: int = 0


async def record_events(
    session: AsyncSession,
    rt: Runtime,
    source: str,
    events: list[CanonicalEvent],
    *,
    inbound_event_id: int | None = None,
    rules: RulesConfig | None = None,
) -> Recorded:
    """Store events and the deliveries their routes and rules make; queue after commit."""
    recorded = Recorded()
    if not events:
        return recorded
    received_at = utcnow()
    ctx = PlanContext(
        session=session,
        config=rt.config,
        rules=rules or await _rules(session, rt),
        source=source,
        now=received_at,
        sides=rt.sides,
    )
    due: list[tuple[int, datetime]] = []
    for event in events:
        event_id = await _insert_event(session, source, event, inbound_event_id, received_at)
        note_version(session, event)
        recorded.event_ids.append(event_id)
        # whom the event is about (hashes), so an erase request finds it by index later
        await note_event(session, event_id, source, event, ctx.rules.customers.default_country_code)
        planned = routed(rt, event, await plan_event(ctx, event))
        for plan in planned:
            if plan.supersedes:
                await _supersede(session, plan)
            delivery_id = await _insert_delivery(session, event_id, source, plan, received_at)
            recorded.delivery_ids.append(delivery_id)
            if plan.status == DeliveryStatus.PENDING:
                due.append((delivery_id, received_at + timedelta(seconds=plan.delay_seconds)))
            elif plan.status == DeliveryStatus.HELD:
                recorded.held += 1
        metrics.EVENTS_RECEIVED.labels(source, event.type).inc()
        if not planned:
            log.info("no delivery for event; stored only", event_type=event.type, flow=event.flow)
    await _insert_findings(session, ctx)
    enqueue_after_commit(session, rt, due)
    return recorded


def routed(rt: Runtime, event: CanonicalEvent, plans: list[Planned]) -> list[Planned]:
    """The plans whose destination takes them, each with what its claim will read."""
    taken = [plan for plan in plans if destination_takes(rt, plan)]
    for plan in taken:
        # the event as it goes out: a rule-made payload is read (and looked up) at the claim
        if plan.payload is None and plan.event_type == event.type and plan.status in SENDABLE:
            plan.lookup = lookup_for(rt.connector(plan.destination), event, plan.directives)
    return taken


# statuses of a delivery that will be claimed (a held one once it is approved)
SENDABLE = frozenset({DeliveryStatus.PENDING, DeliveryStatus.HELD})


def destination_takes(rt: Runtime, plan: Planned) -> bool:
    """Whether the destination takes this event type (``Connector.outbound_events``): a
    delivery it refuses could only die, so none is made (the event stays stored)."""
    connector = rt.connector(plan.destination)
    takes = None if connector is None else connector.outbound_events
    if takes is None or plan.event_type in takes:
        return True
    log.info(
        "destination does not take this event type; no delivery",
        destination=plan.destination,
        event_type=plan.event_type,
        entity_key=plan.entity_key,
    )
    return False


async def record_planned(
    session: AsyncSession, rt: Runtime, ctx: PlanContext, planned: list[Planned]
) -> Recorded:
    """Deliveries the gateway itself decided on (e.g. reconciliation corrections).

    Each gets a canonical event of its own, with the payload it carries, so the trace and
    the event list show why it was sent.
    """
    recorded = Recorded()
    due: list[tuple[int, datetime]] = []
    for plan in planned:
        assert plan.payload is not None, "a gateway-made delivery carries its payload"
        values = {
            "inbound_event_id": None,
            "source": ctx.source,
            "event_type": plan.event_type,
            "entity_type": EVENT_TYPES[plan.event_type].entity,
            "entity_key": plan.entity_key,
            "schema_version": int(plan.payload.get("schema_version", 1)),
            "occurred_at": ctx.now,
            "created_at": ctx.now,
            "currency": None,
            "total_amount": None,
            "payload": plan.payload,
        }
        event_id = int(await session.scalar(_INSERT_EVENT, values))
        recorded.event_ids.append(event_id)
        if plan.supersedes:
            await _supersede(session, plan)
        delivery_id = await _insert_delivery(session, event_id, ctx.source, plan, ctx.now)
        recorded.delivery_ids.append(delivery_id)
        if plan.status == DeliveryStatus.PENDING:
            due.append((delivery_id, ctx.now + timedelta(seconds=plan.delay_seconds)))
    await _insert_findings(session, ctx)
    enqueue_after_commit(session, rt, due)
    return recorded


async def _rules(session: AsyncSession, rt: Runtime) -> RulesConfig:
    return await effective_rules(session, rt.config.rules)


async def _insert_event(
    session: AsyncSession,
    source: str,
    event: CanonicalEvent,
    inbound_event_id: int | None,
    received_at: datetime,
) -> int:
    values = event_values(source, event, inbound_event_id, received_at)
    # Core insert with RETURNING: the ORM unit of work costs more than the SQL here.
    return int(await session.scalar(_INSERT_EVENT, values))


def event_values(
    source: str, event: CanonicalEvent, inbound_event_id: int | None, received_at: datetime
) -> dict[str, Any]:
    """The ``canonical_events`` row of one event (its id aside)."""
    payload = event.payload
    total = getattr(getattr(payload, "totals", None), "total", None)
    amount = getattr(payload, "amount", None)
    money = total if total is not None else amount
    return {
        "inbound_event_id": inbound_event_id,
        "source": source,
        "event_type": event.type,
        "entity_type": event.entity_type,
        "entity_key": event.entity_key,
        "schema_version": payload.schema_version,
        "occurred_at": event.occurred_at,
        "created_at": received_at,
        "currency": getattr(money, "currency", None) or getattr(payload, "currency", None),
        "total_amount": Decimal(money.amount) if money is not None else None,
        "payload": event.payload_json(),
    }


async def _supersede(session: AsyncSession, plan: Planned) -> None:
    """A newer level replaces every older one that has not gone out (in flight ones finish).

    A held value only replaces older held ones: until someone approves it, the older
    accepted value is still the right one to send.
    """
    replaced = (
        [DeliveryStatus.PENDING, DeliveryStatus.HELD]
        if plan.status == DeliveryStatus.PENDING
        else [DeliveryStatus.HELD]
    )
    await session.execute(
        sa.update(DELIVERIES)
        .where(
            DELIVERIES.c.destination == plan.destination,
            DELIVERIES.c.ordering_key == plan.entity_key,
            DELIVERIES.c.status.in_(replaced),
        )
        .values(
            status=DeliveryStatus.SUPERSEDED,
            updated_at=utcnow(),
            last_error="superseded by a newer value",
            last_error_class="superseded",
        )
    )


async def _insert_delivery(
    session: AsyncSession, event_id: int, source: str, plan: Planned, accepted_at: datetime
) -> int:
    values = delivery_values(event_id, source, plan, accepted_at)
    return int(await session.scalar(_INSERT_DELIVERY, values))


def delivery_values(
    event_id: int | None, source: str, plan: Planned, accepted_at: datetime
) -> dict[str, Any]:
    """The outbox row of one planned delivery (its id aside)."""
    now = utcnow()
    return {
        "canonical_event_id": event_id,
        "flow": plan.flow,
        "event_type": plan.event_type,
        "source": source,
        "destination": plan.destination,
        "entity_key": plan.entity_key,
        "ordering_key": plan.entity_key,
        "status": plan.status,
        "attempts": 0,
        "next_attempt_at": now + timedelta(seconds=plan.delay_seconds),
        "accepted_at": accepted_at,
        "created_at": now,
        "updated_at": now,
        "payload": plan.payload,
        "directives": plan.directives,
        "lookup": plan.lookup,
        "depends_on": plan.depends_on,
        "held_reason": plan.held_reason,
        "priority": plan.priority,
        "last_error": plan.dead_reason or plan.held_reason or plan.superseded_reason,
        "last_error_class": "rule"
        if plan.dead_reason
        else ("held" if plan.held_reason else ("superseded" if plan.superseded_reason else None)),
    }


async def _insert_findings(session: AsyncSession, ctx: PlanContext) -> None:
    if not ctx.findings:
        return
    now = utcnow()
    await session.execute(
        sa.insert(FINDINGS),
        [
            {
                "kind": finding.kind,
                "connection_id": connection_id,
                "entity_key": entity_key,
                "delivery_id": None,
                "message": finding.message,
                "data": finding.data,
                "created_at": now,
            }
            for finding, connection_id, entity_key in ctx.findings
        ],
    )
    for finding, _, entity_key in ctx.findings:
        metrics.FINDINGS.labels(finding.kind).inc()
        log.warning("finding", kind=finding.kind, entity_key=entity_key, message=finding.message)


async def not_seen(session: AsyncSession, events: list[CanonicalEvent]) -> list[CanonicalEvent]:
    """Drop events that change nothing (``app.ingest.dedupe``). Polls re-read the edge of
    their window, and a change may already have come by webhook."""
    return await fresh_events(session, events)
