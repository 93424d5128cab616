"""Shapes of /api/v1/erasures: what an operator sees of an erase request (never its data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ErasureOut(BaseModel):
    id: int
    event_id: int = Field(description="the canonical event of the request")
    source: str = Field(description="the connection that asked")
    entity_key: str = Field(
        description="the request's key: the customer id it names, or a hash of its e-mail"
    )
    status: str = Field(
        description="pending (accepted, not started) | scrubbing | awaiting_delivery (the "
        "person's records are scrubbed; the request keeps its identifiers until every "
        "connected system has received it) | done"
    )
    identifiers: dict[str, Any] = Field(
        description="what the request named: customer_external_id as given, e-mail and phone "
        "only as SHA-256 of their normalized form (email_sha256, phone_sha256)"
    )
    events_found: int = Field(description="events of the person found when the job started")
    counts: dict[str, int] = Field(
        description="rows changed per kind (inbound_events, canonical_events, deliveries, "
        "delivery_attempts, findings, customer_matches, entity_links, person_refs …), "
        "events_processed, and values = values replaced in them"
    )
    note: str | None = Field(description="where the job is, or what it waits for")
    requested_at: datetime
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    scrubbed_at: datetime | None
    finished_at: datetime | None
