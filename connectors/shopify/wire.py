"""The Shopify order as it arrives: pydantic models of the fields ``inbound`` reads.

Ids, amounts, quantities and times are the canonical types, so a value the canonical model
would refuse is refused here already, under the name Shopify gives the field
(``line_items[2].quantity``). Ids are 64-bit integers in Shopify JSON and become strings
here, exactly as written.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from kernel.canonical.common import (
    Currency,
    Id,
    Moment,
    NonNegativeAmount,
    Quantity,
    Rate,
)


def _id_text(value: object) -> object:
    """Ids are 64-bit ints; keep every digit by turning them into text before anything else."""
    if isinstance(value, bool):
        raise ValueError("must be an id, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal | float):
        raise ValueError(
            "must be a whole-number id; a number with a fraction or exponent has lost digits"
        )
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


# Ids, amounts, quantities and times are the canonical types, so a value the canonical model
# would refuse is refused here already, under the name Shopify gives the field
# (``line_items[2].quantity``). Amounts arrive as strings; a float (from a caller's plain
# json.loads) keeps its repr. Money Shopify sends as a positive figure is NonNegativeAmount;
# ``Amount`` (signed) is for adjustments.
ShopifyId = Annotated[Id, BeforeValidator(_id_text)]
Price = NonNegativeAmount


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireMoney(_Wire):
    amount: Price
    currency_code: Currency


class WireMoneySet(_Wire):
    shop_money: WireMoney
    presentment_money: WireMoney


class WireTaxLine(_Wire):
    title: str
    price: Price
    rate: Rate | None = None


class WireAllocation(_Wire):
    amount: Price
    discount_application_index: int | None = Field(default=None, ge=0)


class WireDiscountApplication(_Wire):
    type: str | None = None  # discount_code, automatic, manual, script
    code: str | None = None
    title: str | None = None


class WireDiscountCode(_Wire):
    code: str
    amount: Price


class WireLineItem(_Wire):
    id: ShopifyId
    sku: str | None = None
    name: str | None = None
    title: str | None = None
    quantity: Quantity
    price: Price
    requires_shipping: bool = True
    variant_id: ShopifyId | None = None
    product_id: ShopifyId | None = None
    tax_lines: list[WireTaxLine] = Field(default_factory=list)
    discount_allocations: list[WireAllocation] = Field(default_factory=list)


class WireShippingLine(_Wire):
    code: str | None = None
    title: str
    source: str | None = None
    price: Price
    tax_lines: list[WireTaxLine] = Field(default_factory=list)
    discount_allocations: list[WireAllocation] = Field(default_factory=list)


class WireAddress(_Wire):
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    province_code: str | None = None
    zip: str | None = None
    country_code: str | None = None
    phone: str | None = None


class WireCustomer(_Wire):
    id: ShopifyId | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None


class WireOrder(_Wire):
    id: ShopifyId
    name: str | None = None
    order_number: int | None = Field(default=None, ge=0, lt=10**18)
    created_at: Moment
    updated_at: Moment | None = None
    currency: Currency
    presentment_currency: Currency | None = None
    taxes_included: bool = False
    financial_status: str | None = None
    cancelled_at: Moment | None = None
    cancel_reason: str | None = None
    closed_at: Moment | None = None
    email: str | None = None
    contact_email: str | None = None
    phone: str | None = None
    note: str | None = None
    tags: str | None = None
    customer: WireCustomer | None = None
    billing_address: WireAddress | None = None
    shipping_address: WireAddress | None = None
    line_items: list[WireLineItem]
    shipping_lines: list[WireShippingLine] = Field(default_factory=list)
    discount_codes: list[WireDiscountCode] = Field(default_factory=list)
    discount_applications: list[WireDiscountApplication] = Field(default_factory=list)
    tax_lines: list[WireTaxLine] = Field(default_factory=list)
    payment_gateway_names: list[str] = Field(default_factory=list)
    total_line_items_price: Price | None = None
    total_discounts: Price | None = None
    total_shipping_price_set: WireMoneySet | None = None
    total_tax: Price | None = None
    total_price: Price
    total_price_set: WireMoneySet | None = None
    subtotal_price_set: WireMoneySet | None = None
    total_line_items_price_set: WireMoneySet | None = None
