"""The canonical event envelope that travels from ingest to delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.canonical.order import Order

EventType = Literal["order.created", "order.updated", "order.cancelled"]
ENTITY_OF_EVENT: dict[str, str] = {
    "order.created": "order",
    "order.updated": "order",
    "order.cancelled": "order",
}
FLOW_OF_ENTITY: dict[str, str] = {"order": "orders"}


class CanonicalEvent(BaseModel):
    """One business fact: ``type`` says what happened, ``payload`` is the entity after it."""

    type: EventType
    entity_key: str = Field(description="stable key of the business entity, e.g. shop:order:123")
    occurred_at: datetime
    payload: Order

    @property
    def entity_type(self) -> str:
        return ENTITY_OF_EVENT[self.type]

    @property
    def flow(self) -> str:
        return FLOW_OF_ENTITY[self.entity_type]

    def payload_json(self) -> dict[str, Any]:
        return self.payload.model_dump(mode="json")
