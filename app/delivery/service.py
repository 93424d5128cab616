"""The delivery engine: claim a delivery with a lease, call the connector, record the outcome.

``process_delivery`` is a plain async function; the arq task and the in-process worker are
thin wrappers around it. It never holds a database connection while the remote system is
being called, and it never lets one entity's deliveries to one destination overtake each
other (create before update before cancel).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pybreaker
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.canonical.events import CanonicalEvent
from app.db import after_commit, transaction
from app.dbutil import insert_for, rowcount
from app.delivery.capture import capture_exchanges
from app.delivery.policy import backoff_seconds
from app.models import (
    CanonicalEventRow,
    ConnectionState,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EntityLink,
    Finding,
    Mapping,
    UTCDateTime,
    utcnow,
)
from app.observability import metrics
from app.runtime import Runtime
from connectors.base import (
    Connector,
    ConnectorError,
    DeliveryContext,
    DeliveryResult,
    HoldError,
    MappingNeed,
    NeedsMappingError,
    PermanentError,
    RateLimitedError,
    TransientError,
)

log = structlog.get_logger("gateway.delivery")

# Core table for the hot-path statements: they skip the ORM's per-execution compile state.
DELIVERIES: sa.Table = Delivery.__table__  # type: ignore[attr-defined]

OutcomeKind = Literal["done", "retry", "skipped"]


@dataclass(frozen=True)
class Outcome:
    """What the queue does next: nothing (done / skipped) or run again at ``retry_at``."""

    kind: OutcomeKind
    status: str
    retry_at: datetime | None = None


# --- queueing --------------------------------------------------------------------------------


def enqueue_after_commit(
    session: AsyncSession, rt: Runtime, deliveries: Sequence[int | tuple[int, datetime]]
) -> None:
    """Queue the deliveries (ids, or (id, due time)) once their transaction is durable."""
    if not deliveries:
        return
    due = [d if isinstance(d, tuple) else (d, None) for d in deliveries]
    delivery_ids = [d for d, _ in due]
    now = utcnow()

    async def _enqueue() -> None:
        try:
            queue = rt.require_queue()
            for delivery_id, at in due:
                await queue.enqueue(delivery_id, at=at if at is not None and at > now else None)
        except Exception:
            # The rows are committed; the sweeper queues them once the queue is back.
            log.warning(
                "enqueue failed; the sweeper will queue these deliveries",
                delivery_ids=delivery_ids,
                exc_info=True,
            )

    after_commit(session, _enqueue)


# --- claiming -------------------------------------------------------------------------------


def _claim_statement(*, with_event: bool = False) -> Any:
    """UPDATE … SET in_flight WHERE claimable: built once, run with bound values.

    Claimable: pending and due, or in flight with an expired lease; not behind an earlier
    unfinished delivery of the same entity to the same destination; destination not paused.
    """
    now = sa.bindparam("now", type_=UTCDateTime())
    earlier = aliased(Delivery)
    blocked_by_earlier = (
        sa.select(sa.literal(1))
        .select_from(earlier)
        .where(
            col(earlier.destination) == col(Delivery.destination),
            col(earlier.ordering_key) == col(Delivery.ordering_key),
            col(earlier.id) < col(Delivery.id),
            col(earlier.status).in_(DeliveryStatus.BLOCKING),
        )
        .exists()
    )
    # e.g. an order waits for its customer, a price for its product, at the same destination
    dependency = aliased(Delivery)
    blocked_by_dependency = (
        sa.select(sa.literal(1))
        .select_from(dependency)
        .where(
            col(dependency.destination) == col(Delivery.destination),
            col(dependency.ordering_key) == col(Delivery.depends_on),
            col(dependency.id) < col(Delivery.id),
            col(dependency.status).in_(DeliveryStatus.BLOCKING),
        )
        .exists()
    )
    paused = (
        sa.select(col(ConnectionState.connection_id))
        .where(
            col(ConnectionState.connection_id) == col(Delivery.destination),
            col(ConnectionState.paused),
        )
        .exists()
    )
    claimable = sa.or_(
        sa.and_(
            col(Delivery.status) == DeliveryStatus.PENDING, col(Delivery.next_attempt_at) <= now
        ),
        sa.and_(
            col(Delivery.status) == DeliveryStatus.IN_FLIGHT, col(Delivery.lease_expires_at) < now
        ),
    )
    stmt = (
        sa.update(DELIVERIES)
        .where(
            col(Delivery.id) == sa.bindparam("delivery_id"),
            claimable,
            ~blocked_by_earlier,
            sa.or_(col(Delivery.depends_on).is_(None), ~blocked_by_dependency),
            ~paused,
        )
        .values(
            status=DeliveryStatus.IN_FLIGHT,
            lease_owner=sa.bindparam("owner"),
            lease_expires_at=sa.bindparam("lease_until", type_=UTCDateTime()),
            updated_at=now,
        )
    )
    if not with_event:
        return stmt.returning(*DELIVERIES.columns)
    # Postgres: UPDATE … FROM the event row, so the claim also brings the event (one round
    # trip less per delivery). SQLite cannot return columns of a FROM table.
    events = CanonicalEventRow.__table__  # type: ignore[attr-defined]
    return stmt.where(events.c.id == DELIVERIES.c.canonical_event_id).returning(
        *DELIVERIES.columns,
        events.c.occurred_at.label("event_occurred_at"),
        events.c.payload.label("event_payload"),
    )


_CLAIM = _claim_statement()
_CLAIM_WITH_EVENT = _claim_statement(with_event=True)
_DELIVERY_COLUMNS = [c.name for c in DELIVERIES.columns]


@dataclass
class _Claimed:
    delivery: Delivery
    event: CanonicalEvent
    context: DeliveryContext
    missing: list[Any]


async def _claim(rt: Runtime, delivery_id: int, owner: str) -> _Claimed | Outcome:
    now = utcnow()
    lease = timedelta(seconds=rt.settings.lease_seconds)
    async with transaction(rt.sessions) as session:
        postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
        claimed = (
            await session.execute(
                _CLAIM_WITH_EVENT if postgres else _CLAIM,
                {
                    "delivery_id": delivery_id,
                    "owner": owner,
                    "now": now,
                    "lease_until": now + lease,
                },
            )
        ).first()
        if claimed is None:
            unclaimed = await session.get(Delivery, delivery_id)
            return _why_not_claimed(unclaimed, now) if unclaimed else Outcome("skipped", "missing")
        returned = claimed._mapping
        delivery = Delivery(**{name: returned[name] for name in _DELIVERY_COLUMNS})
        if postgres:
            occurred_at, event_payload = returned["event_occurred_at"], returned["event_payload"]
        else:
            occurred_at, event_payload = (
                await session.execute(
                    sa.select(
                        col(CanonicalEventRow.occurred_at), col(CanonicalEventRow.payload)
                    ).where(col(CanonicalEventRow.id) == delivery.canonical_event_id)
                )
            ).one()
        # the route's rules may have made their own payload (and type) of the event
        event = CanonicalEvent.model_validate(
            {
                "type": delivery.event_type,
                "entity_key": delivery.entity_key,
                "occurred_at": occurred_at,
                "payload": delivery.payload if delivery.payload is not None else event_payload,
            }
        )
        connector = rt.connector(delivery.destination)
        needs = connector.required_mappings(event) if connector else []
        needs = list(dict.fromkeys(needs + rule_needs(delivery.directives)))
        found, links = await _mappings_and_links(session, delivery.destination, needs, event)
        missing = [n for n in needs if n.key not in found.get(n.kind, {})]
        from app.flows import hooks  # the flows build on the engine, not the other way

        missing = await hooks.fill_variant_skus(session, rt, delivery.destination, found, missing)
        ctx = DeliveryContext(
            links=links, mappings=found, directives=dict(delivery.directives or {})
        )
        event = await hooks.before_attempt(session, rt, delivery, event, ctx)
        return _Claimed(delivery, event, ctx, missing)


MAPPINGS: sa.Table = Mapping.__table__  # type: ignore[attr-defined]
LINKS: sa.Table = EntityLink.__table__  # type: ignore[attr-defined]
# The mappings a delivery needs and the remote ids it may use, in one round trip.
_LOOKUP = sa.union_all(
    sa.select(
        sa.literal("m").label("src"),
        MAPPINGS.c.kind.label("a"),
        MAPPINGS.c.our_key.label("b"),
        MAPPINGS.c.their_key.label("c"),
    ).where(
        MAPPINGS.c.connection_id == sa.bindparam("destination"),
        MAPPINGS.c.kind.in_(sa.bindparam("kinds", expanding=True)),
        MAPPINGS.c.our_key.in_(sa.bindparam("keys", expanding=True)),
    ),
    sa.select(sa.literal("l"), LINKS.c.entity_type, LINKS.c.our_key, LINKS.c.remote_id).where(
        LINKS.c.connection_id == sa.bindparam("destination"),
        LINKS.c.our_key.in_(sa.bindparam("related", expanding=True)),
    ),
)


async def _mappings_and_links(
    session: AsyncSession, destination: str, needs: list[MappingNeed], event: CanonicalEvent
) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], str]]:
    rows = await session.execute(
        _LOOKUP,
        {
            "destination": destination,
            "kinds": sorted({n.kind for n in needs}),
            "keys": sorted({n.key for n in needs}),
            "related": event.related_keys(),
        },
    )
    found: dict[str, dict[str, str]] = {}
    links: dict[tuple[str, str], str] = {}
    wanted = set(needs)
    for src, a, b, c in rows:
        if src == "l":
            links[(a, b)] = c
        elif MappingNeed(a, b) in wanted:
            found.setdefault(a, {})[b] = c
    return found, links


def rule_needs(directives: dict[str, Any] | None) -> list[MappingNeed]:
    """Mappings the flow rules require (e.g. payment method), resolved like a connector's."""
    wanted = (directives or {}).get("required_mappings") or {}
    return [MappingNeed(kind, key) for kind, keys in wanted.items() for key in keys]


def _why_not_claimed(delivery: Delivery, now: datetime) -> Outcome:
    if delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at > now:
        return Outcome("retry", delivery.status, delivery.next_attempt_at)
    if delivery.status == DeliveryStatus.IN_FLIGHT and delivery.lease_expires_at:
        # someone else holds the lease; check again when it would expire
        return Outcome("retry", delivery.status, delivery.lease_expires_at)
    # terminal, paused, or waiting behind an earlier delivery of the same entity:
    # whoever unblocks it (finish of the earlier one, resume, replay) enqueues it again.
    return Outcome("skipped", delivery.status)


# --- processing -----------------------------------------------------------------------------


async def process_delivery(rt: Runtime, delivery_id: int) -> Outcome:
    """Attempt one delivery once; returns what the queue should do next."""
    owner = f"{rt.worker_id}:{time.monotonic_ns()}"
    with structlog.contextvars.bound_contextvars(delivery_id=delivery_id):
        claimed = await _claim(rt, delivery_id, owner)
        if isinstance(claimed, Outcome):
            return claimed
        delivery = claimed.delivery
        structlog.contextvars.bind_contextvars(
            destination=delivery.destination,
            entity_key=delivery.entity_key,
            canonical_event_id=delivery.canonical_event_id,
        )
        if claimed.missing:
            return await _finish(
                rt, delivery, owner, NeedsMappingError(claimed.missing), None, [], 0.0, claimed
            )

        connector = rt.connector(delivery.destination)
        if connector is None:
            unknown = PermanentError(
                f"destination connection {delivery.destination!r} is not in the config; "
                "add it back or replay the delivery to another route"
            )
            return await _finish(rt, delivery, owner, unknown, None, [], 0.0, claimed)

        breaker = rt.breakers.get(delivery.destination)
        queued_at = time.monotonic()
        async with rt.concurrency_limit(delivery.destination):
            # A long wait for a slot could let the lease run out; renew it before calling.
            if time.monotonic() - queued_at > rt.settings.lease_seconds / 2 and not (
                await _renew_lease(rt, delivery, owner)
            ):
                log.warning("lease lost while waiting for a slot; another worker has it")
                return Outcome("skipped", "lease_lost")
            return await _attempt(rt, delivery, owner, claimed, connector, breaker)


async def _renew_lease(rt: Runtime, delivery: Delivery, owner: str) -> bool:
    until = utcnow() + timedelta(seconds=rt.settings.lease_seconds)
    async with transaction(rt.sessions) as session:
        result = await session.execute(_owned(delivery.id, owner).values(lease_expires_at=until))
        return rowcount(result) == 1


async def _attempt(
    rt: Runtime,
    delivery: Delivery,
    owner: str,
    claimed: _Claimed,
    connector: Connector,
    breaker: pybreaker.CircuitBreaker,
) -> Outcome:
    started = time.perf_counter()
    result: DeliveryResult | None = None
    error: BaseException | None = None
    with capture_exchanges() as exchanges:
        try:
            with breaker.calling():
                result = await connector.deliver(claimed.event, claimed.context)
        except pybreaker.CircuitBreakerError:
            return await _defer_for_breaker(rt, delivery, owner)
        except ConnectorError as exc:
            error = exc
        except Exception as exc:  # a connector bug must not lose the delivery
            log.exception("connector raised an unexpected error")
            error = exc
    duration = time.perf_counter() - started
    metrics.ATTEMPT_SECONDS.labels(delivery.destination).observe(duration)
    metrics.BREAKER_STATE.labels(delivery.destination).set(
        metrics.BREAKER_STATE_VALUES.get(rt.breakers.local_state(delivery.destination), 0)
    )
    return await _finish(rt, delivery, owner, error, result, exchanges, duration, claimed)


async def _defer_for_breaker(rt: Runtime, delivery: Delivery, owner: str) -> Outcome:
    """The destination is known to be down: wait for the breaker, without using an attempt."""
    retry_at = max(rt.breakers.reopens_at(delivery.destination), utcnow()) + timedelta(
        milliseconds=50
    )
    metrics.DELIVERY_OUTCOMES.labels(delivery.destination, "breaker_open").inc()
    metrics.BREAKER_STATE.labels(delivery.destination).set(metrics.BREAKER_STATE_VALUES["open"])
    async with transaction(rt.sessions) as session:
        await session.execute(
            _owned(delivery.id, owner).values(
                status=DeliveryStatus.PENDING,
                next_attempt_at=retry_at,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=utcnow(),
                last_error_class="breaker_open",
                last_error=f"circuit breaker for {delivery.destination} is open; waiting",
            )
        )
    log.info("delivery deferred: breaker open", retry_at=retry_at.isoformat())
    return Outcome("retry", DeliveryStatus.PENDING, retry_at)


def _owned(delivery_id: int | None, owner: str) -> Any:
    """Update only if we still hold the lease (a slow attempt may have lost it)."""
    return sa.update(DELIVERIES).where(
        DELIVERIES.c.id == delivery_id,
        DELIVERIES.c.lease_owner == owner,
        DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT,
    )


def _classify(error: BaseException | None) -> tuple[str, bool]:
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


async def _finish(
    rt: Runtime,
    delivery: Delivery,
    owner: str,
    error: BaseException | None,
    result: DeliveryResult | None,
    exchanges: list[dict[str, Any]],
    duration: float,
    claimed: _Claimed,
) -> Outcome:
    now = utcnow()
    outcome_name, counts = _classify(error)
    attempts = delivery.attempts + (1 if counts else 0)
    policy = rt.config.policy_for(delivery.destination)
    values: dict[str, Any] = {
        "attempts": attempts,
        "updated_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    message = None if error is None else (str(error) or type(error).__name__)
    outcome: Outcome

    if error is None:
        values |= {
            "status": DeliveryStatus.DELIVERED,
            "delivered_at": now,
            "last_error": None,
            "last_error_class": None,
            "parked_reason": None,
            "needs": None,
        }
        outcome = Outcome("done", DeliveryStatus.DELIVERED)
    elif isinstance(error, NeedsMappingError):
        values |= {
            "status": DeliveryStatus.PARKED,
            "parked_reason": message,
            "needs": [{"kind": m.kind, "key": m.key} for m in error.missing],
            "last_error": message,
            "last_error_class": outcome_name,
        }
        outcome = Outcome("done", DeliveryStatus.PARKED)
    elif isinstance(error, HoldError):
        values |= {
            "status": DeliveryStatus.HELD,
            "held_reason": message,
            "last_error": message,
            "last_error_class": outcome_name,
        }
        outcome = Outcome("done", DeliveryStatus.HELD)
    elif isinstance(error, RateLimitedError):
        retry_at = now + timedelta(seconds=max(error.retry_after, 0.05))
        values |= {
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": retry_at,
            "last_error": message,
            "last_error_class": outcome_name,
        }
        outcome = Outcome("retry", DeliveryStatus.PENDING, retry_at)
    elif outcome_name != "permanent" and attempts < policy.max_attempts:
        retry_at = now + timedelta(seconds=backoff_seconds(attempts, policy))
        values |= {
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": retry_at,
            "last_error": message,
            "last_error_class": outcome_name,
        }
        outcome = Outcome("retry", DeliveryStatus.PENDING, retry_at)
    else:
        if outcome_name != "permanent":
            message = f"gave up after {attempts} attempts: {message}"
        values |= {
            "status": DeliveryStatus.DEAD,
            "last_error": message,
            "last_error_class": outcome_name,
        }
        outcome = Outcome("done", DeliveryStatus.DEAD)

    async with transaction(rt.sessions) as session:
        updated = await session.execute(_owned(delivery.id, owner).values(**values))
        if not rowcount(updated):
            log.warning("lease lost before the outcome was recorded; another worker owns it now")
            return Outcome("skipped", "lease_lost")
        await session.execute(
            sa.insert(DeliveryAttempt.__table__).values(  # type: ignore[attr-defined]
                delivery_id=delivery.id,
                number=attempts,
                started_at=now - timedelta(seconds=duration),
                duration_ms=round(duration * 1000, 3),
                outcome=outcome_name,
                error_class=None if error is None else type(error).__name__,
                error_message=message,
                exchanges=exchanges,
            )
        )
        if result is not None and result.links:
            await _remember_links(session, delivery.destination, result)
        if result is not None and result.findings:
            await _record_findings(session, delivery, result)
        if rt.health_due(delivery.destination, ok=error is None):
            await _record_connection_health(session, delivery.destination, error, message, now)
        if outcome.status == DeliveryStatus.DELIVERED:
            from app.flows import hooks

            await hooks.after_delivered(
                session, rt, delivery, claimed.event, claimed.context.directives
            )
        if outcome.status in (DeliveryStatus.DELIVERED, DeliveryStatus.DEAD):
            await _enqueue_successor(session, rt, delivery)

    metrics.DELIVERY_OUTCOMES.labels(delivery.destination, outcome_name).inc()
    if outcome.status == DeliveryStatus.DEAD:
        metrics.DELIVERY_OUTCOMES.labels(delivery.destination, "dead").inc()
    if outcome.status == DeliveryStatus.DELIVERED:
        metrics.END_TO_END_SECONDS.labels(delivery.flow, delivery.destination).observe(
            (now - delivery.accepted_at).total_seconds()
        )
    log_method = log.info if error is None or outcome.kind == "retry" else log.warning
    log_method(
        "delivery attempt finished",
        outcome=outcome_name,
        status=outcome.status,
        attempts=attempts,
        duration_ms=round(duration * 1000, 1),
        error=message,
        retry_at=outcome.retry_at.isoformat() if outcome.retry_at else None,
        summary=result.summary if result else None,
    )
    return outcome


async def _remember_links(
    session: AsyncSession, connection_id: str, result: DeliveryResult
) -> None:
    now = utcnow()
    stmt = insert_for(session, EntityLink).values(
        [
            {
                "connection_id": connection_id,
                "entity_type": link.entity_type,
                "our_key": link.our_key,
                "remote_id": link.remote_id,
                "updated_at": now,
            }
            for link in result.links
        ]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["connection_id", "entity_type", "our_key"],
        set_={"remote_id": stmt.excluded.remote_id, "updated_at": now},
    )
    await session.execute(stmt)


async def _record_connection_health(
    session: AsyncSession,
    connection_id: str,
    error: BaseException | None,
    message: str | None,
    now: datetime,
) -> None:
    if isinstance(error, NeedsMappingError):
        return  # a data gap, not the connection's health
    values: dict[str, Any] = (
        {"last_success_at": now} if error is None else {"last_error_at": now, "last_error": message}
    )
    stmt = insert_for(session, ConnectionState).values(connection_id=connection_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["connection_id"], set_=values))


async def _enqueue_successor(session: AsyncSession, rt: Runtime, delivery: Delivery) -> None:
    """Queue what waited for this one: the next of the same entity, and its dependents."""
    ids = await waiting_behind(session, delivery)
    if ids:
        enqueue_after_commit(session, rt, ids)


async def waiting_behind(session: AsyncSession, delivery: Delivery) -> list[int]:
    """Pending deliveries that waited for ``delivery`` (same entity, or depending on it):
    the first of each ordering key, so the order within an entity is kept."""
    waiting = sa.or_(
        col(Delivery.ordering_key) == delivery.ordering_key,
        col(Delivery.depends_on) == delivery.ordering_key,
    )
    next_ids = (
        await session.execute(
            sa.select(sa.func.min(col(Delivery.id)))
            .where(
                col(Delivery.destination) == delivery.destination,
                waiting,
                col(Delivery.id) > delivery.id,
                col(Delivery.status) == DeliveryStatus.PENDING,
            )
            .group_by(col(Delivery.ordering_key))
        )
    ).scalars()
    return [int(i) for i in next_ids if i is not None]


async def _record_findings(
    session: AsyncSession, delivery: Delivery, result: DeliveryResult
) -> None:
    now = utcnow()
    await session.execute(
        sa.insert(Finding.__table__),  # type: ignore[attr-defined]
        [
            {
                "kind": f.kind,
                "connection_id": delivery.destination,
                "entity_key": delivery.entity_key,
                "delivery_id": delivery.id,
                "message": f.message,
                "data": f.data,
                "created_at": now,
            }
            for f in result.findings
        ],
    )
    for f in result.findings:
        metrics.FINDINGS.labels(f.kind).inc()
        log.warning("finding", kind=f.kind, message=f.message)
