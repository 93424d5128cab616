"""Canonical Order (schema version 1)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from app.canonical.common import Address, CanonicalModel, Money, Quantity

ORDER_SCHEMA_VERSION: Literal[1] = 1


class TaxLine(CanonicalModel):
    title: str
    rate: Decimal | None = None
    amount: Money


class Discount(CanonicalModel):
    code: str | None = None
    kind: str | None = None  # e.g. "discount_code", "automatic", "manual"
    amount: Money


class OrderLine(CanonicalModel):
    line_id: str
    sku: str | None
    title: str
    quantity: Quantity
    unit_price: Money
    discounts: list[Discount] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    requires_shipping: bool = True
    variant_id: str | None = None
    product_id: str | None = None

    @property
    def discount_total(self) -> Decimal:
        return sum((d.amount.amount for d in self.discounts), Decimal(0))


class ShippingLine(CanonicalModel):
    code: str | None = None
    title: str
    carrier: str | None = None
    price: Money
    discounts: list[Discount] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)


class OrderCustomer(CanonicalModel):
    external_id: str | None = None  # the store's customer id; None for a guest
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    is_guest: bool = False


class Payment(CanonicalModel):
    gateway: str
    status: str | None = None  # e.g. "paid", "authorized", "pending"
    amount: Money | None = None
    reference: str | None = None


class OrderTotals(CanonicalModel):
    subtotal: Money
    discounts: Money
    shipping: Money
    tax: Money
    total: Money


class Order(CanonicalModel):
    schema_version: Literal[1] = ORDER_SCHEMA_VERSION
    source: str  # connection id the order came from
    external_id: str  # the store's order id
    number: str  # what people call it, e.g. "#1001"
    created_at: datetime
    updated_at: datetime | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    presentment_currency: str | None = None
    exchange_rate: Decimal | None = None  # presentment → shop currency, when they differ
    taxes_included: bool = False
    status: Literal["open", "cancelled", "closed"] = "open"
    financial_status: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    customer: OrderCustomer
    billing_address: Address | None = None
    shipping_address: Address | None = None
    lines: list[OrderLine]
    shipping_lines: list[ShippingLine] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)
    totals: OrderTotals
    note: str | None = None
    tags: list[str] = Field(default_factory=list)

    @property
    def entity_key(self) -> str:
        return f"{self.source}:order:{self.external_id}"

    @property
    def customer_key(self) -> str | None:
        """Our key of the order's customer: the store's id, or a guest's normalized email."""
        if self.customer.external_id:
            return f"{self.source}:customer:{self.customer.external_id}"
        email = (self.customer.email or "").strip().lower()
        return f"{self.source}:customer:guest:{email}" if email else None

    def related_keys(self) -> list[str]:
        customer = self.customer_key
        return [self.entity_key, customer] if customer else [self.entity_key]
