"""Claiming a delivery: one UPDATE with a lease, then what the attempt needs (the event,
the mappings it asks for and the remote ids already known), in as few round trips as can be.

On Postgres the claim's statements run without a transaction around them (autocommit): the
UPDATE that takes the lease is atomic on its own and everything after it reads, so BEGIN and
COMMIT would be two round trips per delivery for nothing. The writes that may follow (a
maintenance window puts the delivery back, a stock push records what it will send) are each
a statement of their own, made while this worker holds the lease; a crash between two of
them leaves a leased delivery that the sweeper takes again when the lease ends, as a crash
right after the claim does. SQLite keeps one transaction around the claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.db import autocommit
from app.delivery.lookup import PREFETCHED, covers, needs_of, split_rows
from app.delivery.outbox import DELIVERIES, WAITING_FOR_DESTINATION, Outcome
from app.maintenance.store import IN_MAINTENANCE, has_stored_windows, windows_for
from app.maintenance.windows import Window, window_at
from app.models import (
    CanonicalEventRow,
    ConnectionState,
    Delivery,
    DeliveryStatus,
    EntityLink,
    Mapping,
    UTCDateTime,
    utcnow,
)
from app.observability import metrics
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.validation import describe_errors
from kernel.types import DeliveryContext, MappingNeed

log = structlog.get_logger("gateway.delivery")


def not_blocked() -> Any:
    """SQL: this delivery is not waiting behind an earlier unfinished delivery of its entity
    (or of the entity it depends on) to the same destination."""
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
    return sa.and_(
        ~blocked_by_earlier, sa.or_(col(Delivery.depends_on).is_(None), ~blocked_by_dependency)
    )


def _claim_statement(*, with_event: bool = False) -> Any:
    """UPDATE … SET in_flight WHERE claimable: built once, run with bound values.

    Claimable: pending and due, or in flight with an expired lease; not behind an earlier
    unfinished delivery of the same entity to the same destination; destination not paused.
    """
    now = sa.bindparam("now", type_=UTCDateTime())
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
            not_blocked(),
            ~paused,
        )
        .values(
            status=DeliveryStatus.IN_FLIGHT,
            lease_owner=sa.bindparam("owner"),
            lease_expires_at=sa.bindparam("lease_until", type_=UTCDateTime()),
            updated_at=now,
        )
    )
    windows = has_stored_windows().label("has_stored_windows")
    if not with_event:
        return stmt.returning(*DELIVERIES.columns, windows)
    # Postgres: UPDATE … FROM the event row, so the claim also brings the event (one round
    # trip less per delivery). SQLite cannot return columns of a FROM table.
    events = CanonicalEventRow.__table__  # type: ignore[attr-defined]
    # and the mappings and remote ids its stored ``lookup`` names (app/delivery/lookup.py)
    return stmt.where(events.c.id == DELIVERIES.c.canonical_event_id).returning(
        *DELIVERIES.columns,
        events.c.occurred_at.label("event_occurred_at"),
        events.c.payload.label("event_payload"),
        windows,
        PREFETCHED,
    )


_CLAIM = _claim_statement()
_CLAIM_WITH_EVENT = _claim_statement(with_event=True)
_DELIVERY_COLUMNS = [c.name for c in DELIVERIES.columns]


@dataclass
class Claimed:
    delivery: Delivery
    event: CanonicalEvent | None  # None: the stored payload is no longer valid (``unreadable``)
    context: DeliveryContext
    missing: list[Any]
    unreadable: str | None = None
    broken: Exception | None = None  # the connector failed while the claim prepared


async def claim(rt: Runtime, delivery_id: int, owner: str) -> Claimed | Outcome:
    now = utcnow()
    lease = timedelta(seconds=rt.settings.lease_seconds)
    async with autocommit(rt.engine, rt.sessions) as session:
        postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
        # on the session's connection, not the session: the statement names the ORM class's
        # columns, and the session would take it through the ORM's bulk UPDATE machinery
        # (synchronising objects this session never loaded), a tenth of a delivery's CPU
        connection = await session.connection()
        claimed = (
            await connection.execute(
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
        windows = await windows_for(
            session, rt, delivery.destination, stored=bool(returned["has_stored_windows"])
        )
        window = window_at(windows, now) if windows else None
        if window is not None:
            return await _wait_for_window(session, delivery, owner, window, now)
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
        try:
            event = CanonicalEvent.model_validate(
                {
                    "type": delivery.event_type,
                    "entity_key": delivery.entity_key,
                    "occurred_at": occurred_at,
                    "payload": delivery.payload if delivery.payload is not None else event_payload,
                }
            )
        except ValidationError as exc:
            # stored before today's rules (or by hand): it can never go out as it is
            return Claimed(delivery, None, DeliveryContext(), [], unreadable=describe_errors(exc))
        connector = rt.connector(delivery.destination)
        try:
            needs, optional = needs_of(connector, event, delivery.directives)
        except Exception as exc:  # a connector bug: retried like one, never a stuck claim
            log.exception("connector failed to say which mappings it needs")
            return Claimed(delivery, event, DeliveryContext(), [], broken=exc)
        # handed over when mapped, never required: the kinds the connector uses when they
        # exist, and what it found missing on an earlier attempt (the operator may have
        # fixed that in the remote system instead)
        optional += [MappingNeed(n["kind"], n["key"]) for n in delivery.needs or []]
        wanted, related = list(dict.fromkeys(needs + optional)), event.related_keys()
        if postgres and covers(delivery.lookup, wanted, related):
            found, links = split_rows(returned["prefetched"], wanted, related)
        else:
            found, links = await _mappings_and_links(session, delivery.destination, wanted, related)
        missing = [n for n in needs if n.key not in found.get(n.kind, {})]
        from app.flows import hooks  # the flows build on the engine, not the other way

        missing = await hooks.fill_variant_skus(session, rt, delivery.destination, found, missing)
        ctx = DeliveryContext(
            links=links, mappings=found, directives=dict(delivery.directives or {})
        )
        event = await hooks.before_attempt(session, rt, delivery, event, ctx)
        return Claimed(delivery, event, ctx, missing)


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
    session: AsyncSession, destination: str, needs: list[MappingNeed], related: list[str]
) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], str]]:
    rows = await session.execute(
        _LOOKUP,
        {
            "destination": destination,
            "kinds": sorted({n.kind for n in needs}),
            "keys": sorted({n.key for n in needs}),
            "related": related,
        },
    )
    return split_rows([list(row) for row in rows], needs, related)


async def _wait_for_window(
    session: AsyncSession, delivery: Delivery, owner: str, window: Window, now: datetime
) -> Outcome:
    """The destination is in a maintenance window: back to pending until it ends, right
    after the claim (in its transaction on SQLite; on Postgres it shows in flight, leased to
    this worker, for that moment), without an attempt, a call or a breaker failure. The
    sweeper queues it when it is due; the window's time does not count against the retry
    window of a delivery that was failing before."""
    failing_since = delivery.failing_since
    if failing_since is not None:
        failing_since += window.end - now
    reason = f" ({window.reason})" if window.reason else ""
    await session.execute(
        sa.update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery.id, DELIVERIES.c.lease_owner == owner)
        .values(
            status=DeliveryStatus.PENDING,
            next_attempt_at=window.end,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
            failing_since=failing_since,
            last_error_class=IN_MAINTENANCE,
            last_error=f"{delivery.destination} is in a maintenance window{reason} until "
            f"{window.end.isoformat()}; the delivery goes out then, no attempt used",
        )
    )
    metrics.DELIVERY_OUTCOMES.labels(delivery.destination, "maintenance").inc()
    log.info("delivery waits: destination in maintenance", until=window.end.isoformat())
    # nothing queued: the sweeper takes it once it is due (or a deleted window releases it)
    return Outcome("skipped", DeliveryStatus.PENDING)


def _why_not_claimed(delivery: Delivery, now: datetime) -> Outcome:
    if delivery.status == DeliveryStatus.PENDING and delivery.last_error_class in (
        IN_MAINTENANCE,
        WAITING_FOR_DESTINATION,
    ):
        # it is woken by an enqueue: the end (or deletion) of its maintenance window, the
        # breaker's closing, a trial; the sweeper takes it when it is due. A job held until
        # then (the same job id) would swallow those wake-ups: a stale wake-up that finds it
        # waiting again must not park a job for BREAKER_WAIT_SECONDS
        return Outcome("skipped", delivery.status)
    if delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at > now:
        return Outcome("retry", delivery.status, delivery.next_attempt_at)
    if delivery.status == DeliveryStatus.IN_FLIGHT and delivery.lease_expires_at:
        # someone else holds the lease; check again when it would expire
        return Outcome("retry", delivery.status, delivery.lease_expires_at)
    # terminal, paused, or waiting behind an earlier delivery of the same entity:
    # whoever unblocks it (finish of the earlier one, resume, replay) enqueues it again.
    return Outcome("skipped", delivery.status)
