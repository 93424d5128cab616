"""The canonical models refuse what no column or ERP can hold, with messages naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from kernel.canonical.common import (
    QUANTITY_RULE,
    Amount,
    Money,
    NonNegativeAmount,
    Quantity,
    SignedQuantity,
    check_decimal,
)
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import InventoryLevel, StockAvailability
from kernel.canonical.order import Order
from kernel.canonical.product import Price, Product
from kernel.canonical.returns import CreditMemo, Refund, Return
from kernel.canonical.shipment import Shipment
from kernel.canonical.validation import describe_errors

WHEN = "2026-11-01T12:30:00Z"


def usd(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def order_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": "portal",
        "external_id": "1001",
        "number": "#1001",
        "created_at": WHEN,
        "currency": "USD",
        "customer": {"external_id": "77", "email": "ada@example.com"},
        "lines": [
            {
                "line_id": "1",
                "sku": "TSHIRT-RED-M",
                "title": "T-shirt",
                "quantity": "2",
                "unit_price": usd("19.99"),
            }
        ],
        "shipping_lines": [{"title": "Standard", "price": usd("4.90")}],
        "totals": {
            "subtotal": usd("39.98"),
            "discounts": usd("0"),
            "shipping": usd("4.90"),
            "tax": usd("0"),
            "total": usd("44.88"),
        },
    }
    data.update(overrides)
    return data


def line(**overrides: Any) -> dict[str, Any]:
    return {**order_data()["lines"][0], **overrides}


def problem(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return describe_errors(caught.value)


def test_a_sane_order_passes() -> None:
    order = Order.model_validate(order_data())
    assert order.totals.total.amount == Decimal("44.88")


# --- numbers ------------------------------------------------------------------------------


class Numbers(BaseModel):
    amount: Amount | None = None
    price: NonNegativeAmount | None = None
    quantity: Quantity | None = None
    level: SignedQuantity | None = None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", "1e30", "amount: must be greater than -1000000000000 and less than"),
        ("amount", "-1e12", "amount: must be greater than -1000000000000"),
        ("amount", "1e999999", "amount: must be greater than"),
        ("amount", "NaN", "amount: must be a finite number"),
        ("amount", "Infinity", "amount: must be a finite number"),
        ("amount", "-inf", "amount: must be a finite number"),
        ("amount", float("nan"), "amount: must be a finite number"),
        ("amount", "1.0000001", "amount: has more than 6 decimal places"),
        ("amount", "1e-999999", "amount: has more than 6 decimal places"),
        ("amount", "twelve", "amount: 'twelve' is not a decimal number"),
        ("amount", True, "amount: must be a number, not a boolean"),
        ("amount", [1], "amount: must be a number, not list"),
        ("amount", "1" * 101, "amount: is not a number (over 100 characters)"),
        ("price", "-0.01", "price: must be at least 0 and less than 1000000000000"),
        ("quantity", "-1000", "quantity: must be between 0 and 1000000000"),
        ("quantity", 10**30, "quantity: must be between 0 and 1000000000"),
        ("quantity", "1000000000.000001", "quantity: must be between 0 and 1000000000"),
        ("level", "-1000000001", "level: must be between -1000000000 and 1000000000"),
    ],
)
def test_numbers_out_of_bounds_are_refused(field: str, value: Any, message: str) -> None:
    assert problem(Numbers, {field: value}).startswith(message)


def test_numbers_in_bounds_are_exact() -> None:
    values = Numbers.model_validate(
        {"amount": "-999999999999.999999", "price": 0, "quantity": "1e9", "level": "-3"}
    )
    assert values.amount == Decimal("-999999999999.999999")
    assert values.quantity == Decimal(10**9)
    assert values.level == Decimal(-3)
    assert Numbers.model_validate({"amount": 19.9}).amount == Decimal("19.9")  # float's repr


def test_trailing_zeros_beyond_the_places_are_dropped_not_refused() -> None:
    """1.5 written with a thousand zeros is 1.5; it must not travel on with all of them."""
    value = check_decimal("1.5" + "0" * 90, QUANTITY_RULE)
    assert value == Decimal("1.5") and str(value) == "1.500000"
    assert str(check_decimal(Decimal("0E-1000000"), QUANTITY_RULE)) == "0.000000"


# --- text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("external_id",), "", "external_id: must not be empty"),
        (("external_id",), "   ", "external_id: must not be empty"),
        (("external_id",), "9" * 201, "external_id: String should have at most 200 characters"),
        (("number",), "a\x00b", "number: must not contain NUL characters"),
        (("note",), "\ud800", "note: Input should be a valid string"),
        (("note",), "n" * 10_001, "note: String should have at most 10000 characters"),
        (("tags",), ["ok", "t\x00"], "tags[1]: must not contain NUL"),
        (("customer", "email"), "a" * 251, "customer.email: String should have at most 250"),
        (("customer", "first_name"), "\x00", "customer.first_name: must not contain NUL"),
        (("lines", 0, "line_id"), "", "lines[0].line_id: must not be empty"),
        (("lines", 0, "sku"), "", "lines[0].sku: must not be empty"),
        (("lines", 0, "sku"), "S" * 129, "lines[0].sku: String should have at most 128"),
        (("lines", 0, "title"), "T" * 1001, "lines[0].title: String should have at most 1000"),
    ],
)
def test_order_text_is_bounded_and_clean(path: tuple[Any, ...], value: Any, message: str) -> None:
    data = order_data()
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert problem(Order, data).startswith(message)


def test_every_string_is_checked_even_in_dicts_and_lists() -> None:
    product = {"source": "erp", "sku": "X", "title": "X", "updated_at": WHEN}
    assert "must not contain NUL" in problem(Product, {**product, "options": {"si\x00ze": "M"}})
    assert "must not contain NUL" in problem(Product, {**product, "options": {"size": "M\x00"}})
    availability = {
        "source": "erp",
        "sku": "X",
        "available": "1",
        "status": "in_stock",
        "as_of": WHEN,
    }
    assert problem(StockAvailability, {**availability, "notes": ["\x00"]}).startswith(
        "notes[0]: must not contain NUL"
    )


def test_keys_must_fit_the_entity_key_columns() -> None:
    # a 64-character connection id and a 200-character id: over 256 once joined
    message = problem(Order, order_data(source="s" * 64, external_id="9" * 200))
    assert message.startswith("the key 'sss")
    assert "is 271 characters long, over the 256 a key may have" in message
    guest = {"email": "x" * 230 + "@example.com"}
    message = problem(Order, order_data(source="s" * 20, customer=guest))
    assert "over the 256 a key may have" in message


# --- money and currencies -----------------------------------------------------------------


def test_negative_unit_price_is_refused() -> None:
    message = problem(Order, order_data(lines=[line(unit_price=usd("-5"))]))
    assert message.startswith("lines[0].unit_price: must not be negative, got -5 USD")


def test_a_line_in_another_currency_is_refused() -> None:
    message = problem(Order, order_data(lines=[line(unit_price=usd("500", "JPY"))]))
    assert message == "lines[0].unit_price.currency: JPY is not the order currency USD"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            lambda d: d["shipping_lines"][0].update(price=usd("4.90", "EUR")),
            "shipping_lines[0].price",
        ),
        (
            lambda d: d.update(discounts=[{"code": "X", "amount": usd("1", "EUR")}]),
            "discounts[0].amount",
        ),
        (
            lambda d: d.update(tax_lines=[{"title": "VAT", "amount": usd("1", "EUR")}]),
            "tax_lines[0].amount",
        ),
        (
            lambda d: d["lines"][0].update(tax_lines=[{"title": "VAT", "amount": usd("1", "GBP")}]),
            "lines[0].tax_lines[0].amount",
        ),
        (lambda d: d["totals"].update(total=usd("44.88", "EUR")), "totals.total"),
    ],
)
def test_every_order_amount_is_in_the_order_currency(change: Any, path: str) -> None:
    data = order_data()
    change(data)
    assert problem(Order, data).startswith(f"{path}.currency: ")


def test_a_refund_line_in_another_currency_is_refused() -> None:
    refund = {
        "source": "shop",
        "external_id": "R1",
        "order_key": "shop:order:1",
        "amount": usd("10"),
        "lines": [{"sku": "X", "quantity": "1", "amount": usd("10", "EUR")}],
        "created_at": WHEN,
    }
    assert problem(Refund, refund).startswith("lines[0].amount.currency: EUR is not the currency")
    memo = {**refund, "lines": [], "shipping": None}
    memo.pop("shipping")
    memo["lines"] = [{"sku": "X", "quantity": "1", "amount": usd("10", "EUR")}]
    assert "lines[0].amount.currency" in problem(CreditMemo, memo)


@pytest.mark.parametrize("quantity", ["-1", "1e30"])
def test_quantities_of_shipments_and_returns_are_bounded(quantity: str) -> None:
    shipment = {
        "source": "erp",
        "external_id": "IF1",
        "order_key": "shop:order:1",
        "packages": [{"lines": [{"sku": "X", "quantity": quantity}]}],
    }
    assert problem(Shipment, shipment).startswith(
        "packages[0].lines[0].quantity: must be between 0 and 1000000000"
    )
    ret = {
        "source": "shop",
        "external_id": "R1",
        "order_key": "shop:order:1",
        "lines": [{"sku": "X", "quantity": quantity}],
        "requested_at": WHEN,
    }
    assert problem(Return, ret).startswith("lines[0].quantity: must be between 0")


def test_inventory_may_be_negative_but_bounded() -> None:
    level = {"source": "erp", "sku": "X", "location": "1", "on_hand": "-3", "as_of": WHEN}
    assert InventoryLevel.model_validate(level).on_hand == Decimal(-3)
    assert problem(InventoryLevel, {**level, "on_hand": "-1e10"}).startswith(
        "on_hand: must be between -1000000000 and 1000000000"
    )
    assert problem(InventoryLevel, {**level, "location": "L" * 65}).startswith("location: ")


def test_prices_are_not_negative() -> None:
    price = {"source": "erp", "sku": "X", "currency": "USD", "base": "-1", "effective_at": WHEN}
    assert problem(Price, price).startswith("base: must be at least 0")


def test_customer_defaults_point_into_addresses() -> None:
    customer = {"source": "shop", "external_id": "1", "updated_at": WHEN, "default_billing": 3}
    assert problem(Customer, customer).startswith(
        "default_billing: 3 is not an index into addresses"
    )
    erase = {"source": "shop", "customer_external_id": "1" * 201, "requested_at": WHEN}
    assert problem(ErasureRequest, erase).startswith("customer_external_id: String should")


# --- times --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-11-01T12:30:00", "created_at: must carry a time zone offset"),
        ("9999-12-31T23:59:59-05:00", "created_at: must lie between 1900 and 9000"),
        ("0001-01-01T00:00:00+05:00", "created_at: must lie between 1900 and 9000"),
    ],
)
def test_times_carry_a_zone_and_lie_in_range(value: str, message: str) -> None:
    assert problem(Order, order_data(created_at=value)).startswith(message)


def test_the_event_envelope_checks_its_key_and_time() -> None:
    order = Order.model_validate(order_data())
    event = make_event("order.created", order, datetime(2026, 11, 1, tzinfo=UTC))
    assert event.entity_key == "portal:order:1001"
    with pytest.raises(ValidationError, match="at most 256 characters"):
        CanonicalEvent(
            type="order.created", entity_key="k" * 257, occurred_at=event.occurred_at, payload=order
        )
    with pytest.raises(ValidationError, match="time zone"):
        CanonicalEvent(
            type="order.created",
            entity_key="k",
            occurred_at=datetime(2026, 11, 1),
            payload=order,
        )


# --- the error summary --------------------------------------------------------------------


def test_describe_errors_names_paths_under_a_prefix_and_hides_inputs() -> None:
    data = order_data(lines=[line(quantity="-1"), line(sku="\x00" * 3)], note="x\x00")
    with pytest.raises(ValidationError) as caught:
        Order.model_validate(data)
    text = describe_errors(caught.value, prefix="data")
    assert "data.lines[0].quantity: must be between 0 and 1000000000" in text
    assert "data.lines[1].sku: must not contain NUL" in text
    assert "\x00" not in text
    assert not text.startswith("data: ") and "Value error" not in text


def test_describe_errors_keeps_model_level_paths() -> None:
    with pytest.raises(ValidationError) as caught:
        Order.model_validate(order_data(lines=[line(unit_price=usd("1", "JPY"))]))
    assert describe_errors(caught.value, prefix="data") == (
        "data.lines[0].unit_price.currency: JPY is not the order currency USD"
    )


def test_money_from_a_float_keeps_what_was_written() -> None:
    assert Money(amount=19.9, currency="USD").amount == Decimal("19.9")
