"""make_order: realistic, unique, self-consistent orders that the connector accepts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.shopify.inbound import load_json, parse_order
from simulators.shopify.samples import make_order, sample_order
from tests.unit.shopify.conftest import SOURCE, fixture_order


def parse(payload: dict[str, Any]) -> Any:
    return parse_order(load_json(json.dumps(payload).encode()), SOURCE)


def test_sample_shipped_with_the_package_is_the_real_fixture() -> None:
    assert sample_order() == fixture_order()


def test_orders_differ_where_real_orders_differ() -> None:
    orders = [make_order(n) for n in range(1, 40)]
    for key in ("id", "name", "order_number", "email", "token"):
        assert len({o[key] for o in orders}) == len(orders), key
    assert len({o["customer"]["id"] for o in orders}) == len(orders)
    line_ids = [li["id"] for o in orders for li in o["line_items"]]
    assert len(set(line_ids)) == len(line_ids)
    assert len({tuple(li["quantity"] for li in o["line_items"]) for o in orders}) > 1
    assert all(o["id"] > 2**53 for o in orders)  # ids that a float would round


def test_same_number_same_order() -> None:
    assert make_order(5, skus=["X"]) == make_order(5, skus=["X"])


def test_default_order_is_open_and_paid() -> None:
    order = parse(make_order(1))
    assert order.status == "open" and order.financial_status == "paid"
    assert [p.gateway for p in order.payments] == ["shopify_payments"]
    assert order.customer.is_guest is False


def test_skus_give_one_line_each() -> None:
    order = parse(make_order(3, skus=["TSHIRT-RED-M", "MUG-BLACK"], quantities=[2, 5]))
    assert [(li.sku, li.quantity) for li in order.lines] == [
        ("TSHIRT-RED-M", Decimal(2)),
        ("MUG-BLACK", Decimal(5)),
    ]
    assert (
        order.lines[0].variant_id == parse(make_order(9, skus=["TSHIRT-RED-M"])).lines[0].variant_id
    )


def test_totals_are_strings_that_add_up() -> None:
    raw = make_order(11, skus=["A", "B", "C"], discount="12.34", tax_rate="0.19")
    for key in ("total_price", "subtotal_price", "total_tax", "total_discounts"):
        assert isinstance(raw[key], str) and raw[key].count(".") == 1
    order = parse(raw)
    t = order.totals
    assert (
        t.total.amount == t.subtotal.amount - t.discounts.amount + t.shipping.amount + t.tax.amount
    )
    assert sum((li.discount_total for li in order.lines), Decimal(0)) == Decimal("12.34")
    line_tax = sum((tl.amount.amount for li in order.lines for tl in li.tax_lines), Decimal(0))
    assert line_tax == t.tax.amount


def test_guest_order_has_no_customer_object() -> None:
    raw = make_order(2, guest=True)
    assert "customer" not in raw
    assert parse(raw).customer.is_guest is True


def test_without_shipping_there_are_no_shipping_lines() -> None:
    order = parse(make_order(2, shipping="0"))
    assert order.shipping_lines == [] and order.totals.shipping.amount == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"skus": ["A"], "quantities": [1, 2]}, "one quantity per SKU"),
        ({"skus": ["A"], "discount": "1000"}, "discount must be between"),
    ],
)
def test_impossible_requests_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_order(1, **kwargs)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=10**6),
    skus=st.lists(st.text("ABCXYZ-0123456789", min_size=1, max_size=12), min_size=1, max_size=5),
    guest=st.booleans(),
    cancelled=st.booleans(),
    discount_cents=st.integers(min_value=0, max_value=5000),
    tax_rate=st.sampled_from([None, "0.05", "0.0725", "0.19", "0.2"]),
    presentment=st.sampled_from([None, "EUR", "CAD"]),
)
def test_every_generated_order_parses_and_adds_up(
    n: int,
    skus: list[str],
    guest: bool,
    cancelled: bool,
    discount_cents: int,
    tax_rate: str | None,
    presentment: str | None,
) -> None:
    raw = make_order(
        n,
        skus=skus,
        guest=guest,
        cancelled=cancelled,
        discount=Decimal(discount_cents) / 100,
        tax_rate=tax_rate,
        presentment_currency=presentment,
    )
    order = parse(raw)
    t = order.totals
    assert (
        t.total.amount == t.subtotal.amount - t.discounts.amount + t.shipping.amount + t.tax.amount
    )
    assert order.external_id == str(raw["id"])
    assert [li.sku for li in order.lines] == skus
    assert order.customer.is_guest is guest
    assert order.status == ("cancelled" if cancelled else "open")
    assert (order.exchange_rate is not None) is (presentment is not None)
