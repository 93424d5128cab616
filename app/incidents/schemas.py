"""What the incidents API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class NoticeOut(BaseModel):
    sink: str
    message: str = Field(description="firing | resolved")
    state: str = Field(description="pending | sending | sent | skipped | failed | unconfirmed")
    attempts: int
    sent_at: datetime | None
    next_attempt_at: datetime | None = Field(description="when a pending one is tried again")
    last_error: str | None = Field(description="the sink's answer, without its secrets")


class IncidentOut(BaseModel):
    id: int
    kind: str = Field(
        description="flow_silent, webhooks_missing, breaker_open, poll_failing, poll_empty, "
        "dead_letters, oldest_pending"
    )
    connection_id: str
    flow: str = Field(description="the flow, or the poll stream for poll kinds; '' if none")
    status: str = Field(description="pending | open | resolved")
    summary: str = Field(description="what is wrong and what to check")
    details: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    opened_at: datetime | None
    resolved_at: datetime | None
    notifications: list[NoticeOut]


class SinkTestOut(BaseModel):
    sink: str
    type: str
    ok: bool
    error: str | None = None


class NotificationTestOut(BaseModel):
    items: list[SinkTestOut]
