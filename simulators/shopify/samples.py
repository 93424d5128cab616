"""Realistic Shopify order payloads for simulators, demos and benchmarks.

Each order is Shopify's own documented ``orders/create`` sample (a verbatim copy lives next
to this file) with what differs between real orders replaced: 64-bit ids, number, buyer,
lines, quantities, and totals recomputed so they add up (the sample's own totals do not).
Money is written as Shopify writes it: strings with two decimals; tax ``rate`` is a JSON
number, as in Shopify. Amounts are rounded half-up to the cent (declared, never float).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

SAMPLE_PATH = Path(__file__).with_name("sample_orders_create.json")

# Above 2**53 on purpose: a parser that goes through float loses digits and tests notice.
ORDER_ID_BASE = 6_000_000_000_000_000_000
LINE_ID_BASE = 7_000_000_000_000_000_000
CUSTOMER_ID_BASE = 8_000_000_000_000_000_000
VARIANT_ID_BASE = 9_000_000_000_000_000_000
ORDER_NUMBER_BASE = 1000
CENT = Decimal("0.01")
BASE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

PEOPLE = (
    ("Ada", "Lovelace"),
    ("Grace", "Hopper"),
    ("Alan", "Turing"),
    ("Katherine", "Johnson"),
    ("Edsger", "Dijkstra"),
    ("Barbara", "Liskov"),
    ("Donald", "Knuth"),
    ("Margaret", "Hamilton"),
)
PLACES = (
    ("12 Market Street", "San Francisco", "California", "CA", "94103"),
    ("400 Broad Street", "Seattle", "Washington", "WA", "98109"),
    ("1 Infinite Loop", "Cupertino", "California", "CA", "95014"),
    ("77 Massachusetts Ave", "Cambridge", "Massachusetts", "MA", "02139"),
    ("350 Fifth Avenue", "New York", "New York", "NY", "10118"),
)


@cache
def _sample() -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    return sample


def sample_order() -> dict[str, Any]:
    """A fresh copy of Shopify's sample order, untouched."""
    return copy.deepcopy(_sample())


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class _Money:
    """Writes amounts and money sets in the order's shop and presentment currencies."""

    currency: str
    presentment_currency: str
    rate: Decimal  # presentment units per shop unit

    def text(self, amount: Decimal) -> str:
        return str(cents(amount))

    def set(self, amount: Decimal) -> dict[str, Any]:
        shown = amount if self.presentment_currency == self.currency else amount * self.rate
        return {
            "shop_money": {"amount": self.text(amount), "currency_code": self.currency},
            "presentment_money": {
                "amount": self.text(shown),
                "currency_code": self.presentment_currency,
            },
        }


def _variant_id(sku: str) -> int:
    """A stable variant id per SKU, so the same product looks the same across orders."""
    return VARIANT_ID_BASE + int(hashlib.sha256(sku.encode()).hexdigest()[:12], 16)


def _allocate(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split ``total`` over lines in proportion to ``weights``; the last line takes the rest."""
    whole = sum(weights, Decimal(0))
    if not total or not whole:
        return [Decimal(0) for _ in weights]
    shares = [cents(total * w / whole) for w in weights[:-1]]
    return [*shares, total - sum(shares, Decimal(0))]


def _tax_line(title: str, rate: Decimal, amount: Decimal, money: _Money) -> dict[str, Any]:
    return {
        "title": title,
        "rate": float(rate),  # Shopify sends the rate as a JSON number
        "price": money.text(amount),
        "price_set": money.set(amount),
        "channel_liable": False,
    }


def _line_items(
    n: int,
    skus: list[str],
    quantities: list[int],
    discounts: list[Decimal],
    tax_rate: Decimal | None,
    money: _Money,
) -> list[dict[str, Any]]:
    templates = _sample()["line_items"]
    lines = []
    for i, sku in enumerate(skus):
        line = copy.deepcopy(templates[i % len(templates)])
        price = Decimal(line["price"])
        taxable = price * quantities[i] - discounts[i]
        line.update(
            id=LINE_ID_BASE + n * 1000 + i,
            admin_graphql_api_id=f"gid://shopify/LineItem/{LINE_ID_BASE + n * 1000 + i}",
            sku=sku,
            variant_id=_variant_id(sku),
            quantity=quantities[i],
            current_quantity=quantities[i],
            fulfillable_quantity=quantities[i],
            price=money.text(price),
            price_set=money.set(price),
            total_discount="0.00",
            total_discount_set=money.set(Decimal(0)),
            tax_lines=[]
            if tax_rate is None
            else [_tax_line("Sales Tax", tax_rate, cents(taxable * tax_rate), money)],
            discount_allocations=[]
            if not discounts[i]
            else [
                {
                    "amount": money.text(discounts[i]),
                    "amount_set": money.set(discounts[i]),
                    "discount_application_index": 0,
                }
            ],
        )
        lines.append(line)
    return lines


def _buyer(n: int, guest: bool) -> dict[str, Any]:
    first, last = PEOPLE[n % len(PEOPLE)]
    street, city, region, region_code, postal = PLACES[n % len(PLACES)]
    email = f"{first}.{last}+{n}@example.com".lower()
    address = {
        "first_name": first,
        "last_name": last,
        "name": f"{first} {last}",
        "company": None,
        "address1": street,
        "address2": None,
        "city": city,
        "province": region,
        "province_code": region_code,
        "zip": postal,
        "country": "United States",
        "country_code": "US",
        "phone": f"+1555010{n % 10000:04d}",
        "latitude": None,
        "longitude": None,
    }
    customer = copy.deepcopy(_sample()["customer"])
    customer_id = CUSTOMER_ID_BASE + n
    customer.update(
        id=customer_id,
        admin_graphql_api_id=f"gid://shopify/Customer/{customer_id}",
        email=email,
        first_name=first,
        last_name=last,
        phone=None,
    )
    customer["default_address"] = {**address, "customer_id": customer_id, "default": True}
    return {
        "email": email,
        "contact_email": email,
        "billing_address": address,
        "shipping_address": dict(address),
        **({} if guest else {"customer": customer}),
    }


def _discount_fields(code: str, amount: Decimal, money: _Money) -> dict[str, Any]:
    if not amount:
        return {"discount_codes": [], "discount_applications": []}
    return {
        "discount_codes": [{"code": code, "amount": money.text(amount), "type": "fixed_amount"}],
        "discount_applications": [
            {
                "type": "discount_code",
                "code": code,
                "title": code,
                "description": None,
                "value": money.text(amount),
                "value_type": "fixed_amount",
                "allocation_method": "across",
                "target_selection": "all",
                "target_type": "line_item",
            }
        ],
    }


def _shipping_lines(n: int, price: Decimal, money: _Money) -> list[dict[str, Any]]:
    line = copy.deepcopy(_sample()["shipping_lines"][0])
    line.update(
        id=LINE_ID_BASE + n * 1000 + 999,
        price=money.text(price),
        price_set=money.set(price),
        discounted_price=money.text(price),
        discounted_price_set=money.set(price),
        current_discounted_price_set=money.set(price),
    )
    return [line]


def _totals(
    lines: list[dict[str, Any]], discount: Decimal, shipping: Decimal, money: _Money
) -> dict[str, Any]:
    """Every total and ``*_set`` field, recomputed from the lines so they agree."""
    items = sum((Decimal(li["price"]) * li["quantity"] for li in lines), Decimal(0))
    tax = sum((Decimal(t["price"]) for li in lines for t in li["tax_lines"]), Decimal(0))
    subtotal = items - discount
    total = subtotal + shipping + tax
    fields: dict[str, Any] = {}
    for name, amount in (
        ("total_line_items_price", items),
        ("subtotal_price", subtotal),
        ("total_discounts", discount),
        ("total_tax", tax),
        ("total_price", total),
    ):
        fields[name] = fields[f"current_{name}"] = money.text(amount)
        fields[f"{name}_set"] = fields[f"current_{name}_set"] = money.set(amount)
    del fields["current_total_line_items_price"], fields["current_total_line_items_price_set"]
    fields["total_shipping_price_set"] = money.set(shipping)
    fields["current_shipping_price_set"] = money.set(shipping)
    return fields


def _order_tax_lines(lines: list[dict[str, Any]], money: _Money) -> list[dict[str, Any]]:
    by_title: dict[tuple[str, float], Decimal] = {}
    for line in lines:
        for tax in line["tax_lines"]:
            key = (tax["title"], tax["rate"])
            by_title[key] = by_title.get(key, Decimal(0)) + Decimal(tax["price"])
    return [
        _tax_line(title, Decimal(repr(rate)), amount, money)
        for (title, rate), amount in by_title.items()
    ]


def _status_fields(created: datetime, cancelled: bool) -> dict[str, Any]:
    if cancelled:
        return {
            "cancelled_at": (created + timedelta(hours=1)).isoformat(),
            "cancel_reason": "customer",
            "financial_status": "voided",
            "updated_at": (created + timedelta(hours=1)).isoformat(),
            "total_outstanding": "0.00",
        }
    return {
        "cancelled_at": None,
        "cancel_reason": None,
        "financial_status": "paid",
        "updated_at": created.isoformat(),
        "total_outstanding": "0.00",
    }


def make_order(
    n: int,
    *,
    skus: list[str] | None = None,
    quantities: list[int] | None = None,
    guest: bool = False,
    cancelled: bool = False,
    discount: str | Decimal | None = None,
    discount_code: str = "WELCOME",
    tax_rate: str | Decimal | None = None,
    shipping: str | Decimal = "10.00",
    currency: str = "USD",
    presentment_currency: str | None = None,
    presentment_rate: str | Decimal = "0.92",
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Order ``n`` as a Shopify ``orders/create`` payload; same ``n`` and options, same order.

    ``skus`` gives one line per SKU (prices from the sample's lines, in turn); quantities
    default to 1, 2 or 3 varying with ``n``. ``discount`` is a fixed-amount code spread over the
    lines; ``tax_rate`` (e.g. ``"0.0725"``) taxes each line after its discount; with
    ``presentment_currency`` the buyer saw prices at ``presentment_rate`` per shop unit.
    """
    if n < 0:
        raise ValueError("n must be 0 or more")
    order = sample_order()
    skus = list(skus) if skus else [li["sku"] for li in order["line_items"]]
    qty = list(quantities) if quantities else [1 + (n + i) % 3 for i in range(len(skus))]
    if len(qty) != len(skus):
        raise ValueError("quantities must give one quantity per SKU")
    money = _Money(currency, presentment_currency or currency, Decimal(presentment_rate))
    rate = Decimal(tax_rate) if tax_rate is not None else None
    off = cents(Decimal(discount)) if discount is not None else Decimal(0)
    templates = order["line_items"]
    prices = [Decimal(templates[i % len(templates)]["price"]) for i in range(len(skus))]
    weights = [p * q for p, q in zip(prices, qty, strict=True)]
    if off < 0 or off > sum(weights, Decimal(0)):
        raise ValueError("discount must be between 0 and the sum of the lines")
    lines = _line_items(n, skus, qty, _allocate(off, weights), rate, money)
    ship = cents(Decimal(shipping))
    created = created_at or BASE_TIME + timedelta(minutes=n)
    order_id = ORDER_ID_BASE + n
    order.pop("customer", None)
    totals = _totals(lines, off, ship, money)
    order.update(
        id=order_id,
        admin_graphql_api_id=f"gid://shopify/Order/{order_id}",
        name=f"#{ORDER_NUMBER_BASE + n}",
        number=n,
        order_number=ORDER_NUMBER_BASE + n,
        token=hashlib.sha256(f"order-{n}".encode()).hexdigest()[:32],
        test=False,
        currency=currency,
        presentment_currency=money.presentment_currency,
        created_at=created.isoformat(),
        processed_at=created.isoformat(),
        payment_gateway_names=["shopify_payments"],
        line_items=lines,
        shipping_lines=_shipping_lines(n, ship, money) if ship else [],
        tax_lines=_order_tax_lines(lines, money),
        **_buyer(n, guest),
        **_discount_fields(discount_code, off, money),
        **totals,
        **_status_fields(created, cancelled),
    )
    return order
