"""Canonical Shipment (schema version 1): packages, lines, carriers, tracking numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.canonical.common import CanonicalModel, Quantity

SHIPMENT_SCHEMA_VERSION: Literal[1] = 1


class ShipmentLine(CanonicalModel):
    sku: str
    quantity: Quantity
    order_line_id: str | None = None  # the store's line id, when known


class Package(CanonicalModel):
    tracking_number: str | None = None
    carrier: str | None = None  # the source system's carrier name/code
    service: str | None = None
    tracking_url: str | None = None
    weight: Quantity | None = None
    weight_unit: str | None = None
    lines: list[ShipmentLine] = Field(default_factory=list)


class Shipment(CanonicalModel):
    schema_version: Literal[1] = SHIPMENT_SCHEMA_VERSION
    source: str
    external_id: str  # e.g. the ERP's item fulfillment id
    order_key: str  # our key of the order, e.g. shop-eu:order:1001
    order_number: str | None = None
    status: Literal["packed", "shipped", "picked_up", "delivered"] = "shipped"
    shipped_at: datetime | None = None
    estimated_delivery_at: datetime | None = None
    packages: list[Package]

    @property
    def entity_key(self) -> str:
        return f"{self.source}:shipment:{self.external_id}"

    def related_keys(self) -> list[str]:
        # each package's remote id (e.g. a store fulfillment) is linked as "<shipment>#<n>"
        packages = [f"{self.entity_key}#{i}" for i in range(len(self.packages))]
        return [self.entity_key, self.order_key, *packages]
