"""The canonical event envelope that travels from ingest to delivery.

``EVENT_TYPES`` is the catalogue: event type → (entity, flow, payload model). Connectors
parse into these events, rules read and derive them, and the API publishes their JSON Schema.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field, field_validator, model_validator

from kernel.canonical.common import MAX_KEY_LENGTH, Moment
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.inventory import InventoryLevel, StockAvailability
from kernel.canonical.order import Order
from kernel.canonical.product import Price, Product
from kernel.canonical.returns import CreditMemo, Refund, Return
from kernel.canonical.shipment import Shipment

T = TypeVar("T", bound=BaseModel)

Payload = (
    Order
    | InventoryLevel
    | StockAvailability
    | Product
    | Price
    | Customer
    | ErasureRequest
    | Shipment
    | Return
    | Refund
    | CreditMemo
)


@dataclass(frozen=True)
class EventKind:
    entity: str
    flow: str
    model: type[BaseModel]
    description: str


EVENT_TYPES: dict[str, EventKind] = {
    "order.created": EventKind("order", "orders", Order, "a new order was placed"),
    "order.updated": EventKind("order", "orders", Order, "an order changed (amendment)"),
    "order.cancelled": EventKind("order", "orders", Order, "an order was cancelled"),
    "inventory.level_changed": EventKind(
        "inventory", "inventory", InventoryLevel, "stock of an item at an ERP location changed"
    ),
    "inventory.availability_changed": EventKind(
        "availability",
        "inventory",
        StockAvailability,
        "sellable quantity for a store changed (derived by the inventory rules)",
    ),
    "product.upserted": EventKind(
        "product", "products", Product, "a product was created or changed"
    ),
    "price.changed": EventKind("price", "products", Price, "prices of an item changed"),
    "customer.upserted": EventKind(
        "customer", "customers", Customer, "a customer was created or changed"
    ),
    "customer.erase_requested": EventKind(
        "customer", "customers", ErasureRequest, "a data subject asked to be erased"
    ),
    "shipment.created": EventKind("shipment", "shipments", Shipment, "goods left the warehouse"),
    "shipment.updated": EventKind("shipment", "shipments", Shipment, "a shipment changed"),
    "return.requested": EventKind("return", "returns", Return, "a customer asked to return"),
    "return.updated": EventKind("return", "returns", Return, "a return's status changed"),
    "refund.created": EventKind("refund", "returns", Refund, "the store refunded money"),
    "credit_memo.created": EventKind(
        "credit_memo", "returns", CreditMemo, "the ERP issued a credit memo"
    ),
}


class CanonicalEvent(BaseModel):
    """One business fact: ``type`` says what happened, ``payload`` is the entity after it."""

    type: str
    entity_key: str = Field(
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="stable key of the business entity, e.g. shop:order:123",
    )
    occurred_at: Moment
    payload: Payload

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            raise ValueError(f"unknown event type {value!r}; known: {', '.join(EVENT_TYPES)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _payload_of_its_type(cls, data: Any) -> Any:
        # Validate the payload against the model of its type, not the first union member
        # that happens to fit.
        if isinstance(data, dict) and isinstance(data.get("payload"), dict):
            kind = EVENT_TYPES.get(str(data.get("type")))
            if kind is not None:
                data = {**data, "payload": kind.model.model_validate(data["payload"])}
        return data

    @property
    def kind(self) -> EventKind:
        return EVENT_TYPES[self.type]

    @property
    def entity_type(self) -> str:
        return self.kind.entity

    @property
    def flow(self) -> str:
        return self.kind.flow

    def related_keys(self) -> list[str]:
        """Our keys whose remote ids a destination may need (the entity, its customer, …)."""
        return self.payload.related_keys()

    def payload_as(self, model: builtins.type[T]) -> T:
        """The payload as ``model``; a TypeError names the mismatch (a routing bug)."""
        if not isinstance(self.payload, model):
            raise TypeError(
                f"{self.type} carries {type(self.payload).__name__}, not {model.__name__}"
            )
        return self.payload

    def payload_json(self) -> dict[str, Any]:
        return self.payload.model_dump(mode="json")


def make_event(type_: str, payload: Payload, occurred_at: datetime) -> CanonicalEvent:
    """An event whose entity key comes from its payload."""
    return CanonicalEvent(
        type=type_,
        entity_key=payload.entity_key,
        occurred_at=occurred_at,
        payload=payload,
    )


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every canonical event's payload, by event type."""
    return {
        name: {
            "entity": kind.entity,
            "flow": kind.flow,
            "description": kind.description,
            "schema": kind.model.model_json_schema(),
        }
        for name, kind in EVENT_TYPES.items()
    }
