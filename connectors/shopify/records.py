"""Shopify webhooks other than orders → canonical events: customers, erasure, refunds, returns.

Pure functions like ``inbound`` (whose id/amount coercions and address mapping they reuse).

- ``customers/create`` / ``customers/update`` → ``customer.upserted``. The canonical Customer
  has no tags; a tag ``group:<name>`` (prefix configurable) sets ``group``. Marketing consent
  is ``email_marketing_consent.state == "subscribed"``, else the legacy ``accepts_marketing``.
- ``customers/redact`` → ``customer.erase_requested`` (the compliance payload carries no
  time; ``X-Shopify-Triggered-At`` is used, else the time of parsing).
- ``refunds/create`` → ``refund.created``: amount = successful ``kind: refund``
  transactions; method = their gateway; lines from ``refund_line_items`` (``line_item.sku``,
  ``quantity``, ``subtotal``); shipping from ``order_adjustments`` of kind ``shipping_refund``.
- ``returns/request`` → ``return.requested``. MODELED: no verbatim sample was found, so the
  payload read here follows the REST-style serialisation of the Return resource:
  ``{"id", "name", "status", "order": {"id", "name"}, "created_at", "return_line_items":
  [{"id", "quantity", "return_reason", "return_reason_note", "customer_note",
  "fulfillment_line_item": {"line_item": {"id", "sku"}}}]}``. When a line carries no SKU,
  ``sku`` is empty and ``order_line_id`` says which order line it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from connectors._kit.headers import header
from connectors.shopify.inbound import _address
from connectors.shopify.wire import ShopifyId, WireAddress, _Wire
from kernel.canonical.common import (
    EARLIEST,
    LATEST,
    Amount,
    Currency,
    Moment,
    NonNegativeAmount,
    Quantity,
)
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.returns import Refund, Return
from kernel.canonical.validation import describe_errors
from kernel.errors import PayloadError

GROUP_TAG_PREFIX = "group:"
TRIGGERED_AT_HEADER = "x-shopify-triggered-at"


# --- wire shapes (only the fields read) -------------------------------------------------------


class WireCustomerAddress(WireAddress):
    default: bool = False


class WireConsent(_Wire):
    state: str | None = None


class WireFullCustomer(_Wire):
    id: ShopifyId
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    tags: str | None = None
    tax_exempt: bool = False
    tax_exemptions: list[str] = Field(default_factory=list)
    accepts_marketing: bool | None = None
    email_marketing_consent: WireConsent | None = None
    addresses: list[WireCustomerAddress] = Field(default_factory=list)
    default_address: WireCustomerAddress | None = None
    created_at: Moment | None = None
    updated_at: Moment | None = None


class WireRedactCustomer(_Wire):
    id: ShopifyId | None = None
    email: str | None = None
    phone: str | None = None


class WireRedact(_Wire):
    customer: WireRedactCustomer


class WireRefundLineItem(_Wire):
    sku: str | None = None
    id: ShopifyId | None = None


class WireRefundLine(_Wire):
    line_item_id: ShopifyId | None = None
    quantity: Quantity
    subtotal: NonNegativeAmount = Decimal(0)
    line_item: WireRefundLineItem | None = None


class WireTransaction(_Wire):
    kind: str
    status: str | None = None
    amount: NonNegativeAmount
    currency: Currency | None = None
    gateway: str | None = None


class WireAdjustment(_Wire):
    kind: str | None = None
    amount: Amount


class WireRefund(_Wire):
    id: ShopifyId
    order_id: ShopifyId
    created_at: Moment
    refund_line_items: list[WireRefundLine] = Field(default_factory=list)
    transactions: list[WireTransaction] = Field(default_factory=list)
    order_adjustments: list[WireAdjustment] = Field(default_factory=list)


class WireReturnLineItemRef(_Wire):
    id: ShopifyId | None = None
    sku: str | None = None


class WireFulfillmentLine(_Wire):
    line_item: WireReturnLineItemRef | None = None


class WireReturnLine(_Wire):
    quantity: Quantity
    return_reason: str | None = None
    return_reason_note: str | None = None
    customer_note: str | None = None
    line_item: WireReturnLineItemRef | None = None  # accepted too: some shapes inline it
    fulfillment_line_item: WireFulfillmentLine | None = None


class WireReturnOrder(_Wire):
    id: ShopifyId
    name: str | None = None


class WireReturn(_Wire):
    id: ShopifyId
    name: str | None = None
    status: str | None = None
    order: WireReturnOrder
    created_at: Moment | None = None
    requested_at: Moment | None = None
    return_line_items: list[WireReturnLine]


def _validate(model: type[BaseModel], payload: Mapping[str, Any], what: str) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise PayloadError(f"invalid Shopify {what}: {describe_errors(exc)}") from None


def _canonical(build: Callable[[], Any], what: str) -> Any:
    try:
        return build()
    except ValidationError as exc:
        raise PayloadError(
            f"{what} does not fit the canonical model: {describe_errors(exc)}"
        ) from None


def triggered_at(headers: Mapping[str, str]) -> datetime:
    """When Shopify triggered the delivery; now when the header is absent or unreadable
    (or names a time no delivery can have)."""
    text = (header(headers, TRIGGERED_AT_HEADER) or "").strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00")) if 0 < len(text) < 64 else None
    except ValueError:
        when = None
    if when is None:
        return datetime.now(UTC)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when if EARLIEST <= when <= LATEST else datetime.now(UTC)


# --- customers --------------------------------------------------------------------------------


def parse_customer(
    payload: Mapping[str, Any], source: str, *, group_prefix: str = GROUP_TAG_PREFIX
) -> Customer:
    wire: WireFullCustomer = _validate(WireFullCustomer, payload, "customer")
    addresses = list(wire.addresses)
    default_index: int | None = next((i for i, a in enumerate(addresses) if a.default), None)
    if default_index is None and wire.default_address is not None:
        addresses.insert(0, wire.default_address)  # a payload with only default_address
        default_index = 0
    tags = [t.strip() for t in (wire.tags or "").split(",") if t.strip()]
    group = next((t[len(group_prefix) :] for t in tags if t.startswith(group_prefix)), None)
    consent = wire.email_marketing_consent
    marketing = (
        consent.state == "subscribed"
        if consent is not None and consent.state
        else bool(wire.accepts_marketing)
    )
    default = addresses[default_index] if default_index is not None else None
    when = wire.updated_at or wire.created_at or datetime.now(UTC)
    return _canonical(
        lambda: Customer(
            source=source,
            external_id=wire.id,
            email=(wire.email or "").strip() or None,
            first_name=wire.first_name,
            last_name=wire.last_name,
            company=(default.company or None) if default else None,
            phone=wire.phone,
            addresses=[a for a in (_address(w) for w in addresses) if a is not None],
            default_billing=default_index,
            default_shipping=default_index,
            group=group or None,
            tax_exempt=wire.tax_exempt or bool(wire.tax_exemptions),
            tax_exemption_certificate=", ".join(wire.tax_exemptions) or None,
            accepts_marketing=marketing,
            updated_at=when,
        ),
        "customer",
    )


def parse_erasure(
    payload: Mapping[str, Any], source: str, requested_at: datetime
) -> ErasureRequest:
    wire: WireRedact = _validate(WireRedact, payload, "customers/redact payload")
    who = wire.customer
    if not (who.id or who.email):
        raise PayloadError("customers/redact names no customer: customer.id and email are empty")
    return _canonical(
        lambda: ErasureRequest(
            source=source,
            customer_external_id=who.id,
            email=who.email,
            phone=who.phone,
            requested_at=requested_at,
        ),
        "erase request",
    )


# --- refunds ----------------------------------------------------------------------------------


def _refund_currency(wire: WireRefund, raw: Mapping[str, Any]) -> str | None:
    for txn in wire.transactions:
        if txn.currency:
            return txn.currency
    for line in raw.get("refund_line_items") or []:
        money = _dig(line, "subtotal_set", "shop_money")
        code = money.get("currency_code")
        if isinstance(code, str) and code:
            return code
    return None


def _dig(value: Any, *keys: str) -> Mapping[str, Any]:
    """``value[k1][k2]…`` when every step is an object, else {} (fields we read loosely)."""
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def parse_refund(payload: Mapping[str, Any], source: str) -> Refund:
    wire: WireRefund = _validate(WireRefund, payload, "refund")
    # Only money that actually went back counts: failed/pending attempts are not a refund.
    refunds = [
        t for t in wire.transactions if t.kind == "refund" and (t.status or "success") == "success"
    ]
    currency = _refund_currency(wire, payload)
    if currency is None:
        raise PayloadError(
            "refund has no currency: no transaction currency and no refund line subtotal_set"
        )

    # nested parts as plain data: the Refund validates them with their whole path
    def money(amount: Decimal) -> dict[str, Any]:
        return {"amount": amount, "currency": currency}

    shipping = -sum(
        (a.amount for a in wire.order_adjustments if a.kind == "shipping_refund"), Decimal(0)
    )
    gateways = sorted({t.gateway for t in refunds if t.gateway})
    return _canonical(
        lambda: Refund(
            source=source,
            external_id=wire.id,
            order_key=f"{source}:order:{wire.order_id}",
            amount=money(sum((t.amount for t in refunds), Decimal(0))),
            method=", ".join(gateways) or None,
            lines=[
                {
                    "sku": ((li.line_item.sku if li.line_item else None) or "").strip(),
                    "quantity": li.quantity,
                    "amount": money(li.subtotal),
                }
                for li in wire.refund_line_items
            ],
            shipping=money(shipping) if shipping else None,
            created_at=wire.created_at,
        ),
        "refund",
    )


# --- returns ----------------------------------------------------------------------------------


def _return_line(line: WireReturnLine) -> dict[str, Any]:
    ref = line.line_item or (
        line.fulfillment_line_item.line_item if line.fulfillment_line_item else None
    )
    reason = line.return_reason
    note = line.return_reason_note or line.customer_note
    return {
        "sku": ((ref.sku if ref else None) or "").strip(),
        "quantity": line.quantity,
        "order_line_id": ref.id if ref else None,
        "reason": f"{reason}: {note}" if reason and note else (reason or note),
    }


def parse_return(payload: Mapping[str, Any], source: str, fallback_time: datetime) -> Return:
    wire: WireReturn = _validate(WireReturn, payload, "return")
    return _canonical(
        lambda: Return(
            source=source,
            external_id=wire.id,
            order_key=f"{source}:order:{wire.order.id}",
            order_number=wire.order.name,
            rma_number=wire.name,
            status="requested",
            lines=[_return_line(li) for li in wire.return_line_items],
            requested_at=wire.requested_at or wire.created_at or fallback_time,
        ),
        "return",
    )


# --- dispatch ---------------------------------------------------------------------------------

RECORD_TOPICS: dict[str, str] = {
    "customers/create": "customer.upserted",
    "customers/update": "customer.upserted",
    "customers/redact": "customer.erase_requested",
    "refunds/create": "refund.created",
    "returns/request": "return.requested",
}


def record_events(
    topic: str, payload: Mapping[str, Any], headers: Mapping[str, str], source: str
) -> list[CanonicalEvent]:
    """Events for a non-order topic (empty for topics we do not translate)."""
    event_type = RECORD_TOPICS.get(topic)
    if event_type is None:
        return []
    if topic == "customers/redact":
        erase = parse_erasure(payload, source, triggered_at(headers))
        return [make_event(event_type, erase, erase.requested_at)]
    if topic == "refunds/create":
        refund = parse_refund(payload, source)
        return [make_event(event_type, refund, refund.created_at)]
    if topic == "returns/request":
        ret = parse_return(payload, source, triggered_at(headers))
        return [make_event(event_type, ret, ret.requested_at)]
    customer = parse_customer(payload, source)
    return [make_event(event_type, customer, customer.updated_at)]
