"""Shopify webhooks → canonical events: signature, dedupe key, order parsing.

Pure functions, no I/O, so the ingest path stays fast (Shopify waits 5 s at most) and every
rule here can be tested without a server.

Money: every amount is the shop-currency string Shopify sends (``price``, ``total_price``…),
parsed straight into Decimal; bodies are decoded with ``parse_float=Decimal`` so even JSON
numbers (tax ``rate``) never pass through float. Ids are 64-bit integers in Shopify JSON and
become strings here, exactly as written.

Totals are Shopify's own figures (summed from the lines only when one is absent):
``subtotal`` is ``total_line_items_price`` (before discounts), ``discounts`` is
``total_discounts``, ``shipping`` is ``total_shipping_price_set`` (before discounts), ``tax``
is ``total_tax`` and ``total`` is ``total_price``; for a consistent order total = subtotal -
discounts + shipping (+ tax unless taxes are included). Original (as placed) figures are
used, not ``current_*`` ones: refunds and returns travel as their own flows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, Literal

from pydantic import ValidationError

from connectors._kit import signatures
from connectors._kit.headers import checked_header, header
from connectors.shopify.wire import (
    WireAddress,
    WireAllocation,
    WireDiscountApplication,
    WireLineItem,
    WireMoneySet,
    WireOrder,
    WireShippingLine,
    WireTaxLine,
)
from kernel.canonical.common import MAX_RATE
from kernel.canonical.order import Order
from kernel.canonical.validation import describe_errors, safe_text
from kernel.errors import PayloadError

HMAC_HEADER = "x-shopify-hmac-sha256"
TOPIC_HEADER = "x-shopify-topic"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"
EVENT_ID_HEADER = "x-shopify-event-id"
SHOP_DOMAIN_HEADER = "x-shopify-shop-domain"
# Header values the parser reads, and how long they may be: the topic is stored in a
# varchar(128) column; ids make the dedupe key (ingest stores one over 256 characters as its
# hash); Shopify's own are far shorter (UUIDs).
HEADER_LIMITS: dict[str, int] = {
    TOPIC_HEADER: 128,
    WEBHOOK_ID_HEADER: 1024,
    EVENT_ID_HEADER: 1024,
    SHOP_DOMAIN_HEADER: 255,
}
_HEADER_NAMES = {
    TOPIC_HEADER: "X-Shopify-Topic",
    WEBHOOK_ID_HEADER: "X-Shopify-Webhook-Id",
    EVENT_ID_HEADER: "X-Shopify-Event-Id",
    SHOP_DOMAIN_HEADER: "X-Shopify-Shop-Domain",
}

# Topics that carry a full order and what they mean canonically. orders/paid, orders/edited,
# orders/fulfilled… are always followed by an orders/updated with the same order, so they
# are stored and acknowledged but not turned into events (that would double the updates).
ORDER_TOPICS: dict[str, str] = {
    "orders/create": "order.created",
    "orders/updated": "order.updated",
    "orders/cancelled": "order.cancelled",
}

# presentment → shop rate: 10 decimal places is far below a cent on any order total
EXCHANGE_RATE_QUANTUM = Decimal("1e-10")


# --- signature and dedupe ------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value Shopify sends for ``body``: base64 HMAC-SHA256."""
    return signatures.compute(secret, body, encoding="base64")


def verify_hmac(body: bytes, header_value: str | None, secret: str) -> None:
    """Raise SignatureError unless ``header_value`` is the HMAC of the raw ``body``.

    The raw bytes are what Shopify signed; re-serialised JSON would not match. The compare
    is constant-time so the signature cannot be guessed byte by byte.
    """
    signatures.verify_hmac(
        secret, body, header_value, header="X-Shopify-Hmac-Sha256", encoding="base64"
    )


def check_headers(headers: Mapping[str, str]) -> None:
    """The headers the parser reads are printable ASCII of a sane length (else 400).

    Shopify's topics, ids and shop domains always are; anything else would end up in
    bounded columns, keys and logs.
    """
    for name, limit in HEADER_LIMITS.items():
        checked_header(headers, _HEADER_NAMES[name], limit=limit)


def dedupe_key(headers: Mapping[str, str], body: bytes) -> str:
    """The key that makes a re-sent delivery recognisable.

    ``X-Shopify-Webhook-Id`` is stable across Shopify's retries of one delivery. Without it,
    topic + ``X-Shopify-Event-Id`` (the event id alone is shared by different topics of one
    merchant action, so it must not be used alone); without both, the body's hash.
    """
    webhook_id = (header(headers, WEBHOOK_ID_HEADER) or "").strip()
    if webhook_id:
        return webhook_id
    event_id = (header(headers, EVENT_ID_HEADER) or "").strip()
    if event_id:
        topic = (header(headers, TOPIC_HEADER) or "").strip()
        return f"event:{topic}:{event_id}"
    return "sha256:" + hashlib.sha256(body).hexdigest()


# --- wire → canonical -------------------------------------------------------------------------


# The canonical order is built as plain data and validated once, so a value it refuses is
# reported with its whole path (``lines[2].title``), not just the name of the field.
Data = dict[str, Any]


class _Builder:
    """Turns one validated Shopify order into canonical data; holds the shop currency."""

    def __init__(self, wire: WireOrder) -> None:
        self.wire = wire
        self.currency = wire.currency

    def money(self, amount: Decimal) -> Data:
        return dict(amount=amount, currency=self.currency)

    def tax_lines(self, lines: list[WireTaxLine]) -> list[Data]:
        return [dict(title=t.title, rate=t.rate, amount=self.money(t.price)) for t in lines]

    def _application(self, index: int | None) -> WireDiscountApplication | None:
        apps = self.wire.discount_applications
        return apps[index] if index is not None and 0 <= index < len(apps) else None

    def discount(self, allocation: WireAllocation) -> Data:
        app = self._application(allocation.discount_application_index)
        return dict(
            code=_discount_label(app),
            kind=app.type if app else None,
            amount=self.money(allocation.amount),
        )

    def line(self, item: WireLineItem) -> Data:
        return dict(
            line_id=item.id,
            sku=(item.sku or "").strip() or None,
            title=item.name or item.title or "",
            quantity=item.quantity,
            unit_price=self.money(item.price),
            discounts=[self.discount(a) for a in item.discount_allocations],
            tax_lines=self.tax_lines(item.tax_lines),
            requires_shipping=item.requires_shipping,
            variant_id=item.variant_id,
            product_id=item.product_id,
        )

    def shipping_line(self, line: WireShippingLine) -> Data:
        return dict(
            code=line.code,
            title=line.title,
            carrier=line.source,
            price=self.money(line.price),
            discounts=[self.discount(a) for a in line.discount_allocations],
            tax_lines=self.tax_lines(line.tax_lines),
        )

    def order_discounts(self) -> list[Data]:
        """One entry per discount application with what it took off, else per code."""
        wire = self.wire
        if not wire.discount_applications:
            return [
                dict(code=c.code, kind="discount_code", amount=self.money(c.amount))
                for c in wire.discount_codes
            ]
        allocations = [a for li in wire.line_items for a in li.discount_allocations]
        allocations += [a for sl in wire.shipping_lines for a in sl.discount_allocations]
        return [
            dict(
                code=_discount_label(app),
                kind=app.type,
                amount=self.money(
                    sum(
                        (a.amount for a in allocations if a.discount_application_index == i),
                        Decimal(0),
                    )
                ),
            )
            for i, app in enumerate(wire.discount_applications)
        ]

    def totals(self) -> Data:
        wire = self.wire
        subtotal = wire.total_line_items_price
        if subtotal is None:
            subtotal = sum((li.price * li.quantity for li in wire.line_items), Decimal(0))
        shipping = (
            wire.total_shipping_price_set.shop_money.amount
            if wire.total_shipping_price_set
            else sum((sl.price for sl in wire.shipping_lines), Decimal(0))
        )
        tax = wire.total_tax
        if tax is None:
            tax = sum((t.price for t in wire.tax_lines), Decimal(0))
        return dict(
            subtotal=self.money(subtotal),
            discounts=self.money(
                Decimal(0) if wire.total_discounts is None else wire.total_discounts
            ),
            shipping=self.money(shipping),
            tax=self.money(tax),
            total=self.money(wire.total_price),
        )

    def customer(self) -> Data:
        """The store's customer, or a guest described by the order's contact details."""
        wire = self.wire
        order_email = wire.email or wire.contact_email
        cust = wire.customer
        if cust is not None and cust.id is not None:
            return dict(
                external_id=cust.id,
                email=cust.email or order_email,
                first_name=cust.first_name,
                last_name=cust.last_name,
                phone=cust.phone or wire.phone,
            )
        named = wire.billing_address or wire.shipping_address
        return dict(
            external_id=None,
            email=order_email,
            first_name=named.first_name if named else None,
            last_name=named.last_name if named else None,
            phone=wire.phone or (named.phone if named else None),
            is_guest=True,
        )

    def status(self) -> Literal["open", "cancelled", "closed"]:
        if self.wire.cancelled_at is not None:
            return "cancelled"
        return "closed" if self.wire.closed_at is not None else "open"

    def order(self, source: str) -> Order:
        wire = self.wire
        presentment = wire.presentment_currency or wire.currency
        return Order.model_validate(
            dict(
                source=source,
                external_id=wire.id,
                number=wire.name
                or (f"#{wire.order_number}" if wire.order_number else f"#{wire.id}"),
                created_at=wire.created_at,
                updated_at=wire.updated_at,
                currency=wire.currency,
                presentment_currency=presentment,
                exchange_rate=exchange_rate(wire) if presentment != wire.currency else None,
                taxes_included=wire.taxes_included,
                status=self.status(),
                financial_status=wire.financial_status,
                cancelled_at=wire.cancelled_at,
                cancel_reason=wire.cancel_reason,
                customer=self.customer(),
                billing_address=_address(wire.billing_address),
                shipping_address=_address(wire.shipping_address),
                lines=[self.line(li) for li in wire.line_items],
                shipping_lines=[self.shipping_line(sl) for sl in wire.shipping_lines],
                discounts=self.order_discounts(),
                tax_lines=self.tax_lines(wire.tax_lines),
                payments=[
                    dict(gateway=name, status=wire.financial_status)
                    for name in wire.payment_gateway_names
                    if name
                ],
                totals=self.totals(),
                note=wire.note or None,
                tags=[t.strip() for t in (wire.tags or "").split(",") if t.strip()],
            )
        )


def _discount_label(app: WireDiscountApplication | None) -> str | None:
    """The code a buyer typed, else the title of an automatic/manual discount."""
    if app is None:
        return None
    return app.code or app.title or None


def _address(wire: WireAddress | None) -> Data | None:
    if wire is None:
        return None

    def text(value: str | None) -> str | None:
        return (value.strip() or None) if value else None

    return dict(
        first_name=text(wire.first_name),
        last_name=text(wire.last_name),
        company=text(wire.company),
        line1=text(wire.address1),
        line2=text(wire.address2),
        city=text(wire.city),
        region=text(wire.province),
        region_code=text(wire.province_code),
        postal_code=text(wire.zip),
        country_code=text(wire.country_code),
        phone=text(wire.phone),
    )


def exchange_rate(wire: WireOrder) -> Decimal | None:
    """Presentment → shop currency rate, from the first money set with both sides non-zero.

    Shopify does not send the rate; shop money / presentment money of the same total is it.
    Rounded half-even to 10 places (declared here, so nothing downstream guesses). A rate no
    currency pair has (over 10^9, or so small it rounds to 0) is a PayloadError naming the
    money set.
    """
    for name in ("total_price_set", "total_line_items_price_set", "subtotal_price_set"):
        money_set: WireMoneySet | None = getattr(wire, name)
        if money_set is None:
            continue
        shop, shown = money_set.shop_money.amount, money_set.presentment_money.amount
        if shop and shown:
            with localcontext() as ctx:
                ctx.prec = 60  # amounts are < 10^12 with 6 places: exact enough to round
                rate = shop / shown
                if not 0 < rate < MAX_RATE:
                    rate = Decimal(0)
                else:
                    rate = rate.quantize(EXCHANGE_RATE_QUANTUM, rounding=ROUND_HALF_EVEN)
            if rate == 0:
                raise PayloadError(
                    f"{name}: shop_money / presentment_money ({shop} / {shown}) is no "
                    f"exchange rate: it must be above {EXCHANGE_RATE_QUANTUM} and below "
                    f"{MAX_RATE}"
                )
            return rate
    return None


def describe_validation_error(exc: ValidationError) -> str:
    """One readable line per problem, naming the field as written in Shopify's JSON."""
    return describe_errors(exc)


def parse_order(payload: Mapping[str, Any], source: str) -> Order:
    """The canonical Order for one Shopify order payload; PayloadError(422) says what is wrong."""
    try:
        wire = WireOrder.model_validate(payload)
    except ValidationError as exc:
        raise PayloadError(f"invalid Shopify order: {describe_validation_error(exc)}") from None
    try:
        return _Builder(wire).order(source)
    except ValidationError as exc:  # a value Shopify accepts but the canonical model does not
        raise PayloadError(
            f"order does not fit the canonical model: {describe_validation_error(exc)}"
        ) from None


# --- the webhook ----------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json(body: bytes) -> Any:
    """Decode a body with floats as Decimal; any failure is a 400 that says why."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise PayloadError(
            f"body is not valid JSON: {safe_text(str(exc), 200)}", status_code=400
        ) from None


def check_topic_fits(topic: str, payload: Mapping[str, Any]) -> None:
    """A body that contradicts its topic is refused (422), never booked as that topic.

    ``orders/cancelled`` is a cancelled order (``cancelled_at`` set); an ``orders/create``
    or ``orders/updated`` of a cancelled order is fine (Shopify sends ``orders/updated``
    after a cancel). Customer topics carry a customer, not an order; ``refunds/create``
    carries refund lines or transactions.
    """
    if topic == "orders/cancelled" and not payload.get("cancelled_at"):
        raise PayloadError(
            "cancelled_at: an orders/cancelled webhook must carry a cancelled order, "
            "and this one has no cancelled_at"
        )
    if topic.startswith("customers/") and "line_items" in payload:
        raise PayloadError(f"line_items: a {topic} webhook carries a customer, not an order")
    if topic == "refunds/create" and not (
        "refund_line_items" in payload or "transactions" in payload
    ):
        raise PayloadError(
            "refund_line_items: a refunds/create webhook carries refund_line_items or "
            "transactions, and this one has neither"
        )
