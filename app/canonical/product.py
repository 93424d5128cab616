"""Canonical Product and Price (schema version 1). The ERP is the price master."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.canonical.common import Amount, CanonicalModel, Quantity

PRODUCT_SCHEMA_VERSION: Literal[1] = 1


class BundleComponent(CanonicalModel):
    sku: str
    quantity: Quantity  # of the component per one bundle


class Product(CanonicalModel):
    schema_version: Literal[1] = PRODUCT_SCHEMA_VERSION
    source: str
    sku: str
    external_id: str | None = None  # the source system's id
    title: str
    description: str | None = None
    status: Literal["active", "draft", "archived"] = "active"
    parent_sku: str | None = None  # a variant of a configurable product
    options: dict[str, str] = Field(default_factory=dict)  # e.g. {"size": "M"}
    barcode: str | None = None
    weight: Quantity | None = None
    weight_unit: str | None = None
    components: list[BundleComponent] = Field(default_factory=list)  # set for a bundle/kit
    updated_at: datetime

    @property
    def entity_key(self) -> str:
        return f"{self.source}:product:{self.sku}"

    def related_keys(self) -> list[str]:
        return [self.entity_key]


class QuantityBreak(CanonicalModel):
    min_quantity: Quantity
    price: Amount


class SalePrice(CanonicalModel):
    price: Amount
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class GroupPrice(CanonicalModel):
    group: str  # customer group / price level
    price: Amount
    breaks: list[QuantityBreak] = Field(default_factory=list)


class CustomerPrice(CanonicalModel):
    customer_key: str  # our customer key
    price: Amount


class Price(CanonicalModel):
    """Prices of one SKU in one currency. Amounts are in ``currency``."""

    schema_version: Literal[1] = PRODUCT_SCHEMA_VERSION
    source: str
    sku: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    base: Amount
    cost: Amount | None = None
    sale: SalePrice | None = None
    map_price: Amount | None = None  # minimum advertised price
    breaks: list[QuantityBreak] = Field(default_factory=list)
    group_prices: list[GroupPrice] = Field(default_factory=list)
    customer_prices: list[CustomerPrice] = Field(default_factory=list)
    effective_at: datetime

    @property
    def entity_key(self) -> str:
        return f"{self.source}:price:{self.sku}:{self.currency}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, f"{self.source}:product:{self.sku}"]
