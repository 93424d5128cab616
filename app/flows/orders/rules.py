"""Business rules of the orders flow: guests, amendments, tax differences, needed mappings.

Pure functions over canonical models; the delivery engine turns their answers into
directives (``tax_source``, ``guest_customer_id``), holds, parks and findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kernel.canonical.common import Address, Money
from kernel.canonical.order import Order, OrderLine, ShippingLine
from kernel.types import Finding

# the kinds a route can require besides sku (always required); their keys: kernel.mappings
MappingKind = Literal["payment_method", "shipping_method", "tax_code", "location"]


class OrderRules(BaseModel):
    """``rules.orders`` in the config file; editable at run time through the API."""

    model_config = ConfigDict(extra="forbid")

    tax_source: Literal["store", "erp"] = Field(
        default="store",
        description="store: send the store's tax lines as calculated at checkout; "
        "erp: send no tax and let the ERP compute it.",
    )
    tax_tolerance: Decimal = Field(
        default=Decimal("0.01"),
        ge=0,
        description="A difference between the store's and the ERP's tax total above this "
        "amount (in the order currency) is reported as a tax_difference finding.",
    )
    guest_strategy: Literal["create_customer", "shared_account", "reject"] = Field(
        default="create_customer",
        description="What to do with a guest checkout: create an ERP customer from the "
        "order's data, book it against one shared web-guest account, or reject it.",
    )
    guest_account_id: str | None = Field(
        default=None,
        description="ERP customer id of the shared web-guest account; required when "
        "guest_strategy is shared_account.",
    )
    amendments: Literal["apply_when_open", "hold"] = Field(
        default="apply_when_open",
        description="apply_when_open: send changes of an order to the ERP while it is open "
        "there; hold: every amendment waits for an operator's approval.",
    )
    required_mappings: list[MappingKind] = Field(
        default_factory=list,
        description="Mapping kinds every order must resolve before it is sent, besides sku "
        "(which is always required); a missing one parks the delivery.",
    )
    variant_sku_pattern: str | None = Field(
        default=None,
        description="Regular expression with a group named base, e.g. "
        "'^(?P<base>.+)-(XS|S|M|L|XL)$': a variant SKU the store generates for a configurable "
        "product that has no mapping of its own uses the mapping of its base SKU.",
    )

    @field_validator("variant_sku_pattern")
    @classmethod
    def _pattern_has_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if "base" not in compiled.groupindex:
            raise ValueError("the pattern needs a group named base: (?P<base>...)")
        return value

    @model_validator(mode="after")
    def _shared_account_needs_id(self) -> OrderRules:
        if self.guest_strategy == "shared_account" and not (self.guest_account_id or "").strip():
            raise ValueError(
                "guest_strategy 'shared_account' needs guest_account_id: the ERP customer id "
                "of the shared web-guest account that guest orders are booked against"
            )
        return self


# --- guests -------------------------------------------------------------------------------


@dataclass
class GuestDecision:
    action: Literal["create_customer", "shared_account", "reject", "not_guest"]
    reason: str


def is_guest(order: Order) -> bool:
    """A guest checkout: flagged by the store, or no store customer id to link to."""
    return order.customer.is_guest or not order.customer.external_id


def guest_decision(order: Order, rules: OrderRules) -> GuestDecision:
    """How the order's customer is booked in the ERP, with a reason an operator can read."""
    if not is_guest(order):
        return GuestDecision("not_guest", f"order {order.number} has a customer account")
    if rules.guest_strategy == "reject":
        return GuestDecision(
            "reject",
            f"order {order.number} is a guest checkout and rules.orders.guest_strategy is 'reject'",
        )
    if rules.guest_strategy == "shared_account":
        return GuestDecision(
            "shared_account",
            f"guest order {order.number} is booked against the shared account "
            f"{rules.guest_account_id}",
        )
    # create_customer: the e-mail is what identifies the guest next time (dedupe key)
    if not (order.customer.email or "").strip():
        return GuestDecision(
            "reject",
            f"guest order {order.number} has no e-mail address, so no customer record can "
            "be created for it (guest_strategy 'create_customer')",
        )
    return GuestDecision(
        "create_customer",
        f"guest order {order.number}: a customer is created from its data",
    )


# --- amendments ---------------------------------------------------------------------------

AmendmentKind = Literal[
    "shipping_address", "billing_address", "lines", "customer", "note", "shipping"
]


@dataclass
class Amendment:
    kinds: frozenset[str]
    details: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.kinds)


def _num(value: Decimal) -> str:
    """A quantity as people write it: 3 rather than 3.000."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def _money(value: Money) -> str:
    return f"{value.amount} {value.currency}"


def _address_changes(label: str, before: Address | None, after: Address | None) -> list[str]:
    if before is None and after is None:
        return []
    if before is None:
        return [f"{label} added"]
    if after is None:
        return [f"{label} removed"]
    old, new = before.model_dump(), after.model_dump()
    changes = [
        f"{field.replace('_', ' ')} {old[field] or '(empty)'} → {new[field] or '(empty)'}"
        for field in old
        if old[field] != new[field]
    ]
    return [f"{label} changed: {', '.join(changes)}"] if changes else []


def _line_changes(before: list[OrderLine], after: list[OrderLine]) -> list[str]:
    old = {line.line_id: line for line in before}
    new = {line.line_id: line for line in after}
    details: list[str] = []
    for line_id, line in old.items():
        if line_id not in new:
            details.append(f"line {line_id} removed ({line.sku or line.title})")
    for line_id, line in new.items():
        was = old.get(line_id)
        if was is None:
            details.append(
                f"line {line_id} added: {line.sku or line.title} x {_num(line.quantity)}"
            )
            continue
        if was.sku != line.sku:
            details.append(f"line {line_id} sku {was.sku} → {line.sku}")
        if was.quantity != line.quantity:
            details.append(f"line {line_id} quantity {_num(was.quantity)} → {_num(line.quantity)}")
        if was.unit_price != line.unit_price:
            details.append(
                f"line {line_id} unit price {_money(was.unit_price)} → {_money(line.unit_price)}"
            )
    return details


def _shipping_signature(lines: list[ShippingLine]) -> list[tuple[object, ...]]:
    return [(s.code, s.title, s.carrier, s.price.amount, s.price.currency) for s in lines]


def _shipping_text(lines: list[ShippingLine]) -> str:
    if not lines:
        return "(none)"
    return ", ".join(f"{s.title} {_money(s.price)}" for s in lines)


def diff_orders(before: Order, after: Order) -> Amendment:
    """What an amendment changed, as kinds (for the policy) and sentences (for people)."""
    kinds: set[str] = set()
    details: list[str] = []

    for kind, label, old_addr, new_addr in (
        ("shipping_address", "shipping address", before.shipping_address, after.shipping_address),
        ("billing_address", "billing address", before.billing_address, after.billing_address),
    ):
        changes = _address_changes(label, old_addr, new_addr)
        if changes:
            kinds.add(kind)
            details.extend(changes)

    line_changes = _line_changes(before.lines, after.lines)
    if line_changes:
        kinds.add("lines")
        details.extend(line_changes)

    old_c, new_c = before.customer.model_dump(), after.customer.model_dump()
    customer_changes = [
        f"{field.replace('_', ' ')} {old_c[field]} → {new_c[field]}"
        for field in old_c
        if old_c[field] != new_c[field]
    ]
    if customer_changes:
        kinds.add("customer")
        details.append(f"customer changed: {', '.join(customer_changes)}")

    if (before.note or "") != (after.note or ""):
        kinds.add("note")
        details.append(f"note changed: {before.note or '(empty)'} → {after.note or '(empty)'}")

    if _shipping_signature(before.shipping_lines) != _shipping_signature(after.shipping_lines):
        kinds.add("shipping")
        details.append(
            f"shipping changed: {_shipping_text(before.shipping_lines)} → "
            f"{_shipping_text(after.shipping_lines)}"
        )

    return Amendment(kinds=frozenset(kinds), details=details)


# --- tax ----------------------------------------------------------------------------------


def tax_difference(store_tax: Money, erp_tax: Money, tolerance: Decimal) -> Finding | None:
    """A finding when the ERP's tax differs from the store's by more than ``tolerance``."""
    data = {
        "store_tax": str(store_tax.amount),
        "erp_tax": str(erp_tax.amount),
        "store_currency": store_tax.currency,
        "erp_currency": erp_tax.currency,
        "tolerance": str(tolerance),
    }
    if store_tax.currency != erp_tax.currency:
        # amounts in two currencies cannot be compared; that is itself worth a look
        return Finding(
            kind="tax_difference",
            message=f"store tax {_money(store_tax)} and ERP tax {_money(erp_tax)} are in "
            "different currencies",
            data=data,
        )
    difference = erp_tax.amount - store_tax.amount
    if abs(difference) <= tolerance:
        return None
    return Finding(
        kind="tax_difference",
        message=f"store tax {_money(store_tax)} vs ERP tax {_money(erp_tax)}: difference "
        f"{difference} {store_tax.currency} exceeds the tolerance of {tolerance}",
        data={**data, "difference": str(difference)},
    )


# --- mappings -----------------------------------------------------------------------------


def variant_base(sku: str, pattern: str | None) -> str | None:
    """The base SKU of a store-generated variant SKU, by the configured pattern."""
    if not pattern:
        return None
    match = re.fullmatch(pattern, sku) or re.match(pattern, sku)
    base = match.group("base") if match else None
    return base if base and base != sku else None
