"""Business rules of the returns flow: what may be returned, restocking, refund matching."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.canonical.order import Order
from kernel.canonical.returns import CreditMemo, Disposition, Refund, Return, ReturnLine
from kernel.types import Finding

Bucket = Literal["sellable", "damaged", "none"]


def _default_restock() -> dict[Disposition, Bucket]:
    return {
        "restock": "sellable",
        "damaged": "damaged",
        "scrap": "none",
        "return_to_vendor": "none",
    }


class ReturnRules(BaseModel):
    """``rules.returns`` in the config file; editable at run time through the API."""

    model_config = ConfigDict(extra="forbid")

    refund_tolerance: Decimal = Field(
        default=Decimal("0.00"),
        ge=0,
        description="Largest difference between the store's refunds and the ERP's credit "
        "memos of an order that still counts as matched (rounding).",
    )
    restock: dict[Disposition, Bucket] = Field(
        default_factory=_default_restock,
        description="Where returned goods go by their inspection disposition: back to "
        "sellable stock, to damaged stock, or nowhere. A disposition left out is not "
        "restocked.",
    )
    refund_from_credit_memo: bool = Field(
        default=True,
        description="When the ERP issues a credit memo for an order the store has not "
        "refunded, refund it in the store. Never when the store already refunded: then the "
        "two are only reconciled.",
    )


def _num(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


# --- what may be returned -----------------------------------------------------------------


def returned_quantities(returns: Iterable[Return]) -> dict[str, Decimal]:
    """Returned quantity by SKU; rejected returns give nothing back."""
    totals: dict[str, Decimal] = {}
    for ret in returns:
        if ret.status == "rejected":
            continue
        for line in ret.lines:
            totals[line.sku] = totals.get(line.sku, Decimal(0)) + line.quantity
    return totals


def check_return(order: Order, earlier: list[Return], new: Return) -> list[str]:
    """Problems with ``new`` given the order and its earlier returns; empty: fine.

    Partial returns are fine; a SKU can come back at most as often as it was ordered.
    """
    if new.status == "rejected":
        return []  # it returns nothing, so it cannot return too much
    ordered: dict[str, Decimal] = {}
    for line in order.lines:
        if line.sku:
            ordered[line.sku] = ordered.get(line.sku, Decimal(0)) + line.quantity
    # an updated return replaces its earlier version instead of adding to it
    before = returned_quantities(r for r in earlier if r.entity_key != new.entity_key)
    problems: list[str] = []
    for sku, quantity in returned_quantities([new]).items():
        if quantity <= 0:
            problems.append(f"SKU {sku}: returned quantity {_num(quantity)} is not positive")
        elif sku not in ordered:
            problems.append(f"SKU {sku} is not on order {order.number}")
        else:
            already = before.get(sku, Decimal(0))
            returnable = ordered[sku] - already
            if quantity > returnable:
                problems.append(
                    f"SKU {sku}: {_num(quantity)} to return but only {_num(returnable)} "
                    f"returnable ({_num(ordered[sku])} ordered, {_num(already)} already "
                    f"returned) on {order.number}"
                )
    return problems


# --- restocking ---------------------------------------------------------------------------


@dataclass
class RestockAdjustment:
    sku: str
    bucket: Literal["sellable", "damaged"]
    quantity: Decimal


def restock_adjustments(lines: list[ReturnLine], rules: ReturnRules) -> list[RestockAdjustment]:
    """Inventory adjustments for inspected return lines, one per SKU and bucket.

    Lines without a disposition are not inspected yet and adjust nothing.
    """
    totals: dict[tuple[str, Literal["sellable", "damaged"]], Decimal] = {}
    for line in lines:
        if line.disposition is None:
            continue
        bucket = rules.restock.get(line.disposition, "none")
        if bucket == "none" or line.quantity <= 0:
            continue
        key = (line.sku, bucket)
        totals[key] = totals.get(key, Decimal(0)) + line.quantity
    return [RestockAdjustment(sku, bucket, qty) for (sku, bucket), qty in totals.items()]


# --- refund ↔ credit memo -----------------------------------------------------------------


@dataclass
class Reconciliation:
    status: Literal["matched", "mismatch", "waiting"]
    difference: Decimal | None  # credit memos - refunds, when one currency on both sides
    message: str


def _totals(amounts: Iterable[tuple[Decimal, str]]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for amount, currency in amounts:
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals


def _text(totals: dict[str, Decimal]) -> str:
    return " + ".join(f"{amount} {currency}" for currency, amount in sorted(totals.items()))


def reconcile_refund(
    credit_memos: list[CreditMemo], refunds: list[Refund], rules: ReturnRules
) -> Reconciliation:
    """Do the ERP's credit memos and the store's refunds of one order add up?"""
    memos = _totals((m.amount.amount, m.amount.currency) for m in credit_memos)
    paid = _totals((r.amount.amount, r.amount.currency) for r in refunds)
    if not memos and not paid:
        return Reconciliation("waiting", None, "no refund and no credit memo yet")
    if not memos:
        return Reconciliation(
            "waiting", None, f"refunds {_text(paid)}; waiting for the ERP's credit memo"
        )
    if not paid:
        return Reconciliation(
            "waiting", None, f"credit memos {_text(memos)}; waiting for the store's refund"
        )
    both = f"credit memos {_text(memos)} vs refunds {_text(paid)}"
    if set(memos) != set(paid):
        return Reconciliation("mismatch", None, f"{both}: currencies differ")
    differences = {c: memos[c] - paid[c] for c in memos}
    single = next(iter(differences.values())) if len(differences) == 1 else None
    over = {c: d for c, d in differences.items() if abs(d) > rules.refund_tolerance}
    if over:
        diff_text = ", ".join(f"{d} {c}" for c, d in sorted(over.items()))
        return Reconciliation(
            "mismatch",
            single,
            f"{both}: difference {diff_text} exceeds the tolerance of {rules.refund_tolerance}",
        )
    return Reconciliation("matched", single, f"{both}: matched")


def mismatch_finding(rec: Reconciliation, order_key: str) -> Finding | None:
    """A refund_mismatch finding for an operator, or None when nothing is wrong (yet)."""
    if rec.status != "mismatch":
        return None
    return Finding(
        kind="refund_mismatch",
        message=f"order {order_key}: {rec.message}",
        data={
            "order_key": order_key,
            "difference": None if rec.difference is None else str(rec.difference),
        },
    )
