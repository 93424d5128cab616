"""Storage: the tables of the durable pipeline.

inbound_events (raw, deduped) → canonical_events → deliveries (the outbox) → delivery_attempts;
entity_links remember remote ids; mappings translate our keys to theirs; connection_states
hold what operators set (pause) and what they watch (last success / error).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# Simulated time for tests of long outages (hours pass in a second); always zero in production.
CLOCK_OFFSET = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(UTC) + CLOCK_OFFSET


class DeliveryStatus:
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    PARKED = "parked"
    HELD = "held"
    DEAD = "dead"
    SUPERSEDED = "superseded"
    # an operator said no (price guard, amendment, over-shipment): final unless re-opened
    REJECTED = "rejected"

    ALL = (PENDING, IN_FLIGHT, DELIVERED, PARKED, HELD, DEAD, SUPERSEDED, REJECTED)
    # A later delivery of the same entity to the same destination waits behind these.
    BLOCKING = (PENDING, IN_FLIGHT, PARKED, HELD)


class InboundEvent(SQLModel, table=True):
    __tablename__ = "inbound_events"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "dedupe_key", name="uq_inbound_dedupe"),
        # the same body under the same topic is the same event, whatever its webhook id says
        sa.UniqueConstraint("connection_id", "topic", "body_hash", name="uq_inbound_body"),
        # the quarantine (few rows of a large table): listed, counted and replayed by id
        sa.Index(
            "ix_inbound_quarantined",
            "connection_id",
            "id",
            postgresql_where=sa.text("status = 'quarantined'"),
            sqlite_where=sa.text("status = 'quarantined'"),
        ),
        # the retention job walks the rows whose body it has not blanked yet, by id
        sa.Index(
            "ix_inbound_unpurged",
            "id",
            postgresql_where=sa.text("purged_at IS NULL"),
            sqlite_where=sa.text("purged_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    connection_id: str = Field(max_length=64, index=True)
    topic: str = Field(max_length=128)
    dedupe_key: str = Field(max_length=256)
    received_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    headers: dict[str, str] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    body: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    # SHA-256 of the body (hex); None for rows stored before it was kept
    body_hash: str | None = Field(default=None, max_length=64)
    # accepted | ignored | to_read | quarantined (signed, body not parsed; ``note`` says
    # why) | duplicate (a replayed quarantine that was already stored)
    status: str = Field(default="accepted", max_length=32)
    note: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    # when retention blanked body and headers (app/retention); keys and body_hash stay
    purged_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class CanonicalEventRow(SQLModel, table=True):
    __tablename__ = "canonical_events"
    __table_args__ = (
        # the retention job walks the events whose payload it has not purged yet, by id
        sa.Index(
            "ix_canonical_unpurged",
            "id",
            postgresql_where=sa.text("purged_at IS NULL"),
            sqlite_where=sa.text("purged_at IS NULL"),
        ),
        # incidents count a source's events of a flow in time windows (app/incidents)
        sa.Index("ix_canonical_volume", "source", "event_type", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    inbound_event_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger(), sa.ForeignKey("inbound_events.id"), index=True),
    )
    source: str = Field(max_length=64)
    event_type: str = Field(max_length=64)
    entity_type: str = Field(max_length=32)
    entity_key: str = Field(max_length=256, index=True)
    schema_version: int = 1
    occurred_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    currency: str | None = Field(default=None, max_length=3)
    total_amount: Decimal | None = Field(default=None, sa_column=sa.Column(sa.Numeric(18, 4)))
    payload: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    # when retention emptied the payload (and its deliveries'); such an event is never sent
    purged_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (
        sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_deliveries_order", "destination", "ordering_key", "id"),
        # small however big the table: what waits for a destination's breaker (the sweeper's
        # trial candidates) and what depends on an entity (released when it is delivered)
        sa.Index(
            "ix_deliveries_breaker_wait",
            "destination",
            "updated_at",
            "id",
            # breaker_open: app.delivery.outbox.WAITING_FOR_DESTINATION
            postgresql_where=sa.text("status = 'pending' AND last_error_class = 'breaker_open'"),
            sqlite_where=sa.text("status = 'pending' AND last_error_class = 'breaker_open'"),
        ),
        # what waited behind a finished delivery: the next pending one of its own key, and
        # of each key that depends on it (each index leads with the key it answers for, 0015)
        sa.Index(
            "ix_deliveries_pending_order",
            "ordering_key",
            "destination",
            "id",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_deliveries_pending_dependents",
            "depends_on",
            "destination",
            "id",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    canonical_event_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger(), sa.ForeignKey("canonical_events.id"), nullable=False, index=True
        )
    )
    flow: str = Field(max_length=32)
    event_type: str = Field(max_length=64)
    source: str = Field(max_length=64)
    destination: str = Field(max_length=64, index=True)
    entity_key: str = Field(max_length=256, index=True)
    ordering_key: str = Field(max_length=256)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    # attempts ever made: numbers them, and a replay keeps counting (attempt 4, 5…)
    attempts: int = 0
    # attempts of the current run (a replay starts a new one): backoff counts from these
    run_attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    last_error_class: str | None = Field(default=None, max_length=32)
    parked_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    needs: list[dict[str, str]] | None = Field(default=None, sa_column=sa.Column(JSONType))
    accepted_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # indexed: the operator list filters by time range (since/until)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    # what the rules of this route made of the event (None: the canonical payload as is)
    payload: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    # rule decisions the connector obeys (tax source, notify customer, …)
    directives: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    # what the claim reads with the lease (app/delivery/lookup.py): the mapping kinds and
    # keys and the related entity keys the attempt will ask for, known when it was written;
    # None: read after the claim
    lookup: dict[str, list[str]] | None = Field(default=None, sa_column=sa.Column(JSONType))
    # waits while a delivery of this entity key to the same destination is unfinished
    depends_on: str | None = Field(default=None, max_length=256)
    held_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    priority: int = 0  # higher goes first when the sweeper picks due work
    # when the current run of failed attempts began (None: not failing); transient errors
    # are retried until the destination's retry window has passed since then
    failing_since: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    delivery_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger(), sa.ForeignKey("deliveries.id"), nullable=False, index=True
        )
    )
    number: int
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    duration_ms: float
    outcome: str = Field(
        max_length=32
    )  # delivered | transient | rate_limited | permanent | needs_mapping
    error_class: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    # redacted HTTP exchanges: [{"request": {...}, "response": {...}}]
    exchanges: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(JSONType, nullable=False)
    )


class EntityLink(SQLModel, table=True):
    __tablename__ = "entity_links"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "entity_type", "our_key", name="uq_entity_link"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    connection_id: str = Field(max_length=64)
    entity_type: str = Field(max_length=32)
    our_key: str = Field(max_length=256, index=True)
    # indexed: an operator finds an entity by the ERP's document id (app/ops/search.py)
    remote_id: str = Field(max_length=256, index=True)
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Mapping(SQLModel, table=True):
    __tablename__ = "mappings"
    __table_args__ = (sa.UniqueConstraint("kind", "connection_id", "our_key", name="uq_mapping"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    kind: str = Field(max_length=32)
    connection_id: str = Field(max_length=64)
    our_key: str = Field(max_length=256)
    their_key: str = Field(max_length=256)
    origin: str = Field(default="api", max_length=16)  # config | api
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class ConnectionState(SQLModel, table=True):
    __tablename__ = "connection_states"

    connection_id: str = Field(primary_key=True, max_length=64)
    paused: bool = False
    paused_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    last_success_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    last_error_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    # the circuit breaker as the delivering processes last saw it (closed | open | half-open)
    breaker_state: str | None = Field(default=None, max_length=16)
    breaker_changed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    breaker_reopens_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class MaintenanceWindowRow(SQLModel, table=True):
    """A maintenance window an operator added through the API (``app.maintenance``); the
    config file's are not stored. Read by every process at each claim and poll."""

    __tablename__ = "maintenance_windows"

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    connection_id: str = Field(max_length=64, index=True)
    # app.configuration.maintenance.MaintenanceWindow as JSON (from, to, every, timezone…)
    window: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    created_by: str | None = Field(default=None, max_length=80)


class WorkerHeartbeat(SQLModel, table=True):
    """Every delivering process says it is alive and whether it can consume (for /readyz)."""

    __tablename__ = "worker_heartbeats"

    worker_id: str = Field(primary_key=True, max_length=128)
    kind: str = Field(max_length=16)  # arq | in-process
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    seen_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    state: str = Field(max_length=32)  # consuming | queue_unreachable | stopping
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))


class Finding(SQLModel, table=True):
    """Something operators should see that is not a failure: tax or refund differences,
    negative ERP stock, stock drift, duplicate customers linked, MAP clamps."""

    __tablename__ = "findings"

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    kind: str = Field(max_length=32, index=True)
    connection_id: str | None = Field(default=None, max_length=64)
    entity_key: str | None = Field(default=None, max_length=256, index=True)
    delivery_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    message: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    data: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class StockLevel(SQLModel, table=True):
    """The newest inventory level per (source, sku, location): the input of availability."""

    __tablename__ = "stock_levels"
    __table_args__ = (sa.UniqueConstraint("source", "sku", "location", name="uq_stock_level"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    source: str = Field(max_length=64)
    sku: str = Field(max_length=128, index=True)
    location: str = Field(max_length=64)
    level: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    as_of: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # on hand minus everything not for sale: decides between two levels of the same time
    sellable: Decimal = Field(sa_column=sa.Column(sa.Numeric(18, 6), nullable=False))


class PriceRecord(SQLModel, table=True):
    """The newest ERP price per (source, sku, currency) and when its sale starts or ends."""

    __tablename__ = "price_records"
    __table_args__ = (sa.UniqueConstraint("source", "sku", "currency", name="uq_price_record"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    source: str = Field(max_length=64)
    sku: str = Field(max_length=128)
    currency: str = Field(max_length=3)
    price: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    next_change_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), index=True)
    )


class SentPrice(SQLModel, table=True):
    """A price last accepted for a destination (sent, or approved): the guard's baseline.

    One row per price of a SKU and currency: ``kind`` base, sale, break, group, group_break
    or customer, and ``price_key`` which one (app/flows/products/price_checks.py). Rows from
    before prices were guarded one by one have kind ``effective``.
    """

    __tablename__ = "sent_prices"
    __table_args__ = (
        sa.UniqueConstraint(
            "destination", "sku", "currency", "kind", "price_key", name="uq_sent_price"
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    destination: str = Field(max_length=64)
    sku: str = Field(max_length=128)
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=16)
    # a group (255) and "@<quantity>", or a customer key (256)
    price_key: str = Field(max_length=300)
    amount: Decimal = Field(sa_column=sa.Column(sa.Numeric(18, 6), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class RuleOverride(SQLModel, table=True):
    """Rules changed at run time through the API; they win over the config file's."""

    __tablename__ = "rule_overrides"

    flow: str = Field(primary_key=True, max_length=32)
    rules: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_by: str | None = Field(default=None, max_length=64)


class PollCursor(SQLModel, table=True):
    """Where polling of one stream of one connection resumes (survives restarts)."""

    __tablename__ = "poll_cursors"

    connection_id: str = Field(primary_key=True, max_length=64)
    stream: str = Field(primary_key=True, max_length=32)
    cursor: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    polled_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    last_count: int = 0
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    # when a run of this stream last recorded something new (the poll_empty detector)
    last_events_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class CustomerMatch(SQLModel, table=True):
    """Normalized identity keys (email, phone, name+postcode) → our customer key."""

    __tablename__ = "customer_matches"
    __table_args__ = (sa.UniqueConstraint("match_key", "customer_key", name="uq_customer_match"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    match_key: str = Field(max_length=256, index=True)
    customer_key: str = Field(max_length=256, index=True)
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class StockPush(SQLModel, table=True):
    """Per store, SKU and location: the ERP-side stock baseline the store last received.

    A push sends the change of the baseline (a delta) so it commutes with the store's own
    sales; the baseline is ERP sellable + this store's orders already booked in the ERP.
    """

    __tablename__ = "stock_pushes"
    __table_args__ = (sa.UniqueConstraint("destination", "sku", "location", name="uq_stock_push"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    destination: str = Field(max_length=64)
    sku: str = Field(max_length=128)
    location: str = Field(default="", max_length=64)  # "" = the store's default location
    baseline: Decimal = Field(sa_column=sa.Column(sa.Numeric(18, 6), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class OrderAllocation(SQLModel, table=True):
    """Units of one store order per SKU that the ERP has booked (its delivery succeeded)."""

    __tablename__ = "order_allocations"
    __table_args__ = (
        sa.UniqueConstraint("store", "erp", "order_key", "sku", name="uq_order_allocation"),
        sa.Index("ix_order_allocations_sku", "store", "erp", "sku"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    store: str = Field(max_length=64)
    erp: str = Field(max_length=64)
    order_key: str = Field(max_length=256)
    sku: str = Field(max_length=128)
    quantity: Decimal = Field(sa_column=sa.Column(sa.Numeric(18, 6), nullable=False))
    booked_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class PersonRef(SQLModel, table=True):
    """Whom a canonical event is about, for erase requests (app/erasure).

    One row per identity an event names: ``ref_hash`` is the SHA-256 of a normalized
    "email:…", "phone:…" (both scoped to the source connection), "customer:<key>" or
    "order:<key>" value, so this index finds a person's records without being a copy of
    their data. Rows go when the event is erased.
    """

    __tablename__ = "person_refs"
    __table_args__ = (sa.Index("ix_person_refs_hash", "ref_hash", "canonical_event_id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    source: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # email | phone | customer | order
    ref_hash: str = Field(max_length=64)
    canonical_event_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger(), sa.ForeignKey("canonical_events.id"), nullable=False, index=True
        )
    )


class ErasureRecord(SQLModel, table=True):
    """One erase request and the background job that carries it out (app/erasure).

    Holds no personal data: the requested e-mail/phone only as hashes, the customer id as
    given. ``ref_hashes`` are what the job searches by while it runs; dropped when done.
    """

    __tablename__ = "erasure_requests"
    __table_args__ = (sa.Index("ix_erasure_requests_status", "status", "id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    canonical_event_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger(), sa.ForeignKey("canonical_events.id"), nullable=False, unique=True
        )
    )
    source: str = Field(max_length=64)
    entity_key: str = Field(max_length=256)
    # pending → scrubbing → awaiting_delivery (the request itself waits to be passed on) → done
    status: str = Field(default="pending", max_length=32)
    identifiers: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    ref_hashes: list[str] | None = Field(default=None, sa_column=sa.Column(JSONType))
    cursor: int = Field(default=0, sa_column=sa.Column(sa.BigInteger(), nullable=False))
    events_found: int = 0
    counts: dict[str, int] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    note: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    requested_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    scrubbed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    leased_until: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class InboundRead(SQLModel, table=True):
    """A record a thin webhook named (an id, no data), to be read from the source by a job."""

    __tablename__ = "inbound_reads"
    __table_args__ = (sa.Index("ix_inbound_reads_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    inbound_event_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger(), sa.ForeignKey("inbound_events.id"), nullable=False, index=True
        )
    )
    connection_id: str = Field(max_length=64)
    kind: str = Field(max_length=64)
    ref_id: str = Field(max_length=256)
    version: str | None = Field(default=None, max_length=256)
    status: str = Field(default="pending", max_length=16)  # pending | done | dead
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class OAuthToken(SQLModel, table=True):
    """An OAuth token a connection fetched (``connectors._kit.oauth2``), shared by every
    process: access token, expiry, the (rotated) refresh token, as JSON, Fernet-encrypted
    when GATEWAY_TOKEN_KEY is set (``app/tokens.py``)."""

    __tablename__ = "oauth_tokens"

    key: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    token: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class AuditEntry(SQLModel, table=True):
    """One operator action (app/audit): who (a fingerprint of the API key, never the key,
    and its role), what, on what, when; written in the action's own transaction."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_action", "action", "id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    # "key:<first 8 hex of the key's SHA-256>", or "connection:<id>" for what a source asked
    actor: str = Field(max_length=80)
    role: str = Field(max_length=32)  # operator | webhook
    action: str = Field(max_length=64)  # e.g. delivery.replay, mapping.put, connection.pause
    target: str = Field(max_length=256)  # e.g. delivery:42, mapping:sku/erp
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )


class IncidentStatus:
    PENDING = "pending"  # the symptom is seen, not yet for as long as its detector waits
    OPEN = "open"
    RESOLVED = "resolved"

    ACTIVE = (PENDING, OPEN)


_ACTIVE_INCIDENT = sa.text("status IN ('pending', 'open')")


class Incident(SQLModel, table=True):
    """Something that stopped working by itself (app/incidents): a silent flow, a breaker
    open for too long, a failing poll. At most one active row per (kind, connection, flow),
    so it is raised once and resolved once whatever process evaluates."""

    __tablename__ = "incidents"
    __table_args__ = (
        sa.Index(
            "uq_incidents_active",
            "kind",
            "connection_id",
            "flow",
            unique=True,
            postgresql_where=_ACTIVE_INCIDENT,
            sqlite_where=_ACTIVE_INCIDENT,
        ),
        sa.Index("ix_incidents_status", "status", "id"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    kind: str = Field(max_length=32)
    connection_id: str = Field(max_length=64)
    # the flow, or for poll kinds the stream; "" when the kind has neither
    flow: str = Field(default="", max_length=64)
    status: str = Field(max_length=16)  # pending | open | resolved
    summary: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    # when the symptom began (as far as known); opened_at: when it became an incident
    first_seen_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    opened_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    resolved_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class IncidentNotice(SQLModel, table=True):
    """One message about one incident to one sink: firing, then resolved. The row is the
    sent state, so each goes out once across retries, processes and restarts."""

    __tablename__ = "incident_notices"
    __table_args__ = (
        sa.UniqueConstraint("incident_id", "sink", "message", name="uq_incident_notice"),
        sa.Index("ix_incident_notices_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntPK, primary_key=True))
    incident_id: int = Field(
        sa_column=sa.Column(sa.BigInteger(), sa.ForeignKey("incidents.id"), nullable=False)
    )
    sink: str = Field(max_length=64)
    message: str = Field(max_length=16)  # firing | resolved
    # pending → sending → sent; pending again after a failure (with backoff); skipped (a
    # firing message for an incident resolved before it went out), failed (gave up),
    # unconfirmed (the sender died mid-send: never sent again, so never twice)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    claimed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
