"""Orders flow rules: guests, amendments, tax differences, needed mappings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.flows.orders.rules import (
    OrderRules,
    diff_orders,
    guest_decision,
    tax_difference,
)
from kernel.canonical.common import Address, Money
from kernel.canonical.order import Order
from kernel.mappings import order_mapping_keys as mapping_keys


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def make_order(**overrides: Any) -> Order:
    data: dict[str, Any] = {
        "source": "shop-eu",
        "external_id": "1001",
        "number": "#1001",
        "created_at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        "currency": "EUR",
        "customer": {"external_id": "c-7", "email": "jane@example.com"},
        "shipping_address": {
            "first_name": "Jane",
            "last_name": "Doe",
            "line1": "Unter den Linden 1",
            "city": "Berlin",
            "postal_code": "10115",
            "country_code": "DE",
        },
        "lines": [
            {
                "line_id": "1",
                "sku": "TSHIRT-RED-M",
                "title": "T-shirt",
                "quantity": "2",
                "unit_price": eur("19.90"),
                "tax_lines": [{"title": "DE VAT 19%", "amount": eur("6.35")}],
            },
            {
                "line_id": "2",
                "sku": "MUG",
                "title": "Mug",
                "quantity": "1",
                "unit_price": eur("9.00"),
            },
        ],
        "shipping_lines": [{"code": "dhl-standard", "title": "DHL Standard", "price": eur("4.90")}],
        "payments": [{"gateway": "paypal", "amount": eur("53.70")}],
        "totals": {
            "subtotal": eur("48.80"),
            "discounts": eur("0"),
            "shipping": eur("4.90"),
            "tax": eur("8.57"),
            "total": eur("53.70"),
        },
    }
    data.update(overrides)
    return Order.model_validate(data)


# --- config -------------------------------------------------------------------------------


def test_defaults_are_valid_and_documented() -> None:
    rules = OrderRules()
    assert rules.tax_source == "store"
    assert rules.tax_tolerance == Decimal("0.01")
    assert rules.guest_strategy == "create_customer"
    assert rules.required_mappings == []
    for name, field in OrderRules.model_fields.items():
        assert field.description, name


def test_shared_account_requires_guest_account_id() -> None:
    with pytest.raises(ValidationError, match="guest_account_id"):
        OrderRules(guest_strategy="shared_account")
    with pytest.raises(ValidationError, match="guest_account_id"):
        OrderRules(guest_strategy="shared_account", guest_account_id="  ")
    assert OrderRules(guest_strategy="shared_account", guest_account_id="C-100").guest_account_id


def test_unknown_keys_and_values_are_rejected() -> None:
    with pytest.raises(ValidationError):
        OrderRules.model_validate({"tax_sorce": "erp"})
    with pytest.raises(ValidationError):
        OrderRules.model_validate({"required_mappings": ["warehouse"]})
    with pytest.raises(ValidationError):
        OrderRules.model_validate({"tax_tolerance": "-0.01"})


def test_rules_round_trip_through_json() -> None:
    rules = OrderRules(tax_source="erp", tax_tolerance=Decimal("0.05"), amendments="hold")
    assert OrderRules.model_validate_json(rules.model_dump_json()) == rules


# --- guests -------------------------------------------------------------------------------


def test_account_customer_is_not_a_guest() -> None:
    decision = guest_decision(make_order(), OrderRules(guest_strategy="reject"))
    assert decision.action == "not_guest"


@pytest.mark.parametrize(
    "customer",
    [
        {"external_id": None, "email": "guest@example.com"},
        {"external_id": "c-9", "email": "guest@example.com", "is_guest": True},
    ],
)
def test_guest_follows_the_strategy(customer: dict[str, Any]) -> None:
    order = make_order(customer=customer)
    assert guest_decision(order, OrderRules()).action == "create_customer"
    shared = OrderRules(guest_strategy="shared_account", guest_account_id="WEB-GUEST")
    decision = guest_decision(order, shared)
    assert decision.action == "shared_account"
    assert "WEB-GUEST" in decision.reason
    rejected = guest_decision(order, OrderRules(guest_strategy="reject"))
    assert rejected.action == "reject"
    assert "guest" in rejected.reason


def test_guest_without_email_cannot_become_a_customer() -> None:
    order = make_order(customer={"external_id": None, "email": "  "})
    decision = guest_decision(order, OrderRules())
    assert decision.action == "reject"
    assert "e-mail" in decision.reason
    assert "#1001" in decision.reason
    # the shared account does not need an e-mail
    shared = OrderRules(guest_strategy="shared_account", guest_account_id="WEB-GUEST")
    assert guest_decision(order, shared).action == "shared_account"


# --- amendments ---------------------------------------------------------------------------


def test_identical_orders_have_no_amendment() -> None:
    amendment = diff_orders(make_order(), make_order())
    assert amendment.kinds == frozenset()
    assert amendment.details == []
    assert not amendment.changed


def test_shipping_address_change_is_detected() -> None:
    before = make_order()
    after = before.model_copy(deep=True)
    assert after.shipping_address is not None
    after.shipping_address.city = "Hamburg"
    amendment = diff_orders(before, after)
    assert amendment.kinds == frozenset({"shipping_address"})
    assert amendment.details == ["shipping address changed: city Berlin → Hamburg"]


def test_billing_address_added_is_detected() -> None:
    before = make_order()
    after = before.model_copy(update={"billing_address": Address(city="Berlin")})
    amendment = diff_orders(before, after)
    assert amendment.kinds == frozenset({"billing_address"})
    assert amendment.details == ["billing address added"]


def test_line_quantity_price_and_sku_changes_are_detected() -> None:
    before = make_order()
    after = before.model_copy(deep=True)
    after.lines[1].quantity = Decimal("3")
    after.lines[0].unit_price = Money(amount=Decimal("17.90"), currency="EUR")
    after.lines[0].sku = "TSHIRT-RED-L"
    amendment = diff_orders(before, after)
    assert amendment.kinds == frozenset({"lines"})
    assert "line 2 quantity 1 → 3" in amendment.details
    assert "line 1 unit price 19.90 EUR → 17.90 EUR" in amendment.details
    assert "line 1 sku TSHIRT-RED-M → TSHIRT-RED-L" in amendment.details


def test_same_quantity_written_differently_is_no_change() -> None:
    before = make_order()
    after = before.model_copy(deep=True)
    after.lines[1].quantity = Decimal("1.000")
    assert diff_orders(before, after).kinds == frozenset()


def test_added_and_removed_lines_are_detected() -> None:
    before = make_order()
    after = before.model_copy(deep=True)
    removed = after.lines.pop(1)
    added = removed.model_copy(update={"line_id": "3", "sku": "CAP", "quantity": Decimal(2)})
    after.lines.append(added)
    amendment = diff_orders(before, after)
    assert amendment.kinds == frozenset({"lines"})
    assert "line 2 removed (MUG)" in amendment.details
    assert "line 3 added: CAP x 2" in amendment.details


def test_customer_note_and_shipping_changes_are_detected() -> None:
    before = make_order()
    after = before.model_copy(deep=True)
    after.customer.email = "jane.doe@example.com"
    after.note = "leave at the door"
    after.shipping_lines[0].title = "DHL Express"
    after.shipping_lines[0].price = Money(amount=Decimal("9.90"), currency="EUR")
    amendment = diff_orders(before, after)
    assert amendment.kinds == frozenset({"customer", "note", "shipping"})
    assert any("jane.doe@example.com" in d for d in amendment.details)
    assert "shipping changed: DHL Standard 4.90 EUR → DHL Express 9.90 EUR" in amendment.details


# --- tax ----------------------------------------------------------------------------------


def money(amount: str, currency: str = "EUR") -> Money:
    return Money(amount=Decimal(amount), currency=currency)


@pytest.mark.parametrize("erp", ["8.57", "8.58", "8.56"])
def test_tax_difference_within_tolerance_is_not_reported(erp: str) -> None:
    assert tax_difference(money("8.57"), money(erp), Decimal("0.01")) is None


def test_tax_difference_beyond_tolerance_is_reported() -> None:
    finding = tax_difference(money("8.57"), money("8.60"), Decimal("0.01"))
    assert finding is not None
    assert finding.kind == "tax_difference"
    assert "8.57 EUR" in finding.message
    assert "8.60 EUR" in finding.message
    assert "0.03" in finding.message
    assert finding.data["store_tax"] == "8.57"
    assert finding.data["erp_tax"] == "8.60"
    assert finding.data["difference"] == "0.03"


def test_tax_in_different_currencies_is_reported() -> None:
    finding = tax_difference(money("8.57"), money("8.57", "USD"), Decimal("1"))
    assert finding is not None
    assert "currencies" in finding.message


@given(
    store=st.decimals(min_value=-1000, max_value=1000, places=2),
    erp=st.decimals(min_value=-1000, max_value=1000, places=2),
    tolerance=st.decimals(min_value=0, max_value=10, places=2),
)
def test_tax_difference_is_reported_exactly_beyond_tolerance(
    store: Decimal, erp: Decimal, tolerance: Decimal
) -> None:
    finding = tax_difference(money(str(store)), money(str(erp)), tolerance)
    assert (finding is not None) == (abs(store - erp) > tolerance)


# --- mappings -----------------------------------------------------------------------------


def test_mapping_keys_per_kind() -> None:
    order = make_order(
        tags=["vip", "location:WH-2"],
        tax_lines=[{"title": "DE VAT 19%", "amount": eur("8.57")}],
        payments=[{"gateway": "paypal"}, {"gateway": "gift_card"}, {"gateway": "paypal"}],
        shipping_lines=[
            {"code": None, "title": "Pickup", "price": eur("0")},
            {"code": "dhl-standard", "title": "DHL Standard", "price": eur("4.90")},
        ],
    )
    keys = mapping_keys(order, ["sku", "payment_method", "shipping_method", "tax_code", "location"])
    assert keys == {
        "sku": ["TSHIRT-RED-M", "MUG"],
        "payment_method": ["paypal", "gift_card"],
        "shipping_method": ["Pickup", "dhl-standard"],
        "tax_code": ["DE VAT 19%"],
        "location": ["WH-2"],
    }


def test_mapping_keys_only_for_requested_kinds_and_unknown_kind_fails() -> None:
    assert mapping_keys(make_order(payments=[]), ["payment_method"]) == {"payment_method": []}
    with pytest.raises(ValueError, match="warehouse"):
        mapping_keys(make_order(), ["warehouse"])


def test_an_order_without_a_location_tag_uses_the_location_of_its_shop() -> None:
    order = make_order(tags=["vip"])
    assert mapping_keys(order, ["location"]) == {"location": [order.source]}


def test_variant_base_follows_the_pattern() -> None:
    from app.flows.orders.rules import variant_base

    pattern = "^(?P<base>.+)-(XS|S|M|L|XL)$"
    assert variant_base("TSHIRT-RED-M", pattern) == "TSHIRT-RED"
    assert variant_base("TSHIRT", pattern) is None
    assert variant_base("TSHIRT-RED-M", None) is None


def test_variant_pattern_needs_a_base_group() -> None:
    with pytest.raises(ValidationError, match="group named base"):
        OrderRules(variant_sku_pattern="^(.+)-M$")
    with pytest.raises(ValidationError, match="regular expression"):
        OrderRules(variant_sku_pattern="^(?P<base>.+")
