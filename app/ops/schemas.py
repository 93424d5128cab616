"""Response and request shapes of the operator API.

Datetimes are ISO-8601 UTC, money travels as strings (never floats), and nothing here can
carry a credential: connection shapes list ids, types and URLs only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.params import BodyId, SafeStr
from app.maintenance.schemas import MaintenanceNowOut
from app.models import DeliveryStatus
from app.ops.search import Match

DeliveryStatusName = Literal[
    "pending", "in_flight", "delivered", "parked", "held", "dead", "superseded", "rejected"
]
# The Literal above is what OpenAPI shows; keep it in step with the storage constants.
assert set(get_args(DeliveryStatusName)) == set(DeliveryStatus.ALL)

BULK_REPLAY_CAP = 10_000


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- deliveries ---------------------------------------------------------------------------


class MappingNeedOut(_Out):
    kind: str
    key: str


class _DeliveryBase(_Out):
    id: int
    canonical_event_id: int
    flow: str
    event_type: str
    source: str
    destination: str
    entity_key: str
    status: str
    next_attempt_at: datetime = Field(description="when a pending delivery is due")
    lease_owner: str | None = Field(description="the worker holding an in_flight delivery")
    lease_expires_at: datetime | None
    last_error: str | None
    last_error_class: str | None = Field(
        description="transient | rate_limited | permanent | needs_mapping | breaker_open "
        "(waiting for the destination to recover) | held | rejected | superseded | internal"
    )
    parked_reason: str | None
    needs: list[MappingNeedOut] | None = Field(
        description="mappings a parked delivery waits for; adding them releases it"
    )
    accepted_at: datetime = Field(description="when the gateway accepted the source event")
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class DeliveryOut(_DeliveryBase):
    attempts: int = Field(description="attempts used; rate limits and an open breaker do not count")


class AttemptOut(_Out):
    number: int
    started_at: datetime
    duration_ms: float
    outcome: str = Field(
        description="delivered | transient | rate_limited | permanent | needs_mapping | internal"
    )
    error_class: str | None
    error_message: str | None
    exchanges: list[dict[str, Any]] = Field(
        description="the HTTP requests and responses of the attempt, credentials redacted"
    )


class DeliveryDetail(_DeliveryBase):
    attempt_count: int = Field(description="attempts used (the list's `attempts` number)")
    attempts: list[AttemptOut] = Field(description="every recorded attempt, oldest first")


class BulkReplayRequest(BaseModel):
    """Which deliveries to replay: every given filter must match; status or ids is required."""

    model_config = ConfigDict(extra="forbid")

    status: DeliveryStatusName | None = Field(
        default=None, description="e.g. dead or parked; pending and in_flight are on their way"
    )
    destination: SafeStr | None = None
    flow: SafeStr | None = None
    entity_key: SafeStr | None = None
    event_type: SafeStr | None = None
    ids: list[BodyId] | None = Field(default=None, max_length=BULK_REPLAY_CAP)
    dry_run: bool = Field(
        default=True,
        description="true (the default): only report what each delivery would become; "
        "send `false` to replay",
    )

    @model_validator(mode="after")
    def _bounded(self) -> BulkReplayRequest:
        if self.status is None and not self.ids:
            raise ValueError(
                "give a status or a list of ids, so a replay never sweeps every delivery"
            )
        if self.status in (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT):
            raise ValueError(f"status {self.status} deliveries are already on their way")
        if self.status == DeliveryStatus.HELD:
            raise ValueError("held deliveries wait for a decision: use /api/v1/approvals")
        return self


class ReplayItem(BaseModel):
    id: int
    event_type: str
    entity_key: str
    destination: str
    status: str = Field(description="before the replay")
    becomes: str = Field(
        description="pending (sent again) or held (a guarded change over its guard, or a "
        "re-opened rejection: it waits for a decision)"
    )
    reason: str | None = None


class BulkReplayOut(BaseModel):
    replayed: list[int] = Field(description="ids sent again (with dry_run: that would be)")
    held: list[int] = Field(
        default_factory=list,
        description="ids held for a decision instead of being sent (with dry_run: that would be)",
    )
    items: list[ReplayItem] = Field(
        default_factory=list, description="what each matched delivery becomes, oldest first"
    )
    count: int
    dry_run: bool
    capped: bool = Field(
        description=f"more than {BULK_REPLAY_CAP} matched; call again for the rest"
    )
    cap: int = BULK_REPLAY_CAP
    skipped: list[int] = Field(
        default_factory=list,
        description="requested ids not replayed: unknown, filtered out, held, or on their way",
    )


# --- events -------------------------------------------------------------------------------


class DeliveryRef(_Out):
    id: int
    destination: str
    flow: str
    status: str


class _EventBase(_Out):
    id: int
    source: str
    event_type: str
    entity_type: str
    entity_key: str
    schema_version: int
    occurred_at: datetime
    created_at: datetime
    currency: str | None
    total_amount: str | None = Field(description="decimal string in `currency`")
    inbound_event_id: int | None
    topic: str | None = Field(description="the source's topic of the inbound event")
    dedupe_key: str | None


class EventOut(_EventBase):
    deliveries: list[DeliveryRef]


class InboundOut(_Out):
    id: int
    connection_id: str
    topic: str
    dedupe_key: str
    received_at: datetime
    status: str = Field(
        description="accepted | ignored (stored, not routed) | to_read | quarantined (signed, "
        "the body could not be parsed; `note` says why) | duplicate"
    )
    note: str | None
    body_bytes: int
    event_ids: list[int] = Field(description="canonical events parsed from it")


class InboundDetail(InboundOut):
    headers: dict[str, str] = Field(description="kept headers; credentials are never stored")
    body: str = Field(description="the raw body as received")
    body_encoding: Literal["utf-8", "base64"]
    purged_at: datetime | None = Field(
        default=None,
        description="when retention blanked body and headers (dedupe keys stay); null: kept",
    )


class EventDetail(_EventBase):
    payload: dict[str, Any] = Field(description="the canonical entity after the event")
    purged_at: datetime | None = Field(
        default=None,
        description="when retention emptied the payload (and its deliveries'); such an event "
        "is never sent again. null: kept",
    )
    inbound_event: InboundDetail | None
    deliveries: list[DeliveryOut]


# --- connections --------------------------------------------------------------------------


class QueueDepth(BaseModel):
    pending: int = 0
    in_flight: int = 0
    parked: int = 0
    held: int = 0
    dead: int = 0


class ConnectionOut(BaseModel):
    id: str
    type: str
    base_url: str
    flows_in: list[str] = Field(description="flows the gateway receives from this connection")
    flows_out: list[str] = Field(description="flows the gateway delivers to this connection")
    breaker_state: Literal["closed", "open", "half-open"]
    breaker_retry_at: datetime | None = Field(
        description="when an open breaker lets the next trial call through"
    )
    paused: bool
    paused_at: datetime | None
    queue: QueueDepth = Field(description="deliveries to this connection by status")
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    maintenance: MaintenanceNowOut = Field(
        description="its maintenance window open now and the next one "
        "(GET /connections/{id}/maintenance-windows lists the windows)"
    )


class ResumeOut(ConnectionOut):
    requeued: int = Field(description="pending deliveries queued again by the resume")


# --- trace --------------------------------------------------------------------------------


class TraceInbound(BaseModel):
    id: int
    connection_id: str
    topic: str
    received_at: datetime
    dedupe_key: str


class TraceDelivery(BaseModel):
    id: int
    destination: str
    flow: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class TraceEvent(BaseModel):
    id: int
    type: str
    source: str
    occurred_at: datetime
    created_at: datetime
    inbound_event_id: int | None
    deliveries: list[TraceDelivery]


class TraceLink(BaseModel):
    connection_id: str
    entity_type: str
    our_key: str
    remote_id: str
    updated_at: datetime


class TraceOut(BaseModel):
    entity_key: str
    inbound_events: list[TraceInbound] = Field(description="what arrived, oldest first")
    events: list[TraceEvent] = Field(
        description="canonical events (each with its deliveries), oldest first"
    )
    remote_ids: list[TraceLink] = Field(
        description="the entity's ids in other systems, plus its customer's"
    )
    truncated: bool = Field(description="true if only the newest events are shown")
    matches: list[Match] = Field(
        default_factory=list,
        description="with `q`: every entity it names, the traced one first",
    )
