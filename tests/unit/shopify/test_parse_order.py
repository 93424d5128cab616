"""Shopify's order JSON becomes the canonical Order with every amount exact."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from connectors.shopify.inbound import load_json, parse_order
from kernel.canonical.common import Address, Money
from kernel.errors import PayloadError
from simulators.shopify.samples import make_order
from tests.unit.shopify.conftest import SOURCE, fixture_bytes, fixture_order

EST = timezone(timedelta(hours=-5))


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def parsed_fixture() -> Any:
    return parse_order(load_json(fixture_bytes()), SOURCE)


def roundtrip(payload: dict[str, Any]) -> Any:
    """Through bytes, as a webhook arrives."""
    return parse_order(load_json(json.dumps(payload).encode()), SOURCE)


def test_identity_and_dates_of_the_real_sample() -> None:
    order = parsed_fixture()
    assert order.source == SOURCE
    assert order.external_id == "820982911946154508"
    assert order.entity_key == "shop-eu:order:820982911946154508"
    assert order.number == "#9999"
    assert order.created_at == datetime(2021, 12, 31, 19, 0, tzinfo=EST)
    assert order.updated_at == datetime(2021, 12, 31, 19, 0, tzinfo=EST)
    assert order.tags == ["tag1", "tag2"]
    assert order.note is None


def test_totals_of_the_real_sample_are_exact_decimals() -> None:
    totals = parsed_fixture().totals
    assert totals.subtotal == usd("369.97")  # total_line_items_price, before discounts
    assert totals.discounts == usd("20.00")
    assert totals.shipping == usd("10.00")
    assert totals.tax == usd("0.00")
    assert totals.total == usd("359.97")
    assert str(totals.total.amount) == "359.97"  # scale kept as Shopify wrote it
    amounts = [totals.subtotal, totals.discounts, totals.shipping, totals.tax, totals.total]
    assert all(type(m.amount) is Decimal for m in amounts)


def test_lines_of_the_real_sample() -> None:
    lines = parsed_fixture().lines
    assert [(li.line_id, li.sku, li.title, li.quantity, li.unit_price) for li in lines] == [
        ("487817672276298554", "SKU2006-001", "Aviator sunglasses", Decimal(1), usd("89.99")),
        ("976318377106520349", "SKU2006-020", "Mid-century lounger", Decimal(1), usd("159.99")),
        ("315789986012684393", "SKU2006-035", "Coffee table", Decimal(1), usd("119.99")),
    ]
    first = lines[0]
    assert first.product_id == "788032119674292922"
    assert first.variant_id is None  # the sample has variant_id: null
    assert first.requires_shipping is True
    assert first.discounts == [] and first.tax_lines == []


def test_shipping_currency_status_and_payments_of_the_real_sample() -> None:
    order = parsed_fixture()
    (shipping,) = order.shipping_lines
    assert (shipping.title, shipping.code, shipping.carrier) == (
        "Generic Shipping",
        None,
        "shopify",
    )
    assert shipping.price == usd("10.00")
    assert order.currency == "USD" and order.presentment_currency == "USD"
    assert order.exchange_rate is None
    assert order.taxes_included is False
    assert order.tax_lines == [] and order.discounts == []
    assert order.financial_status == "voided"
    assert [(p.gateway, p.status) for p in order.payments] == [
        ("visa", "voided"),
        ("bogus", "voided"),
    ]
    # the sample is a cancelled order
    assert order.status == "cancelled"
    assert order.cancel_reason == "customer"
    assert order.cancelled_at == datetime(2021, 12, 31, 19, 0, tzinfo=EST)


def test_customer_and_addresses_of_the_real_sample() -> None:
    order = parsed_fixture()
    customer = order.customer
    assert customer.external_id == "115310627314723954"
    assert (customer.email, customer.first_name, customer.last_name) == (
        "john@example.com",
        "John",
        "Smith",
    )
    assert customer.is_guest is False
    expected = Address(
        first_name="Steve",
        last_name="Shipper",
        company="Shipping Company",
        line1="123 Shipping Street",
        line2=None,
        city="Shippington",
        region="Kentucky",
        region_code="KY",
        postal_code="40003",
        country_code="US",
        phone="555-555-SHIP",
    )
    assert order.billing_address == expected
    assert order.shipping_address == expected


def test_sixty_four_bit_ids_keep_every_digit() -> None:
    payload = fixture_order()
    payload["id"] = 2**63 - 1
    payload["line_items"][0]["id"] = 9_007_199_254_740_993  # 2**53 + 1: float would round it
    payload["customer"]["id"] = 9_223_372_036_854_775_806
    order = roundtrip(payload)
    assert order.external_id == "9223372036854775807"
    assert order.lines[0].line_id == "9007199254740993"
    assert order.customer.external_id == "9223372036854775806"
    assert order.model_dump(mode="json")["external_id"] == "9223372036854775807"


def test_ids_sent_as_strings_are_kept() -> None:
    payload = fixture_order()
    payload["id"] = "820982911946154508"
    assert roundtrip(payload).external_id == "820982911946154508"


def test_open_order_is_open() -> None:
    payload = fixture_order()
    payload.update(cancelled_at=None, cancel_reason=None, financial_status="paid")
    order = roundtrip(payload)
    assert order.status == "open" and order.cancelled_at is None and order.cancel_reason is None


def test_closed_order_is_closed() -> None:
    payload = fixture_order()
    payload.update(cancelled_at=None, closed_at="2022-01-02T10:00:00-05:00")
    assert roundtrip(payload).status == "closed"


def test_guest_order_takes_contact_from_the_order() -> None:
    order = roundtrip(make_order(4, guest=True))
    customer = order.customer
    assert customer.is_guest is True and customer.external_id is None
    assert customer.email == "edsger.dijkstra+4@example.com"
    assert (customer.first_name, customer.last_name) == ("Edsger", "Dijkstra")


def test_null_customer_is_a_guest() -> None:
    payload = fixture_order()
    payload["customer"] = None
    customer = roundtrip(payload).customer
    assert customer.is_guest is True
    assert customer.email == "jon@example.com"  # the order's email
    assert (customer.first_name, customer.last_name) == ("Steve", "Shipper")  # billing name


def test_discounts_and_taxes_per_line_and_per_order() -> None:
    order = roundtrip(make_order(2, skus=["A", "B"], discount="25.00", tax_rate="0.0725"))
    # order 2: A = 89.99 x 3, B = 159.99 x 1; 25.00 split in proportion to line totals
    a, b = order.lines
    assert (a.quantity, b.quantity) == (Decimal(3), Decimal(1))
    assert [d.amount.amount for d in a.discounts] == [Decimal("15.70")]
    assert [d.amount.amount for d in b.discounts] == [Decimal("9.30")]
    assert {(d.code, d.kind) for d in a.discounts + b.discounts} == {("WELCOME", "discount_code")}
    assert [(t.title, t.rate, t.amount.amount) for t in a.tax_lines] == [
        ("Sales Tax", Decimal("0.0725"), Decimal("18.43"))
    ]
    assert [(t.rate, t.amount.amount) for t in b.tax_lines] == [
        (Decimal("0.0725"), Decimal("10.93"))
    ]
    assert [(d.code, d.kind, d.amount.amount) for d in order.discounts] == [
        ("WELCOME", "discount_code", Decimal("25.00"))
    ]
    assert [(t.title, t.amount.amount) for t in order.tax_lines] == [
        ("Sales Tax", Decimal("29.36"))
    ]
    t = order.totals
    assert (t.subtotal.amount, t.discounts.amount, t.shipping.amount, t.tax.amount) == (
        Decimal("429.96"),
        Decimal("25.00"),
        Decimal("10.00"),
        Decimal("29.36"),
    )
    assert t.total.amount == Decimal("444.32")


def test_tax_rate_sent_as_float_stays_exact_without_decimal_decoding() -> None:
    payload = make_order(1, tax_rate="0.0725")
    payload = json.loads(json.dumps(payload))  # plain json.loads: rate is a float here
    assert isinstance(payload["line_items"][0]["tax_lines"][0]["rate"], float)
    order = parse_order(payload, SOURCE)
    assert order.lines[0].tax_lines[0].rate == Decimal("0.0725")


def test_automatic_discount_is_named_by_its_title() -> None:
    payload = fixture_order()
    payload["discount_applications"] = [
        {"type": "automatic", "title": "Summer sale", "value": "10.0", "value_type": "percentage"}
    ]
    payload["line_items"][0]["discount_allocations"] = [
        {"amount": "9.00", "discount_application_index": 0}
    ]
    payload["shipping_lines"][0]["discount_allocations"] = [
        {"amount": "1.00", "discount_application_index": 0}
    ]
    order = roundtrip(payload)
    assert [(d.code, d.kind, d.amount) for d in order.lines[0].discounts] == [
        ("Summer sale", "automatic", usd("9.00"))
    ]
    assert order.shipping_lines[0].discounts[0].amount == usd("1.00")
    assert [(d.code, d.amount) for d in order.discounts] == [("Summer sale", usd("10.00"))]


def test_discount_codes_without_applications_are_kept() -> None:
    payload = fixture_order()
    payload["discount_codes"] = [{"code": "SPRING", "amount": "20.00", "type": "fixed_amount"}]
    assert [(d.code, d.kind, d.amount) for d in roundtrip(payload).discounts] == [
        ("SPRING", "discount_code", usd("20.00"))
    ]


def test_presentment_currency_gives_an_exchange_rate() -> None:
    order = roundtrip(make_order(1, presentment_currency="EUR", presentment_rate="0.92"))
    assert order.currency == "USD" and order.presentment_currency == "EUR"
    # total 789.94 USD shown as 726.74 EUR: presentment → shop = 789.94 / 726.74
    assert order.totals.total == usd("789.94")
    assert order.exchange_rate == Decimal("1.0869637009")
    assert isinstance(order.exchange_rate, Decimal)


def test_taxes_included_is_carried() -> None:
    payload = fixture_order()
    payload["taxes_included"] = True
    assert roundtrip(payload).taxes_included is True


def test_empty_sku_is_no_sku() -> None:
    payload = fixture_order()
    payload["line_items"][0]["sku"] = ""
    payload["line_items"][1]["sku"] = None
    skus = [li.sku for li in roundtrip(payload).lines]
    assert skus == [None, None, "SKU2006-035"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda o: o.pop("line_items"), "line_items: Field required"),
        (lambda o: o.pop("id"), "id: Field required"),
        (lambda o: o.pop("currency"), "currency: Field required"),
        (lambda o: o.update(currency="usd"), "currency: String should match pattern"),
        (lambda o: o.update(total_price="lots"), "total_price: 'lots' is not"),
        (lambda o: o["line_items"][1].update(price=None), "line_items[1].price"),
        (lambda o: o["line_items"][0].pop("id"), "line_items[0].id: Field required"),
        (lambda o: o.update(line_items={}), "line_items: Input should be a valid list"),
        (lambda o: o.update(created_at="yesterday"), "created_at: Input should be a valid"),
        (lambda o: o.update(id=True), "id: must be an id, not a boolean"),
        (lambda o: o.update(total_price="NaN"), "total_price: must be a finite"),
    ],
)
def test_invalid_orders_are_422_naming_the_field(change: Any, named: str) -> None:
    payload = fixture_order()
    change(payload)
    with pytest.raises(PayloadError) as caught:
        roundtrip(payload)
    assert caught.value.status_code == 422
    assert named in str(caught.value)
    assert str(caught.value).startswith("invalid Shopify order: ")


def test_float_id_that_lost_digits_is_refused() -> None:
    body = fixture_bytes().replace(b'"id": 820982911946154508', b'"id": 8.209829119461545e17', 1)
    with pytest.raises(PayloadError, match="id: must be a whole-number id"):
        parse_order(load_json(body), SOURCE)


def test_many_problems_are_summarised() -> None:
    with pytest.raises(PayloadError, match=r"\(and \d+ more\)"):
        parse_order({"line_items": [{}, {}, {}]}, SOURCE)


# --- hostile values (found by fuzzing with validly signed bodies) ----------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        # numeric(18,4) overflow of canonical_events.total_amount
        (lambda o: o.update(total_price="1e30"), "total_price: must be at least 0 and less than"),
        (lambda o: o.update(total_price="1e999999"), "total_price: must be at least 0"),
        (lambda o: o.update(total_price="-1.00"), "total_price: must be at least 0"),
        (
            lambda o: o["line_items"][2].update(quantity=-1000),
            "line_items[2].quantity: must be between 0 and 1000000000",
        ),
        (
            lambda o: o["line_items"][2].update(quantity=10**30),
            "line_items[2].quantity: must be between 0 and 1000000000",
        ),
        (lambda o: o["line_items"][0].update(price="-89.99"), "line_items[0].price: must be at"),
        (
            lambda o: o["line_items"][0].update(price="1.0000001"),
            "line_items[0].price: has more than 6 decimal places",
        ),
        (lambda o: o.update(id="9" * 201), "id: String should have at most 200 characters"),
        (lambda o: o.update(id="  "), "id: must not be empty"),
        (lambda o: o["line_items"][1].update(id=""), "line_items[1].id: must not be empty"),
        (lambda o: o.update(created_at="2021-12-31T19:00:00"), "created_at: must carry a time"),
        (lambda o: o.update(created_at="9999-12-31T23:59:59-05:00"), "created_at: must lie"),
        (lambda o: o.update(order_number=10**30), "order_number: Input should be less than"),
    ],
)
def test_hostile_values_are_422_naming_the_field(change: Any, named: str) -> None:
    payload = fixture_order()
    change(payload)
    with pytest.raises(PayloadError) as caught:
        roundtrip(payload)
    assert caught.value.status_code == 422
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("where", "named"),
    [
        (lambda o: o.update(note="a\u0000b"), "note: must not contain NUL"),
        (
            lambda o: o["line_items"][0].update(name="\ud800"),
            "lines[0].title: Input should be a valid string",
        ),
        (
            lambda o: o["line_items"][0].update(sku="SKU\u0000"),
            "lines[0].sku: must not contain NUL",
        ),
        (lambda o: o.update(tags="ok, bad\udfff"), "tags[1]: Input should be a valid string"),
        (
            lambda o: o["shipping_address"].update(city="x" * 300),
            "shipping_address.city: String should have at most 255 characters",
        ),
        (lambda o: o.update(note="n" * 10_001), "note: String should have at most 10000"),
        (lambda o: o["line_items"][0].update(sku="S" * 129), "lines[0].sku: String should have"),
    ],
)
def test_hostile_text_is_422_naming_the_field(where: Any, named: str) -> None:
    """NUL (Postgres refuses it in text and jsonb), lone surrogates (not encodable as UTF-8)
    and overlong strings never reach the database."""
    payload = fixture_order()
    where(payload)
    # through bytes as a webhook arrives: json.dumps writes \\u0000 and \\ud800 escapes
    body = json.dumps(payload).replace("\\\\u", "\\u").encode()
    with pytest.raises(PayloadError) as caught:
        parse_order(load_json(body), SOURCE)
    assert caught.value.status_code == 422
    assert named in str(caught.value)
    message = str(caught.value)
    assert "\x00" not in message
    message.encode("utf-8")  # no lone surrogate in the message either


def test_huge_exchange_rate_is_422_not_invalid_operation() -> None:
    """shop / presentment of a money set once raised decimal.InvalidOperation (a 500)."""
    payload = fixture_order()
    payload["presentment_currency"] = "EUR"
    payload["total_price_set"] = {
        "shop_money": {"amount": "999999999999.99", "currency_code": "USD"},
        "presentment_money": {"amount": "0.000001", "currency_code": "EUR"},
    }
    with pytest.raises(PayloadError) as caught:
        roundtrip(payload)
    assert caught.value.status_code == 422
    assert "total_price_set: shop_money / presentment_money" in str(caught.value)
