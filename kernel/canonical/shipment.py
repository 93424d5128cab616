"""Canonical Shipment (schema version 1): packages, lines, carriers, tracking numbers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.canonical.common import (
    CanonicalModel,
    Code,
    Id,
    Key,
    Label,
    Moment,
    Quantity,
    Sku,
    Source,
    Url,
)

SHIPMENT_SCHEMA_VERSION: Literal[1] = 1


class ShipmentLine(CanonicalModel):
    sku: Sku
    quantity: Quantity
    order_line_id: Id | None = None  # the store's line id, when known


class Package(CanonicalModel):
    tracking_number: Label | None = None
    carrier: Label | None = None  # the source system's carrier name/code
    service: Label | None = None
    tracking_url: Url | None = None
    weight: Quantity | None = None
    weight_unit: Code | None = None
    lines: list[ShipmentLine] = Field(default_factory=list)


class Shipment(CanonicalModel):
    schema_version: Literal[1] = SHIPMENT_SCHEMA_VERSION
    source: Source
    external_id: Id  # e.g. the ERP's item fulfillment id
    order_key: Key  # our key of the order, e.g. shop-eu:order:1001
    order_number: Label | None = None
    status: Literal["packed", "shipped", "picked_up", "delivered"] = "shipped"
    shipped_at: Moment | None = None
    estimated_delivery_at: Moment | None = None
    packages: list[Package]

    @property
    def entity_key(self) -> str:
        return f"{self.source}:shipment:{self.external_id}"

    def related_keys(self) -> list[str]:
        # each package's remote id (e.g. a store fulfillment) is linked as "<shipment>#<n>"
        packages = [f"{self.entity_key}#{i}" for i in range(len(self.packages))]
        return [self.entity_key, self.order_key, *packages]
