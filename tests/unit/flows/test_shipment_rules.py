"""Shipments flow rules: notification trigger, partial shipments, carrier mapping."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.flows.shipments.rules import (
    ShipmentRules,
    check_quantities,
    map_carriers,
    remaining,
    shipped_quantities,
    should_notify,
)
from kernel.canonical.order import Order
from kernel.canonical.shipment import Shipment
from tests.unit.flows.orders import NOW, eur, make_order


def make_shipment(
    external_id: str, packages: list[dict[str, str]], status: str = "shipped", **extra: Any
) -> Shipment:
    """``packages``: one dict SKU → quantity per package."""
    return Shipment.model_validate(
        {
            "source": "erp",
            "external_id": external_id,
            "order_key": "shop-eu:order:1001",
            "status": status,
            "shipped_at": NOW,
            "packages": [
                {
                    "tracking_number": f"{external_id}-{n}",
                    "carrier": extra.get("carrier", "DHL"),
                    "lines": [{"sku": sku, "quantity": qty} for sku, qty in package.items()],
                }
                for n, package in enumerate(packages)
            ],
        }
    )


# --- notification -------------------------------------------------------------------------


def test_defaults() -> None:
    rules = ShipmentRules()
    assert rules.notify_on == ["shipped"]
    assert rules.allow_over_shipment is False
    for name, field in ShipmentRules.model_fields.items():
        assert field.description, name
    with pytest.raises(ValidationError):
        ShipmentRules.model_validate({"notify_on": ["sent"]})


@pytest.mark.parametrize(
    ("notify_on", "status", "expected"),
    [
        (["shipped"], "shipped", True),
        (["shipped"], "packed", False),
        (["picked_up"], "shipped", False),
        (["picked_up"], "picked_up", True),
        ([], "shipped", False),
        (["shipped", "delivered"], "delivered", True),
    ],
)
def test_notify_only_on_the_configured_trigger(
    notify_on: list[Any], status: str, expected: bool
) -> None:
    shipment = make_shipment("IF-1", [{"A": "1"}], status=status)
    assert should_notify(shipment, ShipmentRules(notify_on=notify_on)) is expected


# --- quantities ---------------------------------------------------------------------------


def test_five_items_in_three_packages_add_up() -> None:
    order = make_order({"A": "3", "B": "2"})
    first = make_shipment("IF-1", [{"A": "1"}, {"B": "1"}])
    second = make_shipment("IF-2", [{"A": "2", "B": "1"}])

    assert check_quantities(order, [], first) == []
    assert remaining(order, [first]) == {"A": Decimal(2), "B": Decimal(1)}
    assert check_quantities(order, [first], second) == []
    assert shipped_quantities([first, second]) == {"A": Decimal(3), "B": Decimal(2)}
    assert remaining(order, [first, second]) == {}


def test_over_shipment_is_reported_with_numbers() -> None:
    order = make_order({"A": "3", "B": "2"})
    first = make_shipment("IF-1", [{"A": "2"}])
    second = make_shipment("IF-2", [{"A": "2"}])
    problems = check_quantities(order, [first], second)
    assert len(problems) == 1
    assert "SKU A" in problems[0]
    assert "4 shipped in total" in problems[0]
    assert "3 ordered" in problems[0]
    assert check_quantities(order, [first], second, allow_over_shipment=True) == []


def test_sku_not_on_the_order_is_reported() -> None:
    order = make_order({"A": "3"})
    problems = check_quantities(order, [], make_shipment("IF-1", [{"Z": "1"}]))
    assert problems == ["SKU Z is not on order #1001"]


def test_non_positive_quantity_is_reported() -> None:
    order = make_order({"A": "3"})
    problems = check_quantities(order, [], make_shipment("IF-1", [{"A": "0"}]))
    assert len(problems) == 1 and "not positive" in problems[0]


def test_updated_shipment_replaces_its_earlier_version() -> None:
    order = make_order({"A": "3"})
    earlier = make_shipment("IF-1", [{"A": "3"}], status="packed")
    updated = make_shipment("IF-1", [{"A": "3"}], status="shipped")
    assert check_quantities(order, [earlier], updated) == []


def test_remaining_never_negative_and_same_sku_on_two_lines_adds_up() -> None:
    order = Order.model_validate(
        {
            **make_order({"A": "1"}).model_dump(),
            "lines": [
                {"line_id": "1", "sku": "A", "title": "A", "quantity": "1", "unit_price": eur("1")},
                {"line_id": "2", "sku": "A", "title": "A", "quantity": "2", "unit_price": eur("1")},
                {"line_id": "3", "sku": None, "title": "Gift wrap", "quantity": "1",
                 "unit_price": eur("1")},
            ],
        }
    )  # fmt: skip
    assert remaining(order, []) == {"A": Decimal(3)}
    assert remaining(order, [make_shipment("IF-1", [{"A": "5"}])]) == {}


@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=6))
def test_shipping_in_any_split_adds_up_to_the_order(parts: list[int]) -> None:
    total = sum(parts)
    order = make_order({"A": str(total)})
    shipments: list[Shipment] = []
    for n, part in enumerate(parts):
        new = make_shipment(f"IF-{n}", [{"A": str(part)}])
        assert check_quantities(order, shipments, new) == []
        shipments.append(new)
    assert remaining(order, shipments) == {}
    one_more = make_shipment("IF-extra", [{"A": "1"}])
    assert check_quantities(order, shipments, one_more) != []


# --- carriers -----------------------------------------------------------------------------


def test_map_carriers_replaces_known_and_lists_unknown() -> None:
    shipment = Shipment.model_validate(
        {
            "source": "erp",
            "external_id": "IF-1",
            "order_key": "shop-eu:order:1001",
            "packages": [
                {"carrier": "DHL Paket", "lines": []},
                {"carrier": "ups", "lines": []},
                {"carrier": "Hermes", "lines": []},
                {"carrier": "Hermes", "lines": []},
                {"carrier": None, "lines": []},
            ],
        }
    )
    mapped, unmapped = map_carriers(shipment, {"DHL Paket": "DHL", "UPS": "UPS"})
    assert [p.carrier for p in mapped.packages] == ["DHL", "UPS", "Hermes", "Hermes", None]
    assert unmapped == ["Hermes"]
    # a copy: the original keeps its carriers
    assert shipment.packages[0].carrier == "DHL Paket"
