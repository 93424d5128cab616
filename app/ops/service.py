"""Operator queries and actions behind /api/v1.

The endpoints stay thin; everything that touches storage lives here so the CLI, the
dashboard or tests can reuse it. Writes go through ``app.delivery.actions`` (one place
decides what a replay or a release means) and run in the caller's transaction, with
enqueueing deferred until it commits.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, cast

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.api.params import utc_in_range
from app.api.pii import exchanges_without_signatures, without_signatures
from app.config import ConnectionConfig
from app.dbutil import insert_for
from app.delivery import actions
from app.delivery.breakers import BreakerView
from app.delivery.sweeper import shown_state
from app.errors import Conflict, NotFound, Unprocessable
from app.models import (
    CanonicalEventRow,
    ConnectionState,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EntityLink,
    InboundEvent,
    utcnow,
)
from app.ops.pagination import Page, decode_cursor, page_of
from app.ops.schemas import (
    BULK_REPLAY_CAP,
    AttemptOut,
    BulkReplayOut,
    BulkReplayRequest,
    ConnectionOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryRef,
    EventDetail,
    EventOut,
    InboundDetail,
    InboundOut,
    QueueDepth,
    ReplayItem,
    ResumeOut,
    TraceDelivery,
    TraceEvent,
    TraceInbound,
    TraceLink,
    TraceOut,
)
from app.runtime import Runtime
from kernel.canonical.events import CanonicalEvent

ON_ITS_WAY = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT)
QUEUE_STATUSES = (
    DeliveryStatus.PENDING,
    DeliveryStatus.IN_FLIGHT,
    DeliveryStatus.PARKED,
    DeliveryStatus.HELD,
    DeliveryStatus.DEAD,
)
TRACE_EVENT_LIMIT = 1000


def as_utc(value: datetime | None) -> datetime | None:
    """Query datetimes without an offset are taken as UTC (the storage only speaks UTC).

    422 for a date outside the sane range (``0001-01-01T00:00:00+14:00`` cannot even be
    moved to UTC), for callers that took a plain ``datetime`` query parameter.
    """
    if value is None:
        return None
    try:
        return utc_in_range(value)
    except ValueError as exc:
        raise Unprocessable(f"{value.isoformat()}: {exc}") from None


def _newest_first(stmt: Any, id_column: Any, cursor: str | None, limit: int) -> Any:
    after = decode_cursor(cursor, int)
    if after is not None:
        stmt = stmt.where(id_column < after)
    return stmt.order_by(id_column.desc()).limit(limit + 1)


# --- deliveries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryFilter:
    statuses: Sequence[str] = ()
    destination: str | None = None
    source: str | None = None
    flow: str | None = None
    entity_key: str | None = None
    event_type: str | None = None

    def apply(self, stmt: Any) -> Any:
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
    stmt = _newest_first(where.apply(sa.select(Delivery)), col(Delivery.id), cursor, limit)
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


# --- events -------------------------------------------------------------------------------

_EVENT_COLUMNS = (
    col(CanonicalEventRow.id),
    col(CanonicalEventRow.source),
    col(CanonicalEventRow.event_type),
    col(CanonicalEventRow.entity_type),
    col(CanonicalEventRow.entity_key),
    col(CanonicalEventRow.schema_version),
    col(CanonicalEventRow.occurred_at),
    col(CanonicalEventRow.created_at),
    col(CanonicalEventRow.currency),
    col(CanonicalEventRow.total_amount),
    col(CanonicalEventRow.inbound_event_id),
    col(InboundEvent.topic),
    col(InboundEvent.dedupe_key),
)


@dataclass(frozen=True)
class EventFilter:
    source: str | None = None
    entity_key: str | None = None
    entity_type: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, stmt: Any) -> Any:
        for column, value in (
            (CanonicalEventRow.source, self.source),
            (CanonicalEventRow.entity_key, self.entity_key),
            (CanonicalEventRow.entity_type, self.entity_type),
            (CanonicalEventRow.event_type, self.event_type),
        ):
            if value is not None:
                stmt = stmt.where(col(column) == value)
        if self.since is not None:
            stmt = stmt.where(col(CanonicalEventRow.created_at) >= as_utc(self.since))
        if self.until is not None:
            stmt = stmt.where(col(CanonicalEventRow.created_at) < as_utc(self.until))
        return stmt


def _event_fields(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    amount = data.get("total_amount")
    data["total_amount"] = None if amount is None else str(amount)
    return data


async def list_events(
    session: AsyncSession, where: EventFilter, cursor: str | None, limit: int
) -> Page[EventOut]:
    stmt = sa.select(*_EVENT_COLUMNS).outerjoin(
        InboundEvent, col(InboundEvent.id) == col(CanonicalEventRow.inbound_event_id)
    )
    stmt = _newest_first(where.apply(stmt), col(CanonicalEventRow.id), cursor, limit)
    rows, next_cursor = page_of((await session.execute(stmt)).all(), limit, lambda r: int(r.id))
    refs: dict[int, list[DeliveryRef]] = {int(r.id): [] for r in rows}
    if refs:
        deliveries = await session.execute(
            sa.select(
                col(Delivery.canonical_event_id),
                col(Delivery.id),
                col(Delivery.destination),
                col(Delivery.flow),
                col(Delivery.status),
            )
            .where(col(Delivery.canonical_event_id).in_(list(refs)))
            .order_by(col(Delivery.id))
        )
        for d in deliveries:
            refs[int(d.canonical_event_id)].append(
                DeliveryRef(id=d.id, destination=d.destination, flow=d.flow, status=d.status)
            )
    items = [EventOut(**_event_fields(r), deliveries=refs[int(r.id)]) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


async def get_event(session: AsyncSession, event_id: int) -> EventDetail:
    stmt = (
        sa.select(*_EVENT_COLUMNS, col(CanonicalEventRow.payload))
        .outerjoin(InboundEvent, col(InboundEvent.id) == col(CanonicalEventRow.inbound_event_id))
        .where(col(CanonicalEventRow.id) == event_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(f"no event {event_id}")
    inbound = (
        await get_inbound_event(session, int(row.inbound_event_id))
        if row.inbound_event_id is not None
        else None
    )
    deliveries = (
        await session.execute(
            sa.select(Delivery)
            .where(col(Delivery.canonical_event_id) == event_id)
            .order_by(col(Delivery.id))
        )
    ).scalars()
    return EventDetail(
        **_event_fields(row),
        inbound_event=inbound,
        deliveries=[DeliveryOut.model_validate(d) for d in deliveries],
    )


# --- inbound events -----------------------------------------------------------------------


@dataclass(frozen=True)
class InboundFilter:
    connection_id: str | None = None
    topic: str | None = None
    status: str | None = None

    def apply(self, stmt: Any) -> Any:
        for column, value in (
            (InboundEvent.connection_id, self.connection_id),
            (InboundEvent.topic, self.topic),
            (InboundEvent.status, self.status),
        ):
            if value is not None:
                stmt = stmt.where(col(column) == value)
        return stmt


_INBOUND_COLUMNS = (
    col(InboundEvent.id),
    col(InboundEvent.connection_id),
    col(InboundEvent.topic),
    col(InboundEvent.dedupe_key),
    col(InboundEvent.received_at),
    col(InboundEvent.status),
    col(InboundEvent.note),
    sa.func.length(col(InboundEvent.body)).label("body_bytes"),
)


async def _event_ids_of(session: AsyncSession, inbound_ids: Iterable[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {i: [] for i in inbound_ids}
    if found:
        rows = await session.execute(
            sa.select(col(CanonicalEventRow.inbound_event_id), col(CanonicalEventRow.id))
            .where(col(CanonicalEventRow.inbound_event_id).in_(list(found)))
            .order_by(col(CanonicalEventRow.id))
        )
        for inbound_id, event_id in rows:
            found[int(inbound_id or 0)].append(int(event_id or 0))
    return found


async def list_inbound_events(
    session: AsyncSession, where: InboundFilter, cursor: str | None, limit: int
) -> Page[InboundOut]:
    stmt = _newest_first(
        where.apply(sa.select(*_INBOUND_COLUMNS)), col(InboundEvent.id), cursor, limit
    )
    rows, next_cursor = page_of((await session.execute(stmt)).all(), limit, lambda r: int(r.id))
    event_ids = await _event_ids_of(session, (int(r.id) for r in rows))
    items = [InboundOut(**r._mapping, event_ids=event_ids[int(r.id)]) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


def _body_text(body: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


async def get_inbound_event(session: AsyncSession, inbound_id: int) -> InboundDetail:
    row = await session.get(InboundEvent, inbound_id)
    if row is None:
        raise NotFound(f"no inbound event {inbound_id}")
    body, encoding = _body_text(bytes(row.body))
    event_ids = await _event_ids_of(session, [inbound_id])
    return InboundDetail(
        id=inbound_id,
        connection_id=row.connection_id,
        topic=row.topic,
        dedupe_key=row.dedupe_key,
        received_at=row.received_at,
        status=row.status,
        note=row.note,
        body_bytes=len(row.body),
        event_ids=event_ids[inbound_id],
        # rows stored before signatures were dropped at ingest still hold them: never shown
        headers=without_signatures(row.headers),
        body=body,
        body_encoding=encoding,
    )


# --- connections --------------------------------------------------------------------------


def connection_or_404(rt: Runtime, connection_id: str) -> ConnectionConfig:
    conn = rt.config.connection(connection_id)
    if conn is None:
        known = ", ".join(c.id for c in rt.config.connections) or "none configured"
        raise NotFound(f"no connection {connection_id!r}", hint=f"configured: {known}")
    return conn


BreakerState = Literal["closed", "open", "half-open"]


def _breaker(state: ConnectionState | None) -> tuple[BreakerState, datetime | None]:
    """The breaker as the delivering processes recorded it in the database (never Redis)."""
    if state is None or state.breaker_state in (None, "closed"):
        return "closed", None
    view = BreakerView("open", state.breaker_reopens_at)
    return cast(BreakerState, shown_state(view, utcnow())), state.breaker_reopens_at


async def _connections(
    session: AsyncSession, rt: Runtime, conns: Sequence[ConnectionConfig]
) -> list[ConnectionOut]:
    ids = [c.id for c in conns]
    if not ids:
        return []
    depth_rows = await session.execute(
        sa.select(col(Delivery.destination), col(Delivery.status), sa.func.count())
        .where(col(Delivery.destination).in_(ids), col(Delivery.status).in_(QUEUE_STATUSES))
        .group_by(col(Delivery.destination), col(Delivery.status))
    )
    depths: dict[str, dict[str, int]] = {}
    for destination, status, count in depth_rows:
        depths.setdefault(destination, {})[status] = int(count)
    states = {
        s.connection_id: s
        for s in (
            await session.execute(
                sa.select(ConnectionState)
                .where(col(ConnectionState.connection_id).in_(ids))
                .execution_options(populate_existing=True)
            )
        ).scalars()
    }
    out = []
    for conn in conns:
        state = states.get(conn.id)
        breaker_state, retry_at = _breaker(state)
        out.append(
            ConnectionOut(
                id=conn.id,
                type=conn.type,
                base_url=conn.base_url,
                flows_in=sorted({r.flow for r in rt.config.routes if r.from_ == conn.id}),
                flows_out=sorted({r.flow for r in rt.config.routes if r.to == conn.id}),
                breaker_state=breaker_state,
                breaker_retry_at=retry_at,
                paused=bool(state and state.paused),
                paused_at=state.paused_at if state and state.paused else None,
                queue=QueueDepth(**depths.get(conn.id, {})),
                last_success_at=state.last_success_at if state else None,
                last_error_at=state.last_error_at if state else None,
                last_error=state.last_error if state else None,
            )
        )
    return out


async def list_connections(session: AsyncSession, rt: Runtime) -> Page[ConnectionOut]:
    """Every configured connection; the config is small, so one page holds them all."""
    return Page(items=await _connections(session, rt, rt.config.connections), next_cursor=None)


async def get_connection(session: AsyncSession, rt: Runtime, connection_id: str) -> ConnectionOut:
    (out,) = await _connections(session, rt, [connection_or_404(rt, connection_id)])
    return out


async def _set_paused(session: AsyncSession, connection_id: str, paused: bool) -> None:
    values: dict[str, Any] = {"paused": paused, "paused_at": utcnow() if paused else None}
    stmt = insert_for(session, ConnectionState).values(connection_id=connection_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["connection_id"], set_=values))


async def pause_connection(session: AsyncSession, rt: Runtime, connection_id: str) -> ConnectionOut:
    """Stop new deliveries to the connection; ones already in flight finish."""
    connection_or_404(rt, connection_id)
    await _set_paused(session, connection_id, True)
    return await get_connection(session, rt, connection_id)


async def resume_connection(session: AsyncSession, rt: Runtime, connection_id: str) -> ResumeOut:
    """Clear the pause and queue what waited (the enqueue runs once the resume commits)."""
    connection_or_404(rt, connection_id)
    await _set_paused(session, connection_id, False)
    requeued = await actions.requeue_pending(session, rt, connection_id)
    out = await get_connection(session, rt, connection_id)
    return ResumeOut(**out.model_dump(), requeued=requeued)


# --- trace --------------------------------------------------------------------------------


def entity_key_of(source: str, entity_type: str, external_id: str) -> str:
    """The canonical entity key, as connectors build it (e.g. shop:order:1001)."""
    return f"{source}:{entity_type}:{external_id}"


def _related_keys(event: CanonicalEventRow) -> list[str]:
    """Keys linked to this event's entity (an order's customer, a shipment's order, …)."""
    try:
        return CanonicalEvent.model_validate(
            {
                "type": event.event_type,
                "entity_key": event.entity_key,
                "occurred_at": event.occurred_at,
                "payload": event.payload,
            }
        ).related_keys()
    except ValidationError:  # an older schema: the entity itself is still traced
        return []


async def trace_entity(session: AsyncSession, entity_key: str) -> TraceOut:
    """Follow one business entity: what arrived, what it became, where it went, its ids."""
    newest = (
        (
            await session.execute(
                sa.select(CanonicalEventRow)
                .where(col(CanonicalEventRow.entity_key) == entity_key)
                .order_by(col(CanonicalEventRow.id).desc())
                .limit(TRACE_EVENT_LIMIT + 1)
            )
        )
        .scalars()
        .all()
    )
    truncated = len(newest) > TRACE_EVENT_LIMIT
    events = list(reversed(newest[:TRACE_EVENT_LIMIT]))
    event_ids = [int(e.id or 0) for e in events]

    link_keys = {entity_key}
    for event in events:  # an update may have moved the order to another customer
        link_keys.update(_related_keys(event))
    links = (
        (
            await session.execute(
                sa.select(EntityLink)
                .where(col(EntityLink.our_key).in_(sorted(link_keys)))
                .order_by(col(EntityLink.connection_id), col(EntityLink.entity_type))
            )
        )
        .scalars()
        .all()
    )
    if not events and not links:
        raise NotFound(
            f"nothing is known about {entity_key!r}",
            hint="entity keys look like <source connection>:<entity type>:<external id>, "
            "e.g. shop:order:1001",
        )

    inbound_ids = sorted({int(e.inbound_event_id) for e in events if e.inbound_event_id})
    inbound = (
        (
            await session.execute(
                sa.select(
                    col(InboundEvent.id),
                    col(InboundEvent.connection_id),
                    col(InboundEvent.topic),
                    col(InboundEvent.received_at),
                    col(InboundEvent.dedupe_key),
                )
                .where(col(InboundEvent.id).in_(inbound_ids))
                .order_by(col(InboundEvent.id))
            )
        ).all()
        if inbound_ids
        else []
    )
    by_event: dict[int, list[TraceDelivery]] = {i: [] for i in event_ids}
    if event_ids:
        deliveries = (
            await session.execute(
                sa.select(Delivery)
                .where(col(Delivery.canonical_event_id).in_(event_ids))
                .order_by(col(Delivery.id))
            )
        ).scalars()
        for d in deliveries:
            by_event[d.canonical_event_id].append(
                TraceDelivery(
                    id=int(d.id or 0),
                    destination=d.destination,
                    flow=d.flow,
                    status=d.status,
                    attempts=d.attempts,
                    last_error=d.last_error,
                    created_at=d.created_at,
                    delivered_at=d.delivered_at,
                )
            )
    return TraceOut(
        entity_key=entity_key,
        inbound_events=[TraceInbound(**r._mapping) for r in inbound],
        events=[
            TraceEvent(
                id=int(e.id or 0),
                type=e.event_type,
                source=e.source,
                occurred_at=e.occurred_at,
                created_at=e.created_at,
                inbound_event_id=e.inbound_event_id,
                deliveries=by_event[int(e.id or 0)],
            )
            for e in events
        ],
        remote_ids=[
            TraceLink(
                connection_id=link.connection_id,
                entity_type=link.entity_type,
                our_key=link.our_key,
                remote_id=link.remote_id,
                updated_at=link.updated_at,
            )
            for link in links
        ],
        truncated=truncated,
    )
