"""Pricing rules: declared rounding, sale windows, MAP, precedence and the change guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.flows.products.rules import (
    PricingRules,
    RoundingMode,
    RoundingRule,
    active_sale,
    next_change_at,
    prepare_price,
    price_guard,
    round_amount,
    unit_price_for,
)
from kernel.canonical.product import (
    CustomerPrice,
    GroupPrice,
    Price,
    QuantityBreak,
    SalePrice,
)

D = Decimal
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DEFAULT = PricingRules()


def price(base: str, currency: str = "EUR", **fields: Any) -> Price:
    return Price(
        source="erp", sku="SKU-1", currency=currency, base=D(base), effective_at=NOW, **fields
    )


def sale(amount: str, starts: datetime | None = None, ends: datetime | None = None) -> SalePrice:
    return SalePrice(price=D(amount), starts_at=starts, ends_at=ends)


# --- rounding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "amount", "expected"),
    [
        ("half_up", "10.995", "11.00"),
        ("half_up", "-10.995", "-11.00"),
        ("half_even", "10.985", "10.98"),
        ("half_even", "10.995", "11.00"),
        ("half_down", "10.995", "10.99"),
        ("half_down", "10.9951", "11.00"),
        ("up", "10.991", "11.00"),
        ("up", "-10.991", "-11.00"),
        ("down", "10.999", "10.99"),
        ("ceiling", "-10.999", "-10.99"),
        ("floor", "-10.991", "-11.00"),
    ],
)
def test_rounding_modes(mode: RoundingMode, amount: str, expected: str) -> None:
    rules = PricingRules(default_rounding=RoundingRule(mode=mode))
    result = round_amount(D(amount), "EUR", rules)
    assert str(result) == expected


def test_zero_decimal_currencies_round_to_whole_units_by_default() -> None:
    assert str(round_amount(D("1234.5"), "JPY", DEFAULT)) == "1235"
    assert str(round_amount(D("1234.4"), "KRW", DEFAULT)) == "1234"
    assert str(round_amount(D("12.3456"), "KWD", DEFAULT)) == "12.346"
    assert str(round_amount(D("12.3456"), "USD", DEFAULT)) == "12.35"


def test_a_configured_rule_beats_the_builtin_places() -> None:
    rules = PricingRules(rounding={"JPY": RoundingRule(places=2)})
    assert str(round_amount(D("1234.567"), "JPY", rules)) == "1234.57"


def test_chf_cash_rounding_to_five_centimes() -> None:
    rules = PricingRules(rounding={"CHF": RoundingRule(increment=D("0.05"))})
    assert str(round_amount(D("9.97"), "CHF", rules)) == "9.95"
    assert str(round_amount(D("9.975"), "CHF", rules)) == "10.00"  # tie: half_up
    assert str(round_amount(D("9.98"), "CHF", rules)) == "10.00"
    assert str(round_amount(D("9.924"), "CHF", rules)) == "9.90"
    assert str(round_amount(D("9.97"), "EUR", rules)) == "9.97"  # only CHF


def test_no_negative_zero() -> None:
    assert str(round_amount(D("-0.001"), "EUR", DEFAULT)) == "0.00"


@pytest.mark.parametrize(
    "config",
    [
        {"places": 7},
        {"places": -1},
        {"increment": "0"},
        {"increment": "-0.05"},
        {"increment": "0.005"},  # finer than 2 places
        {"mode": "bankers"},
    ],
)
def test_invalid_rounding_rules_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RoundingRule.model_validate(config)


def test_invalid_pricing_rules_are_refused() -> None:
    with pytest.raises(ValidationError):
        PricingRules.model_validate({"rounding": {"EURO": {}}})
    with pytest.raises(ValidationError):
        PricingRules.model_validate({"guard_percent": "-1"})
    with pytest.raises(ValidationError):
        PricingRules.model_validate({"surprise": True})


amounts = st.decimals(min_value=-100_000, max_value=100_000, places=6, allow_nan=False)
rounding_rules = st.builds(
    RoundingRule,
    mode=st.sampled_from(get_args(RoundingMode)),
    places=st.integers(min_value=0, max_value=6),
)


@st.composite
def rules_with_increments(draw: st.DrawFn) -> RoundingRule:
    rule = draw(rounding_rules)
    if draw(st.booleans()):
        # a multiple of the last place, e.g. 0.05 at 2 places or 10 at 0 places
        multiple = draw(st.sampled_from([1, 2, 5, 10, 25, 50]))
        return rule.model_copy(update={"increment": rule.unit_of_places * multiple})
    return rule


def _rules(rule: RoundingRule) -> PricingRules:
    return PricingRules(rounding={"XTS": rule})


@given(amount=amounts, rule=rules_with_increments())
def test_rounded_result_has_the_declared_places_and_increment(
    amount: Decimal, rule: RoundingRule
) -> None:
    result = round_amount(amount, "XTS", _rules(rule))
    assert result.as_tuple().exponent == -rule.places
    assert result % rule.step == 0


@given(amount=amounts, rule=rules_with_increments())
def test_half_modes_are_within_half_a_step_and_others_within_one(
    amount: Decimal, rule: RoundingRule
) -> None:
    distance = abs(round_amount(amount, "XTS", _rules(rule)) - amount)
    if rule.mode.startswith("half_"):
        assert distance * 2 <= rule.step
    else:
        assert distance < rule.step


@given(amount=amounts, rule=rules_with_increments())
def test_rounding_is_idempotent(amount: Decimal, rule: RoundingRule) -> None:
    rules = _rules(rule)
    once = round_amount(amount, "XTS", rules)
    assert round_amount(once, "XTS", rules) == once


@given(amount=amounts, places=st.integers(min_value=0, max_value=6))
def test_half_even_equals_decimal_round_half_even(amount: Decimal, places: int) -> None:
    rules = _rules(RoundingRule(mode="half_even", places=places))
    expected = amount.quantize(D(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    assert round_amount(amount, "XTS", rules) == expected


@given(a=amounts, b=amounts, rule=rules_with_increments())
def test_rounding_is_monotone(a: Decimal, b: Decimal, rule: RoundingRule) -> None:
    low, high = sorted((a, b))
    rules = _rules(rule)
    assert round_amount(low, "XTS", rules) <= round_amount(high, "XTS", rules)


# --- sale windows ----------------------------------------------------------------------------


def test_sale_is_active_only_inside_its_window() -> None:
    p = price("20.00", sale=sale("15.00", NOW, NOW + 2 * HOUR))
    assert active_sale(p, NOW - timedelta(seconds=1)) is None
    assert active_sale(p, NOW) == p.sale  # start is inclusive
    assert active_sale(p, NOW + HOUR) == p.sale
    assert active_sale(p, NOW + 2 * HOUR) is None  # end is exclusive


def test_open_ended_sales() -> None:
    assert active_sale(price("20", sale=sale("15")), NOW) is not None
    assert active_sale(price("20", sale=sale("15", ends=NOW + HOUR)), NOW - 100 * HOUR) is not None
    assert active_sale(price("20", sale=sale("15", starts=NOW)), NOW + 100 * HOUR) is not None
    assert active_sale(price("20"), NOW) is None


def test_next_change_is_the_next_sale_start_or_end() -> None:
    p = price("20.00", sale=sale("15.00", NOW, NOW + 2 * HOUR))
    assert next_change_at(p, NOW - HOUR) == NOW
    assert next_change_at(p, NOW) == NOW + 2 * HOUR
    assert next_change_at(p, NOW + 2 * HOUR) is None
    assert next_change_at(price("20.00"), NOW) is None


# --- prepare_price ---------------------------------------------------------------------------


def test_prepare_rounds_every_amount_and_drops_cost() -> None:
    p = price(
        "10.995",
        cost=D("4.123"),
        breaks=[QuantityBreak(min_quantity=D(10), price=D("9.499"))],
        group_prices=[GroupPrice(group="wholesale", price=D("8.005"))],
        customer_prices=[CustomerPrice(customer_key="shop:customer:1", price=D("7.777"))],
    )
    prepared = prepare_price(p, DEFAULT, NOW)
    assert prepared.price.base == D("11.00")
    assert prepared.price.breaks[0].price == D("9.50")
    assert prepared.price.group_prices[0].price == D("8.01")
    assert prepared.price.customer_prices[0].price == D("7.78")
    assert prepared.price.cost is None
    assert "base 10.995 rounded to 11.00" in prepared.notes
    assert prepared.effective == D("11.00")
    assert p.base == D("10.995")  # the input is left alone


def test_prepare_sends_cost_only_when_asked() -> None:
    prepared = prepare_price(price("10", cost=D("4.123")), PricingRules(send_cost=True), NOW)
    assert prepared.price.cost == D("4.12")


def test_map_is_never_undercut() -> None:
    p = price(
        "12.00",
        map_price=D("9.99"),
        sale=sale("7.99", NOW - HOUR, NOW + HOUR),
        breaks=[QuantityBreak(min_quantity=D(10), price=D("9.00"))],
        group_prices=[
            GroupPrice(
                group="wholesale",
                price=D("8.50"),
                breaks=[QuantityBreak(min_quantity=D(50), price=D("6.00"))],
            )
        ],
        customer_prices=[CustomerPrice(customer_key="c1", price=D("5.00"))],
    )
    prepared = prepare_price(p, DEFAULT, NOW)
    out = prepared.price
    sellable = [
        out.base,
        out.sale.price if out.sale else None,
        *(b.price for b in out.breaks),
        *(g.price for g in out.group_prices),
        *(b.price for g in out.group_prices for b in g.breaks),
        *(c.price for c in out.customer_prices),
    ]
    assert None not in sellable
    assert all(amount is not None and amount >= D("9.99") for amount in sellable)
    assert "sale 7.99 is below MAP 9.99; sent 9.99" in prepared.notes
    assert prepared.effective == D("9.99")
    assert out.base == D("12.00")  # above MAP: untouched


def test_map_itself_is_rounded_up_so_it_cannot_be_undercut() -> None:
    prepared = prepare_price(price("5", map_price=D("9.991")), DEFAULT, NOW)
    assert prepared.price.map_price == D("10.00")
    assert prepared.price.base == D("10.00")


def test_map_is_not_enforced_when_switched_off() -> None:
    rules = PricingRules(enforce_map=False)
    prepared = prepare_price(price("5.00", map_price=D("9.99")), rules, NOW)
    assert prepared.price.base == D("5.00")


def test_sale_is_sent_only_while_it_runs() -> None:
    p = price("20.00", sale=sale("15.00", NOW + HOUR, NOW + 3 * HOUR))
    before = prepare_price(p, DEFAULT, NOW)
    assert before.price.sale is None
    assert before.effective == D("20.00")
    assert before.next_change_at == NOW + HOUR
    assert any("not running" in note for note in before.notes)
    during = prepare_price(p, DEFAULT, NOW + HOUR)
    assert during.price.sale is not None and during.price.sale.price == D("15.00")
    assert during.effective == D("15.00")
    assert during.next_change_at == NOW + 3 * HOUR
    after = prepare_price(p, DEFAULT, NOW + 3 * HOUR)
    assert after.price.sale is None and after.next_change_at is None


def test_prepare_jpy_and_chf() -> None:
    assert prepare_price(price("1999.6", "JPY"), DEFAULT, NOW).price.base == D("2000")
    chf = PricingRules(rounding={"CHF": RoundingRule(increment=D("0.05"))})
    assert prepare_price(price("19.97", "CHF"), chf, NOW).price.base == D("19.95")


# --- unit_price_for --------------------------------------------------------------------------

B2B = price(
    "100.00",
    sale=sale("90.00", NOW - HOUR, NOW + HOUR),
    breaks=[
        QuantityBreak(min_quantity=D(10), price=D("85.00")),
        QuantityBreak(min_quantity=D(50), price=D("80.00")),
    ],
    group_prices=[
        GroupPrice(
            group="wholesale",
            price=D("95.00"),
            breaks=[QuantityBreak(min_quantity=D(20), price=D("70.00"))],
        )
    ],
    customer_prices=[CustomerPrice(customer_key="shop:customer:7", price=D("92.00"))],
)


@pytest.mark.parametrize(
    ("quantity", "group", "customer", "at", "expected"),
    [
        (1, None, None, NOW - 2 * HOUR, "100.00"),  # base
        (1, None, None, NOW, "90.00"),  # sale running
        (10, None, None, NOW, "85.00"),  # break beats sale
        (49, None, None, NOW - 2 * HOUR, "85.00"),
        (50, None, None, NOW, "80.00"),  # best break
        (1, "wholesale", None, NOW, "95.00"),  # group price beats a lower sale
        (19, "wholesale", None, NOW, "95.00"),
        (20, "wholesale", None, NOW, "70.00"),  # the group's own break
        (50, "wholesale", None, NOW, "70.00"),
        (1, "retail-unknown", None, NOW, "90.00"),  # unknown group: general prices
        (100, "wholesale", "shop:customer:7", NOW, "92.00"),  # customer beats everything
        (1, None, "shop:customer:other", NOW, "90.00"),
    ],
)
def test_unit_price_precedence(
    quantity: int, group: str | None, customer: str | None, at: datetime, expected: str
) -> None:
    unit = unit_price_for(B2B, D(quantity), group=group, customer_key=customer, at=at)
    assert unit == D(expected)


def test_a_group_break_above_the_group_price_does_not_raise_it() -> None:
    p = price(
        "100.00",
        group_prices=[
            GroupPrice(
                group="dealer",
                price=D("60.00"),
                breaks=[QuantityBreak(min_quantity=D(10), price=D("65.00"))],
            )
        ],
    )
    assert unit_price_for(p, D(10), group="dealer", customer_key=None, at=NOW) == D("60.00")


def test_unit_price_never_below_map() -> None:
    p = B2B.model_copy(update={"map_price": D("88.00")})
    assert unit_price_for(p, D(50), group=None, customer_key=None, at=NOW) == D("88.00")
    assert unit_price_for(p, D(20), group="wholesale", customer_key=None, at=NOW) == D("88.00")
    assert unit_price_for(p, D(1), group=None, customer_key="shop:customer:7", at=NOW) == D("92.00")


def test_unit_price_needs_a_positive_quantity() -> None:
    with pytest.raises(ValueError, match="quantity"):
        unit_price_for(B2B, D(0), group=None, customer_key=None, at=NOW)


# --- the price guard -------------------------------------------------------------------------


def test_a_ninety_percent_cut_is_held() -> None:
    decision = price_guard(D("100.00"), D("10.00"), DEFAULT)
    assert decision.hold
    assert decision.change_percent == D(-90)
    assert decision.reason == (
        "price changes from 100.00 to 10.00 (-90.0%), more than the 20% guard; "
        "approve or reject it in /api/v1/approvals"
    )


def test_a_ten_percent_change_is_not_held() -> None:
    decision = price_guard(D("100.00"), D("110.00"), DEFAULT)
    assert not decision.hold
    assert decision.change_percent == D(10)
    assert "+10.0%" in decision.reason


def test_the_guard_limit_itself_passes_and_just_above_is_held() -> None:
    assert not price_guard(D("100.00"), D("120.00"), DEFAULT).hold
    assert price_guard(D("100.00"), D("120.01"), DEFAULT).hold
    assert price_guard(D("100.00"), D("79.99"), DEFAULT).hold


def test_first_price_is_not_held() -> None:
    decision = price_guard(None, D("10.00"), DEFAULT)
    assert not decision.hold and decision.change_percent is None


def test_change_from_zero_is_held() -> None:
    decision = price_guard(D("0.00"), D("10.00"), DEFAULT)
    assert decision.hold and decision.change_percent is None
    assert "/api/v1/approvals" in decision.reason
    assert not price_guard(D(0), D(0), DEFAULT).hold


def test_guard_can_be_disabled_or_widened() -> None:
    assert not price_guard(D("100"), D("10"), PricingRules(guard_enabled=False)).hold
    assert not price_guard(D("100"), D("10"), PricingRules(guard_percent=D(95))).hold


@given(
    previous=st.decimals(min_value=D("0.01"), max_value=10_000, places=2),
    new=st.decimals(min_value=0, max_value=10_000, places=2),
)
def test_guard_holds_exactly_the_changes_beyond_the_percent(
    previous: Decimal, new: Decimal
) -> None:
    decision = price_guard(previous, new, DEFAULT)
    assert decision.hold == (abs(new - previous) * 100 > previous * 20)
