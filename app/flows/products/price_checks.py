"""The prices one price delivery carries, each checked against its own baseline.

A store charges more than the base price: a sale, quantity breaks, group prices (with their
own breaks) and customer prices. The guard checks each of them against the last value
accepted for it (a 90% cut of a wholesale tier is as costly as one of the base price), and a
scheduled sale when it is planned rather than when it starts. One held price holds the
delivery. The delivery's directives list every price it carries (``guarded_prices``), so an
approval accepts them all and a replay checks them all again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from app.flows.products.rules import (
    APPROVALS_HINT,
    GuardDecision,
    PreparedPrice,
    PricingRules,
    price_guard,
)
from kernel.canonical.product import QuantityBreak, SalePrice

BASE = "base"
SALE = "sale"
BREAK = "break"
GROUP = "group"
GROUP_BREAK = "group_break"
CUSTOMER = "customer"
KINDS = (BASE, SALE, BREAK, GROUP, GROUP_BREAK, CUSTOMER)
# the one price guarded before prices were guarded one by one: the base or the running sale
EFFECTIVE = "effective"

# (kind, key): which price a baseline is of
PriceId = tuple[str, str]


@dataclass(frozen=True)
class GuardedPrice:
    """One amount a store would charge: ``kind`` and ``key`` say which (see ``KINDS``)."""

    kind: str
    key: str  # "" (base; a sale without start), the sale's start, a quantity, group, customer
    amount: Decimal

    @property
    def id(self) -> PriceId:
        return (self.kind, self.key)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def sale_key(sale: SalePrice) -> str:
    """A sale is known by its start: a new start is a new sale, checked against the base."""
    return "" if sale.starts_at is None else sale.starts_at.astimezone(UTC).isoformat()


def _breaks(kind: str, prefix: str, breaks: list[QuantityBreak]) -> list[GuardedPrice]:
    return [GuardedPrice(kind, f"{prefix}{_plain(b.min_quantity)}", b.price) for b in breaks]


def carried_prices(prepared: PreparedPrice) -> list[GuardedPrice]:
    """Every amount of ``prepared`` a store would charge, the planned sale included."""
    price = prepared.price
    found = [GuardedPrice(BASE, "", price.base)]
    if prepared.planned_sale is not None:
        found.append(
            GuardedPrice(SALE, sale_key(prepared.planned_sale), prepared.planned_sale.price)
        )
    found += _breaks(BREAK, "", price.breaks)
    for group in price.group_prices:
        found.append(GuardedPrice(GROUP, group.group, group.price))
        # the quantity goes last: a group name may hold an "@", a quantity never does
        found += _breaks(GROUP_BREAK, f"{group.group}@", group.breaks)
    found += [GuardedPrice(CUSTOMER, c.customer_key, c.price) for c in price.customer_prices]
    # the same break twice: the lower one is what a buyer gets
    lowest: dict[PriceId, GuardedPrice] = {}
    for item in found:
        if item.id not in lowest or item.amount < lowest[item.id].amount:
            lowest[item.id] = item
    return list(lowest.values())


def label(kind: str, key: str) -> str:
    """How a person reads which price it is: "group wholesale", "break (10+)"."""
    if kind == SALE:
        return f"sale from {key}" if key else "sale"
    if kind == BREAK:
        return f"break ({key}+)"
    if kind == GROUP:
        return f"group {key}"
    if kind == GROUP_BREAK:
        group, _, quantity = key.rpartition("@")
        return f"group {group} break ({quantity}+)"
    if kind == CUSTOMER:
        return f"customer {key}"
    return kind


@dataclass(frozen=True)
class PriceCheck:
    """One carried price against its baseline."""

    price: GuardedPrice
    previous: Decimal | None
    decision: GuardDecision

    @property
    def held(self) -> bool:
        return self.decision.hold

    def as_json(self) -> dict[str, Any]:
        percent = self.decision.change_percent
        return {
            "kind": self.price.kind,
            "key": self.price.key,
            "old": None if self.previous is None else str(self.previous),
            "new": str(self.price.amount),
            "change_percent": None
            if percent is None
            else str(percent.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)),
            "held": self.held,
        }


def check_prices(
    prices: Iterable[GuardedPrice], baselines: dict[PriceId, Decimal], rules: PricingRules
) -> list[PriceCheck]:
    """Each price against the last value accepted for it. A sale with none (a new sale) is a
    change of what shoppers pay: it is checked against the accepted base price (so is the
    effective price of a delivery planned before prices were guarded one by one)."""
    checks = []
    for price in prices:
        previous = baselines.get(price.id)
        if previous is None and price.kind in (SALE, EFFECTIVE):
            previous = baselines.get((BASE, ""))
        checks.append(PriceCheck(price, previous, price_guard(previous, price.amount, rules)))
    return checks


def held_reason(checks: Iterable[PriceCheck]) -> str | None:
    """Why the delivery waits: every price that tripped the guard, or None if none did."""
    suffix = f"; {APPROVALS_HINT}"
    held = [
        f"{label(c.price.kind, c.price.key)} {c.decision.reason.removesuffix(suffix)}"
        for c in checks
        if c.held
    ]
    return "; ".join(held) + suffix if held else None


def guarded_directives(checks: list[PriceCheck]) -> list[dict[str, Any]]:
    return [check.as_json() for check in checks]


def prices_from_directives(directives: dict[str, Any] | None) -> list[GuardedPrice] | None:
    """The prices a planned price delivery carries; None if it does not say (not a price, or
    planned before prices were guarded one by one: then only its effective price is known)."""
    directives = directives or {}
    try:
        listed = directives.get("guarded_prices")
        if listed is not None:
            return [
                GuardedPrice(str(p["kind"]), str(p["key"]), Decimal(str(p["new"]))) for p in listed
            ]
        if "effective_price" in directives:
            return [GuardedPrice(EFFECTIVE, "", Decimal(str(directives["effective_price"])))]
    except (KeyError, TypeError, InvalidOperation):
        return None
    return None
