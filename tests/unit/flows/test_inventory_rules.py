"""Inventory rules: sellable stock, safety stock, locations, bundles, drift, supersession."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.flows.inventory.rules import (
    Drift,
    InventoryRules,
    availability,
    bundle_available,
    bundles_containing,
    find_drift,
    is_newer,
    location_sellable,
)
from kernel.canonical.inventory import IncomingStock, InventoryLevel, StockAvailability

D = Decimal
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def level(
    on_hand: str,
    *,
    sku: str = "TSHIRT-RED-M",
    location: str = "1",
    allocated: str = "0",
    reserved: str = "0",
    damaged: str = "0",
    quarantined: str = "0",
    incoming: list[IncomingStock] | None = None,
    as_of: datetime = NOW,
) -> InventoryLevel:
    return InventoryLevel(
        source="erp",
        sku=sku,
        location=location,
        on_hand=D(on_hand),
        allocated=D(allocated),
        reserved=D(reserved),
        damaged=D(damaged),
        quarantined=D(quarantined),
        incoming=incoming or [],
        as_of=as_of,
    )


def arriving(quantity: str, on: date | None) -> IncomingStock:
    return IncomingStock(quantity=D(quantity), expected_on=on)


def avail(
    levels: list[InventoryLevel], rules: InventoryRules, mapping: dict[str, str] | None = None
) -> list[StockAvailability]:
    return availability("TSHIRT-RED-M", levels, rules, mapping or {}, source="erp", as_of=NOW)


# --- location_sellable -------------------------------------------------------------------


def test_sellable_subtracts_every_committed_and_unusable_unit() -> None:
    sellable, notes = location_sellable(
        level("100", allocated="10", reserved="5", damaged="3", quarantined="2")
    )
    assert sellable == D(80)
    assert notes == []


def test_damaged_and_quarantined_stock_is_not_sellable() -> None:
    assert location_sellable(level("10", damaged="4"))[0] == D(6)
    assert location_sellable(level("10", quarantined="10"))[0] == D(0)


def test_negative_erp_stock_becomes_zero_with_a_note() -> None:
    sellable, notes = location_sellable(level("-3", sku="X", location="2"))
    assert sellable == D(0)
    assert notes == ["ERP reports on hand -3 for SKU X at location 2; treated as 0"]


def test_overcommitted_stock_becomes_zero_with_a_note() -> None:
    sellable, notes = location_sellable(level("5", allocated="8"))
    assert sellable == D(0)
    assert len(notes) == 1
    assert "on hand 5" in notes[0] and "-3" in notes[0] and "treated as 0" in notes[0]


quantities = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False)
non_negative = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False)


@given(on_hand=quantities, allocated=non_negative, reserved=non_negative, damaged=non_negative,
       quarantined=non_negative)  # fmt: skip
def test_sellable_is_never_negative_and_is_the_formula_when_positive(
    on_hand: Decimal, allocated: Decimal, reserved: Decimal, damaged: Decimal, quarantined: Decimal
) -> None:
    sellable, notes = location_sellable(
        InventoryLevel(
            source="erp", sku="S", location="1", on_hand=on_hand, allocated=allocated,
            reserved=reserved, damaged=damaged, quarantined=quarantined, as_of=NOW,
        )
    )  # fmt: skip
    formula = on_hand - allocated - reserved - damaged - quarantined
    assert sellable >= 0
    if on_hand >= 0 and formula >= 0:
        assert sellable == formula
        assert notes == []
    else:
        assert sellable == 0
        assert notes


# --- availability: aggregate ---------------------------------------------------------------


def test_aggregate_sums_locations_and_subtracts_safety_stock_once() -> None:
    rules = InventoryRules(safety_stock=D(2))
    [result] = avail([level("10", location="1"), level("5", location="2", allocated="1")], rules)
    assert result.location is None
    assert result.available == D(12)  # 10 + 4 - 2, not 10 + 4 - 2 - 2
    assert result.status == "in_stock"
    assert result.source == "erp" and result.as_of == NOW


def test_per_sku_safety_stock_overrides_the_default() -> None:
    rules = InventoryRules(safety_stock=D(2), safety_stock_by_sku={"TSHIRT-RED-M": D(9)})
    [result] = avail([level("10")], rules)
    assert result.available == D(1)
    other = availability("OTHER", [level("10", sku="OTHER")], rules, {}, source="erp", as_of=NOW)
    assert other[0].available == D(8)


def test_safety_stock_never_drives_availability_below_zero() -> None:
    [result] = avail([level("3")], InventoryRules(safety_stock=D(5)))
    assert result.available == D(0)
    assert result.status == "out_of_stock"


def test_negative_location_does_not_eat_stock_of_another_and_note_is_carried() -> None:
    [result] = avail([level("-3", location="2"), level("7", location="1")], InventoryRules())
    assert result.available == D(7)
    assert result.notes == [
        "ERP reports on hand -3 for SKU TSHIRT-RED-M at location 2; treated as 0"
    ]


def test_backorder_status_only_for_configured_skus_with_incoming_stock() -> None:
    incoming = [IncomingStock(quantity=D(20), expected_on=date(2024, 6, 1))]
    rules = InventoryRules(backorder_skus=["TSHIRT-RED-M"])
    [result] = avail([level("0", incoming=incoming)], rules)
    assert result.status == "backorder"
    assert result.restock_on == date(2024, 6, 1)
    # not configured: out of stock, though the restock date still travels
    [plain] = avail([level("0", incoming=incoming)], InventoryRules())
    assert plain.status == "out_of_stock"
    assert plain.restock_on == date(2024, 6, 1)
    # configured but nothing incoming
    [nothing] = avail([level("0")], rules)
    assert nothing.status == "out_of_stock"


def test_restock_on_is_the_earliest_incoming_date() -> None:
    levels = [
        level("0", location="1", incoming=[arriving("5", date(2024, 7, 1))]),
        level("0", location="2", incoming=[arriving("5", date(2024, 6, 15)), arriving("5", None)]),
        level("0", location="3", incoming=[arriving("0", date(2024, 5, 5))]),  # nothing comes
    ]
    [result] = avail(levels, InventoryRules())
    assert result.restock_on == date(2024, 6, 15)


def test_a_newer_level_of_the_same_location_supersedes_the_older() -> None:
    old = level("50", as_of=NOW - timedelta(minutes=5))
    new = level("4", as_of=NOW)
    for levels in ([old, new], [new, old]):
        [result] = avail(levels, InventoryRules())
        assert result.available == D(4)


def test_levels_of_another_sku_are_refused() -> None:
    with pytest.raises(ValueError, match="OTHER"):
        avail([level("1", sku="OTHER")], InventoryRules())


@given(
    levels=st.lists(st.tuples(quantities, non_negative, non_negative), min_size=0, max_size=6),
    safety=non_negative,
)
def test_aggregate_equals_sum_of_sellables_minus_safety_floored(
    levels: list[tuple[Decimal, Decimal, Decimal]], safety: Decimal
) -> None:
    erp = [
        level(str(on_hand), location=str(i), allocated=str(alloc), damaged=str(damaged))
        for i, (on_hand, alloc, damaged) in enumerate(levels)
    ]
    [result] = avail(erp, InventoryRules(safety_stock=safety))
    total = sum((location_sellable(lv)[0] for lv in erp), D(0))
    assert result.available == max(D(0), total - safety)
    assert (result.status == "in_stock") == (result.available > 0)


# --- availability: per location --------------------------------------------------------------


def test_per_location_sums_erp_locations_of_one_store_location_and_notes_unmapped() -> None:
    rules = InventoryRules(mode="per_location", safety_stock=D(1))
    mapping = {"WH-A": "store-east", "WH-B": "store-east", "WH-C": "store-west"}
    levels = [
        level("10", location="WH-A"),
        level("5", location="WH-B"),
        level("3", location="WH-C"),
        level("99", location="WH-X"),
    ]
    result = avail(levels, rules, mapping)
    assert [(a.location, a.available) for a in result] == [
        ("store-east", D(14)),  # 10 + 5 - 1 safety stock, once
        ("store-west", D(2)),
    ]
    unmapped_note = (
        "ERP location WH-X is not mapped to a store location; its stock of SKU TSHIRT-RED-M "
        "is left out"
    )
    assert all(unmapped_note in a.notes for a in result)


def test_per_location_restock_date_comes_only_from_that_store_locations_levels() -> None:
    rules = InventoryRules(mode="per_location")
    levels = [
        level("0", location="A", incoming=[arriving("1", date(2024, 6, 1))]),
        level("0", location="B", incoming=[arriving("1", date(2024, 5, 2))]),
    ]
    result = avail(levels, rules, {"A": "east", "B": "west"})
    assert {a.location: a.restock_on for a in result} == {
        "east": date(2024, 6, 1),
        "west": date(2024, 5, 2),
    }


def test_per_location_with_nothing_mapped_returns_nothing() -> None:
    assert avail([level("5", location="WH-X")], InventoryRules(mode="per_location"), {}) == []


# --- bundles -----------------------------------------------------------------------------


def test_bundle_is_limited_by_the_scarcest_component() -> None:
    components = {"SHIRT": D(2), "CAP": D(1)}
    assert bundle_available(components, {"SHIRT": D(9), "CAP": D(10)}) == D(4)
    assert bundle_available(components, {"SHIRT": D(100), "CAP": D(3)}) == D(3)


def test_bundle_with_an_unknown_or_empty_component_is_unavailable() -> None:
    assert bundle_available({"SHIRT": D(1), "CAP": D(1)}, {"SHIRT": D(5)}) == D(0)
    assert bundle_available({"SHIRT": D(1)}, {"SHIRT": D(-2)}) == D(0)
    assert bundle_available({}, {"SHIRT": D(5)}) == D(0)


def test_fractional_component_quantities_are_exact() -> None:
    assert bundle_available({"FABRIC": D("0.5")}, {"FABRIC": D("10.2")}) == D(20)


@given(
    parts=st.dictionaries(
        st.sampled_from(["A", "B", "C", "D"]),
        st.tuples(
            st.decimals(min_value=D("0.01"), max_value=50, places=2),
            st.decimals(min_value=0, max_value=10_000, places=2),
        ),
        min_size=1,
    )
)
def test_bundles_never_need_more_than_a_component_has(
    parts: dict[str, tuple[Decimal, Decimal]],
) -> None:
    components = {sku: per_bundle for sku, (per_bundle, _) in parts.items()}
    stock = {sku: available for sku, (_, available) in parts.items()}
    bundles = bundle_available(components, stock)
    assert bundles >= 0 and bundles == bundles.to_integral_value()
    for sku, per_bundle in components.items():
        assert bundles * per_bundle <= stock[sku]
    # and one more bundle would not fit for at least one component
    assert any((bundles + 1) * per_bundle > stock[sku] for sku, per_bundle in components.items())


def test_bundles_containing_a_component() -> None:
    rules = InventoryRules(
        bundles={
            "KIT-1": {"SHIRT": D(1), "CAP": D(1)},
            "KIT-2": {"CAP": D(2)},
            "KIT-3": {"MUG": D(1)},
        }
    )
    assert bundles_containing("CAP", rules) == ["KIT-1", "KIT-2"]
    assert bundles_containing("SOCK", rules) == []


# --- rules validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"safety_stock": "-1"},
        {"safety_stock_by_sku": {"X": "-2"}},
        {"bundles": {"KIT": {"A": "0"}}},
        {"bundles": {"KIT": {"A": "-1"}}},
        {"bundles": {"KIT": {}}},
        {"drift_tolerance": "-1"},
        {"normal_delay_seconds": -5},
        {"mode": "nearest"},
        {"unknown_rule": 1},
    ],
)
def test_invalid_rules_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        InventoryRules.model_validate(config)


def test_defaults_are_sensible_and_documented() -> None:
    rules = InventoryRules()
    assert rules.safety_stock == 0 and rules.mode == "aggregate"
    assert rules.reconcile_interval_seconds == 86400
    assert all(field.description for field in InventoryRules.model_fields.values())


def test_high_velocity_skus_skip_the_coalescing_delay() -> None:
    rules = InventoryRules(high_velocity_skus=["HOT"], normal_delay_seconds=120)
    assert rules.delay_seconds_for("HOT") == 0
    assert rules.delay_seconds_for("SLOW") == 120


# --- drift and supersession --------------------------------------------------------------


def test_drift_beyond_tolerance_is_reported_and_missing_keys_count_as_zero() -> None:
    expected = {("A", None): D(10), ("B", "east"): D(5), ("C", None): D(3)}
    actual = {("A", None): D(10), ("B", "east"): D(7), ("D", "west"): D(4)}
    drifts = find_drift(expected, actual, tolerance=D(1))
    assert drifts == [
        Drift("B", "east", D(5), D(7)),
        Drift("C", None, D(3), D(0)),
        Drift("D", "west", D(0), D(4)),
    ]
    assert [d.difference for d in drifts] == [D(2), D(-3), D(4)]


def test_drift_within_tolerance_is_not_reported() -> None:
    assert find_drift({("A", None): D(10)}, {("A", None): D(11)}, tolerance=D(1)) == []
    assert find_drift({("A", None): D(10)}, {("A", None): D(11)}, tolerance=D(0)) != []


def test_newer_supersedes_older_but_equal_does_not() -> None:
    assert is_newer(NOW, NOW - timedelta(seconds=1))
    assert not is_newer(NOW, NOW)
    assert not is_newer(NOW - timedelta(seconds=1), NOW)
