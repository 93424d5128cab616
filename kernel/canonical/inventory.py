"""Canonical inventory (schema version 1): what the ERP knows, and what a store may sell."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field

from kernel.canonical.common import (
    CanonicalModel,
    Location,
    Moment,
    Note,
    Quantity,
    Sellable,
    SignedQuantity,
    Sku,
    Source,
)

INVENTORY_SCHEMA_VERSION: Literal[1] = 1


class IncomingStock(CanonicalModel):
    quantity: Quantity
    expected_on: date | None = None


class InventoryLevel(CanonicalModel):
    """Stock of one item at one ERP location, as the ERP reports it (may be negative)."""

    schema_version: Literal[1] = INVENTORY_SCHEMA_VERSION
    source: Source
    sku: Sku
    location: Location  # the source system's location id
    on_hand: SignedQuantity
    allocated: SignedQuantity = Decimal(0)
    reserved: SignedQuantity = Decimal(0)
    damaged: SignedQuantity = Decimal(0)
    quarantined: SignedQuantity = Decimal(0)
    incoming: list[IncomingStock] = Field(default_factory=list)
    as_of: Moment

    @property
    def entity_key(self) -> str:
        return f"{self.source}:inventory:{self.sku}@{self.location}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, f"{self.source}:product:{self.sku}"]


StockStatus = Literal["in_stock", "out_of_stock", "backorder"]


class StockAvailability(CanonicalModel):
    """What one store may sell of one SKU at one of its locations (after the rules)."""

    schema_version: Literal[1] = INVENTORY_SCHEMA_VERSION
    source: Source  # where the stock facts came from
    sku: Sku
    location: Location | None = None  # the destination's location id; None = the default
    available: Sellable  # sellable, never below zero
    status: StockStatus
    restock_on: date | None = None
    as_of: Moment
    notes: list[Note] = Field(default_factory=list)  # e.g. "ERP on hand was -3; sent 0"

    @property
    def entity_key(self) -> str:
        return f"availability:{self.sku}@{self.location or 'default'}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, f"{self.source}:product:{self.sku}"]
