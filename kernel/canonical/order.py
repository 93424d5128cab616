"""Canonical Order (schema version 1)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from kernel.canonical.common import (
    Address,
    CanonicalModel,
    Code,
    Currency,
    Email,
    Id,
    Label,
    Moment,
    Money,
    Name,
    NonNegativeMoney,
    Note,
    PersonName,
    Phone,
    PositiveRate,
    Quantity,
    Rate,
    RequiredLabel,
    Sku,
    Source,
)

ORDER_SCHEMA_VERSION: Literal[1] = 1


class TaxLine(CanonicalModel):
    title: Label
    rate: Rate | None = None
    amount: NonNegativeMoney


class Discount(CanonicalModel):
    code: Label | None = None
    kind: Code | None = None  # e.g. "discount_code", "automatic", "manual"
    amount: NonNegativeMoney  # what it took off


class OrderLine(CanonicalModel):
    line_id: Id
    sku: Sku | None  # None: the store line has no SKU; never ""
    title: Name
    quantity: Quantity
    unit_price: NonNegativeMoney
    discounts: list[Discount] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    requires_shipping: bool = True
    variant_id: Id | None = None
    product_id: Id | None = None
    # what a line without a SKU is, when the store says: "gift_card", "tip", "custom",
    # "shipping_protection", …; it picks the ERP item (mapping kind ``non_sku_item``)
    kind: Code | None = None

    @property
    def discount_total(self) -> Decimal:
        return sum((d.amount.amount for d in self.discounts), Decimal(0))


class ShippingLine(CanonicalModel):
    code: Label | None = None
    title: Name
    carrier: Label | None = None
    price: NonNegativeMoney
    discounts: list[Discount] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)


class OrderCustomer(CanonicalModel):
    external_id: Id | None = None  # the store's customer id; None for a guest
    email: Email | None = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    phone: Phone | None = None
    is_guest: bool = False


class Payment(CanonicalModel):
    gateway: Label
    status: Code | None = None  # e.g. "paid", "authorized", "pending"
    amount: NonNegativeMoney | None = None
    reference: Label | None = None


class OrderTotals(CanonicalModel):
    subtotal: NonNegativeMoney
    discounts: NonNegativeMoney
    shipping: NonNegativeMoney
    tax: NonNegativeMoney
    total: NonNegativeMoney


class Order(CanonicalModel):
    schema_version: Literal[1] = ORDER_SCHEMA_VERSION
    source: Source  # connection id the order came from
    external_id: Id  # the store's order id
    number: RequiredLabel  # what people call it, e.g. "#1001"
    created_at: Moment
    updated_at: Moment | None = None
    currency: Currency
    presentment_currency: Currency | None = None
    exchange_rate: PositiveRate | None = None  # presentment → shop currency, when they differ
    taxes_included: bool = False
    status: Literal["open", "cancelled", "closed"] = "open"
    financial_status: Code | None = None
    cancelled_at: Moment | None = None
    cancel_reason: Name | None = None
    customer: OrderCustomer
    billing_address: Address | None = None
    shipping_address: Address | None = None
    lines: list[OrderLine]
    shipping_lines: list[ShippingLine] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)
    totals: OrderTotals
    note: Note | None = None
    tags: list[Label] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_currency(self) -> Order:
        """Every amount of the order is in the order's currency (payments may differ)."""
        for path, money in self.amounts():
            if money.currency != self.currency:
                raise ValueError(
                    f"{path}.currency: {money.currency} is not the order currency {self.currency}"
                )
        return self

    def amounts(self) -> list[tuple[str, Money]]:
        """Every amount of the order with its path: lines, shipping, discounts, taxes, totals."""
        out: list[tuple[str, Money]] = []

        def extras(path: str, discounts: list[Discount], taxes: list[TaxLine]) -> None:
            out.extend((f"{path}.discounts[{i}].amount", d.amount) for i, d in enumerate(discounts))
            out.extend((f"{path}.tax_lines[{i}].amount", t.amount) for i, t in enumerate(taxes))

        for i, line in enumerate(self.lines):
            out.append((f"lines[{i}].unit_price", line.unit_price))
            extras(f"lines[{i}]", line.discounts, line.tax_lines)
        for i, ship in enumerate(self.shipping_lines):
            out.append((f"shipping_lines[{i}].price", ship.price))
            extras(f"shipping_lines[{i}]", ship.discounts, ship.tax_lines)
        out.extend((f"discounts[{i}].amount", d.amount) for i, d in enumerate(self.discounts))
        out.extend((f"tax_lines[{i}].amount", t.amount) for i, t in enumerate(self.tax_lines))
        for name in ("subtotal", "discounts", "shipping", "tax", "total"):
            out.append((f"totals.{name}", getattr(self.totals, name)))
        return out

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
