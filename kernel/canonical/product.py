"""Canonical Product and Price (schema version 1). The ERP is the price master."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.canonical.common import (
    CanonicalModel,
    Code,
    Currency,
    Id,
    Key,
    Label,
    Moment,
    Name,
    NonNegativeAmount,
    Note,
    Quantity,
    RequiredLabel,
    Sku,
    Source,
)

PRODUCT_SCHEMA_VERSION: Literal[1] = 1


class BundleComponent(CanonicalModel):
    sku: Sku
    quantity: Quantity  # of the component per one bundle


class Product(CanonicalModel):
    schema_version: Literal[1] = PRODUCT_SCHEMA_VERSION
    source: Source
    sku: Sku
    external_id: Id | None = None  # the source system's id
    title: Name
    description: Note | None = None
    status: Literal["active", "draft", "archived"] = "active"
    parent_sku: Sku | None = None  # a variant of a configurable product
    options: dict[Label, Name] = Field(default_factory=dict)  # e.g. {"size": "M"}
    barcode: Label | None = None
    weight: Quantity | None = None
    weight_unit: Code | None = None
    components: list[BundleComponent] = Field(default_factory=list)  # set for a bundle/kit
    updated_at: Moment

    @property
    def entity_key(self) -> str:
        return f"{self.source}:product:{self.sku}"

    def related_keys(self) -> list[str]:
        return [self.entity_key]


class QuantityBreak(CanonicalModel):
    min_quantity: Quantity
    price: NonNegativeAmount


class SalePrice(CanonicalModel):
    price: NonNegativeAmount
    starts_at: Moment | None = None
    ends_at: Moment | None = None


class GroupPrice(CanonicalModel):
    group: RequiredLabel  # customer group / price level
    price: NonNegativeAmount
    breaks: list[QuantityBreak] = Field(default_factory=list)


class CustomerPrice(CanonicalModel):
    customer_key: Key  # our customer key
    price: NonNegativeAmount


class Price(CanonicalModel):
    """Prices of one SKU in one currency. Amounts are in ``currency``."""

    schema_version: Literal[1] = PRODUCT_SCHEMA_VERSION
    source: Source
    sku: Sku
    currency: Currency
    base: NonNegativeAmount
    cost: NonNegativeAmount | None = None
    sale: SalePrice | None = None
    map_price: NonNegativeAmount | None = None  # minimum advertised price
    breaks: list[QuantityBreak] = Field(default_factory=list)
    group_prices: list[GroupPrice] = Field(default_factory=list)
    customer_prices: list[CustomerPrice] = Field(default_factory=list)
    effective_at: Moment

    @property
    def entity_key(self) -> str:
        return f"{self.source}:price:{self.sku}:{self.currency}"

    def related_keys(self) -> list[str]:
        return [self.entity_key, f"{self.source}:product:{self.sku}"]
