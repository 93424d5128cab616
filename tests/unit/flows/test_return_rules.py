"""Returns flow rules: what may be returned, restocking, refund vs credit memo."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.flows.returns.rules import (
    Reconciliation,
    RestockAdjustment,
    ReturnRules,
    check_return,
    mismatch_finding,
    reconcile_refund,
    restock_adjustments,
)
from kernel.canonical.common import Money
from kernel.canonical.returns import CreditMemo, Refund, Return, ReturnLine
from tests.unit.flows.orders import NOW, make_order

ORDER_KEY = "shop-eu:order:1001"


def make_return(external_id: str, lines: dict[str, str], status: str = "requested") -> Return:
    return Return.model_validate(
        {
            "source": "shop-eu",
            "external_id": external_id,
            "order_key": ORDER_KEY,
            "status": status,
            "requested_at": NOW,
            "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines.items()],
        }
    )


def memo(amount: str, currency: str = "EUR", n: int = 1) -> CreditMemo:
    return CreditMemo(
        source="erp",
        external_id=f"CM-{n}",
        order_key=ORDER_KEY,
        amount=Money(amount=Decimal(amount), currency=currency),
        created_at=NOW,
    )


def refund(amount: str, currency: str = "EUR", n: int = 1) -> Refund:
    return Refund(
        source="shop-eu",
        external_id=f"R-{n}",
        order_key=ORDER_KEY,
        amount=Money(amount=Decimal(amount), currency=currency),
        created_at=NOW,
    )


# --- config -------------------------------------------------------------------------------


def test_defaults() -> None:
    rules = ReturnRules()
    assert rules.refund_tolerance == Decimal("0.00")
    assert rules.restock == {
        "restock": "sellable",
        "damaged": "damaged",
        "scrap": "none",
        "return_to_vendor": "none",
    }
    for name, field in ReturnRules.model_fields.items():
        assert field.description, name
    with pytest.raises(ValidationError):
        ReturnRules.model_validate({"restock": {"lost": "none"}})
    with pytest.raises(ValidationError):
        ReturnRules.model_validate({"refund_tolerance": "-1"})


# --- what may be returned -----------------------------------------------------------------


def test_partial_returns_are_allowed_until_all_is_back() -> None:
    order = make_order({"A": "3", "B": "1"})
    first = make_return("RMA-1", {"A": "1"})
    second = make_return("RMA-2", {"A": "2", "B": "1"})
    assert check_return(order, [], first) == []
    assert check_return(order, [first], second) == []


def test_over_return_is_reported_with_numbers() -> None:
    order = make_order({"A": "3"})
    first = make_return("RMA-1", {"A": "2"})
    second = make_return("RMA-2", {"A": "2"})
    problems = check_return(order, [first], second)
    assert len(problems) == 1
    assert "SKU A" in problems[0]
    assert "only 1 returnable" in problems[0]
    assert "3 ordered" in problems[0] and "2 already returned" in problems[0]


def test_sku_not_on_the_order_cannot_be_returned() -> None:
    problems = check_return(make_order({"A": "1"}), [], make_return("RMA-1", {"Z": "1"}))
    assert problems == ["SKU Z is not on order #1001"]


def test_non_positive_quantity_is_reported() -> None:
    problems = check_return(make_order({"A": "1"}), [], make_return("RMA-1", {"A": "0"}))
    assert len(problems) == 1 and "not positive" in problems[0]


def test_rejected_returns_do_not_count() -> None:
    order = make_order({"A": "2"})
    rejected = make_return("RMA-1", {"A": "2"}, status="rejected")
    assert check_return(order, [rejected], make_return("RMA-2", {"A": "2"})) == []
    # and a rejected return itself is never a problem
    assert check_return(order, [], make_return("RMA-3", {"A": "9"}, status="rejected")) == []


def test_updated_return_replaces_its_earlier_version() -> None:
    order = make_order({"A": "2"})
    requested = make_return("RMA-1", {"A": "2"})
    received = make_return("RMA-1", {"A": "2"}, status="received")
    assert check_return(order, [requested], received) == []


@given(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=5))
def test_returning_in_any_split_up_to_the_order_is_fine(parts: list[int]) -> None:
    order = make_order({"A": str(sum(parts))})
    earlier: list[Return] = []
    for n, part in enumerate(parts):
        new = make_return(f"RMA-{n}", {"A": str(part)})
        assert check_return(order, earlier, new) == []
        earlier.append(new)
    assert check_return(order, earlier, make_return("RMA-x", {"A": "1"})) != []


# --- restocking ---------------------------------------------------------------------------


def test_restock_by_disposition() -> None:
    lines = [
        ReturnLine(sku="A", quantity=Decimal(1), disposition="restock"),
        ReturnLine(sku="A", quantity=Decimal(2), disposition="restock"),
        ReturnLine(sku="B", quantity=Decimal(1), disposition="damaged"),
        ReturnLine(sku="C", quantity=Decimal(1), disposition="scrap"),
        ReturnLine(sku="D", quantity=Decimal(1), disposition="return_to_vendor"),
        ReturnLine(sku="E", quantity=Decimal(1), disposition=None),  # not inspected yet
    ]
    assert restock_adjustments(lines, ReturnRules()) == [
        RestockAdjustment("A", "sellable", Decimal(3)),
        RestockAdjustment("B", "damaged", Decimal(1)),
    ]


def test_restock_follows_the_configured_buckets() -> None:
    rules = ReturnRules(restock={"restock": "sellable", "scrap": "damaged"})
    lines = [
        ReturnLine(sku="C", quantity=Decimal(1), disposition="scrap"),
        ReturnLine(sku="B", quantity=Decimal(1), disposition="damaged"),  # not configured
    ]
    assert restock_adjustments(lines, rules) == [RestockAdjustment("C", "damaged", Decimal(1))]


# --- refund vs credit memo ----------------------------------------------------------------


def test_refund_and_credit_memo_match() -> None:
    rec = reconcile_refund(
        [memo("30.00")], [refund("10.00", n=1), refund("20.0", n=2)], ReturnRules()
    )
    assert rec.status == "matched"
    assert rec.difference == Decimal(0)
    assert mismatch_finding(rec, ORDER_KEY) is None


def test_refund_and_credit_memo_mismatch_names_both_totals() -> None:
    rec = reconcile_refund([memo("30.00")], [refund("29.99")], ReturnRules())
    assert rec.status == "mismatch"
    assert rec.difference == Decimal("0.01")
    assert "30.00 EUR" in rec.message and "29.99 EUR" in rec.message
    finding = mismatch_finding(rec, ORDER_KEY)
    assert finding is not None
    assert finding.kind == "refund_mismatch"
    assert ORDER_KEY in finding.message
    assert finding.data == {"order_key": ORDER_KEY, "difference": "0.01"}


def test_difference_within_tolerance_is_matched() -> None:
    rules = ReturnRules(refund_tolerance=Decimal("0.01"))
    assert reconcile_refund([memo("30.00")], [refund("29.99")], rules).status == "matched"
    assert reconcile_refund([memo("30.00")], [refund("29.98")], rules).status == "mismatch"


def test_different_currencies_are_a_mismatch() -> None:
    rules = ReturnRules(refund_tolerance=Decimal("100"))
    rec = reconcile_refund([memo("30.00")], [refund("30.00", "USD")], rules)
    assert rec.status == "mismatch"
    assert rec.difference is None
    assert "currencies" in rec.message
    assert mismatch_finding(rec, ORDER_KEY) is not None


@pytest.mark.parametrize(
    ("memos", "refunds", "waiting_for"),
    [
        ([], [refund("10.00")], "credit memo"),
        ([memo("10.00")], [], "refund"),
        ([], [], "no refund"),
    ],
)
def test_one_side_missing_is_waiting(
    memos: list[CreditMemo], refunds: list[Refund], waiting_for: str
) -> None:
    rec = reconcile_refund(memos, refunds, ReturnRules())
    assert rec.status == "waiting"
    assert rec.difference is None
    assert waiting_for in rec.message
    assert mismatch_finding(rec, ORDER_KEY) is None


@given(amounts=st.lists(st.decimals(min_value=0, max_value=1000, places=2), min_size=1, max_size=4))
def test_the_same_amounts_split_differently_match(amounts: list[Decimal]) -> None:
    memos = [memo(str(a), n=i) for i, a in enumerate(amounts)]
    total = sum(amounts, Decimal(0))
    rec = reconcile_refund(memos, [refund(str(total))], ReturnRules())
    assert rec == Reconciliation("matched", Decimal(0), rec.message)
