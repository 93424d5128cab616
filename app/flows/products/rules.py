"""Pricing rules: rounding, sale windows, MAP, price precedence and the change guard.

The ERP is the price master. Before a price goes to a store it is rounded per a declared
rule for its currency, stripped of what the store must not see (cost, sales that are not
running), raised to the minimum advertised price, and checked against the guard that holds
suspiciously large changes for a person to approve (the "price update cascade": a 90% cut
synced to a live store).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
)
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kernel.canonical.product import (
    CustomerPrice,
    GroupPrice,
    Price,
    QuantityBreak,
    SalePrice,
)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)

RoundingMode = Literal["half_up", "half_even", "half_down", "up", "down", "ceiling", "floor"]

# Our names for the decimal module's rounding constants ("up"/"down" are away from/toward zero).
_DECIMAL_ROUNDING: dict[str, str] = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "half_down": ROUND_HALF_DOWN,
    "up": ROUND_UP,
    "down": ROUND_DOWN,
    "ceiling": ROUND_CEILING,
    "floor": ROUND_FLOOR,
}

# ISO 4217 minor units other than 2, used when a currency has no configured rule.
BUILTIN_PLACES: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
            "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}  # fmt: skip


def _multiple_of(value: Decimal, unit: Decimal) -> bool:
    try:
        return value % unit == 0
    except ArithmeticError:  # out of Decimal's range: certainly no price step
        return False


class RoundingRule(BaseModel):
    """How amounts of one currency are rounded."""

    model_config = ConfigDict(extra="forbid")

    mode: RoundingMode = Field(
        default="half_up",
        description="half_up/half_even/half_down: to the nearest, ties as named; up/down: away "
        "from/toward zero; ceiling/floor: toward +/- infinity.",
    )
    places: int = Field(default=2, ge=0, le=6, description="Decimal places of the result.")
    increment: Decimal | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        allow_inf_nan=False,
        description="Round to a multiple of this (e.g. 0.05 for Swiss cash rounding) with the "
        "same mode; must be a multiple of 10^-places.",
    )

    @model_validator(mode="after")
    def _increment_fits_places(self) -> RoundingRule:
        if self.increment is not None and not _multiple_of(self.increment, self.unit_of_places):
            raise ValueError(
                f"increment {self.increment} has more than {self.places} decimal places"
            )
        return self

    @property
    def unit_of_places(self) -> Decimal:
        return ONE.scaleb(-self.places)

    @property
    def step(self) -> Decimal:
        """The rounding step: the increment, else one unit of the last place."""
        return self.increment if self.increment is not None else self.unit_of_places


class PricingRules(BaseModel):
    """The ``rules.pricing`` part of the config; editable at run time through the API."""

    model_config = ConfigDict(extra="forbid")

    rounding: dict[str, RoundingRule] = Field(
        default_factory=dict, description="Rounding rule by ISO currency code, e.g. CHF."
    )
    default_rounding: RoundingRule = Field(
        default_factory=RoundingRule,
        description="Rule for currencies not in rounding; zero- and three-decimal currencies "
        "(JPY, KRW, KWD, …) keep its mode but use their ISO 4217 places.",
    )
    guard_enabled: bool = Field(default=True, description="Hold large price changes for approval.")
    guard_percent: Decimal = Field(
        default=Decimal(20),
        ge=0,
        description="A change of more than this percent is held for approval.",
    )
    enforce_map: bool = Field(
        default=True,
        description="Raise every sellable amount below the minimum advertised price to it.",
    )
    send_cost: bool = Field(default=False, description="Send the cost price to the store.")

    @field_validator("rounding")
    @classmethod
    def _currency_codes(cls, value: dict[str, RoundingRule]) -> dict[str, RoundingRule]:
        bad = sorted(code for code in value if not (len(code) == 3 and code.isalpha()))
        if bad:
            raise ValueError(f"not ISO currency codes: {', '.join(bad)}")
        return {code.upper(): rule for code, rule in value.items()}

    def rounding_for(self, currency: str) -> RoundingRule:
        configured = self.rounding.get(currency.upper())
        if configured is not None:
            return configured
        places = BUILTIN_PLACES.get(currency.upper())
        if places is None:
            return self.default_rounding
        return RoundingRule(mode=self.default_rounding.mode, places=places)


def _round_to_step(amount: Decimal, step: Decimal, mode: str) -> Decimal:
    # Exact: divmod gives the whole steps and the exact remainder; the remainder only matters
    # as 0, below half, half or above half, so an exact stand-in fraction is rounded instead
    # of a quotient that Decimal division may have cut to 28 digits.
    whole, remainder = divmod(amount, step)
    twice = abs(remainder) * 2
    if remainder == 0:
        fraction = ZERO
    elif twice < step:
        fraction = Decimal("0.25")
    elif twice == step:
        fraction = Decimal("0.5")
    else:
        fraction = Decimal("0.75")
    if amount < 0:
        fraction = -fraction
    return (whole + fraction).quantize(ONE, rounding=mode) * step


def _round(amount: Decimal, rule: RoundingRule, mode: RoundingMode) -> Decimal:
    rounded = _round_to_step(amount, rule.step, _DECIMAL_ROUNDING[mode])
    result = rounded.quantize(rule.unit_of_places)
    return result.copy_abs() if result == 0 else result  # no "-0.00"


def round_amount(amount: Decimal, currency: str, rules: PricingRules) -> Decimal:
    """``amount`` rounded by the declared rule of ``currency`` (places, then increment)."""
    rule = rules.rounding_for(currency)
    return _round(amount, rule, rule.mode)


def _round_map(amount: Decimal, currency: str, rules: PricingRules) -> Decimal:
    # A MAP is a floor: rounding it down would let every price raised to it undercut it.
    return _round(amount, rules.rounding_for(currency), "ceiling")


def active_sale(price: Price, at: datetime) -> SalePrice | None:
    """The sale running at ``at`` (starts_at <= at < ends_at; a missing end is open)."""
    sale = price.sale
    if sale is None:
        return None
    if sale.starts_at is not None and at < sale.starts_at:
        return None
    if sale.ends_at is not None and at >= sale.ends_at:
        return None
    return sale


def next_change_at(price: Price, at: datetime) -> datetime | None:
    """When the price a shopper pays next changes by itself (a sale starts or ends)."""
    if price.sale is None:
        return None
    moments = [m for m in (price.sale.starts_at, price.sale.ends_at) if m is not None and m > at]
    return min(moments, default=None)


@dataclass
class PreparedPrice:
    """A price ready for a store, with what was changed on the way and why."""

    price: Price
    notes: list[str]
    effective: Decimal  # what a shopper pays for one unit now
    next_change_at: datetime | None
    # the sale as it will go out, rounded and MAP-raised, while it runs or before it starts
    # (None once it has ended): the guard checks it when it is planned, not when it starts
    planned_sale: SalePrice | None = None


class _Preparer:
    """Rounds and MAP-raises the amounts of one price, collecting notes."""

    def __init__(self, price: Price, rules: PricingRules) -> None:
        self.currency = price.currency
        self.rules = rules
        self.notes: list[str] = []
        self.map_price: Decimal | None = None
        if price.map_price is not None:
            self.map_price = _round_map(price.map_price, price.currency, rules)

    def sellable(self, amount: Decimal, what: str) -> Decimal:
        rounded = round_amount(amount, self.currency, self.rules)
        if rounded != amount:
            self.notes.append(f"{what} {amount} rounded to {rounded}")
        if self.rules.enforce_map and self.map_price is not None and rounded < self.map_price:
            self.notes.append(
                f"{what} {rounded} is below MAP {self.map_price}; sent {self.map_price}"
            )
            return self.map_price
        return rounded

    def breaks(self, breaks: list[QuantityBreak], what: str) -> list[QuantityBreak]:
        return [
            b.model_copy(
                update={"price": self.sellable(b.price, f"{what}break at {b.min_quantity}")}
            )
            for b in breaks
        ]


def prepare_price(price: Price, rules: PricingRules, at: datetime) -> PreparedPrice:
    """The price as a store should get it at ``at``: rounded, MAP enforced, cost dropped
    (unless ``send_cost``), and the sale kept only while it runs."""
    prep = _Preparer(price, rules)
    base = prep.sellable(price.base, "base")

    sale: SalePrice | None = None
    planned_sale: SalePrice | None = None
    running = active_sale(price, at)
    if running is not None:
        sale = running.model_copy(update={"price": prep.sellable(running.price, "sale")})
        planned_sale = sale
    elif price.sale is not None:
        prep.notes.append(f"sale {price.sale.price} is not running at {at.isoformat()}; not sent")
        if next_change_at(price, at) is not None:  # it starts later: prepared without notes
            later = _Preparer(price, rules).sellable(price.sale.price, "sale")
            planned_sale = price.sale.model_copy(update={"price": later})
    breaks = prep.breaks(price.breaks, "")

    groups = [
        GroupPrice(
            group=g.group,
            price=prep.sellable(g.price, f"group {g.group} price"),
            breaks=prep.breaks(g.breaks, f"group {g.group} "),
        )
        for g in price.group_prices
    ]
    customers = [
        CustomerPrice(
            customer_key=c.customer_key,
            price=prep.sellable(c.price, f"price for customer {c.customer_key}"),
        )
        for c in price.customer_prices
    ]

    cost: Decimal | None = None
    if price.cost is not None:
        if rules.send_cost:
            cost = round_amount(price.cost, price.currency, rules)
        else:
            prep.notes.append("cost not sent (send_cost is off)")

    prepared = price.model_copy(
        update={
            "base": base,
            "cost": cost,
            "sale": sale,
            "map_price": prep.map_price,
            "breaks": breaks,
            "group_prices": groups,
            "customer_prices": customers,
        }
    )
    return PreparedPrice(
        price=prepared,
        notes=prep.notes,
        effective=sale.price if sale is not None else base,
        next_change_at=next_change_at(price, at),
        planned_sale=planned_sale,
    )


def _best_break(breaks: list[QuantityBreak], quantity: Decimal) -> Decimal | None:
    applicable = [b.price for b in breaks if quantity >= b.min_quantity]
    return min(applicable, default=None)


def unit_price_for(
    price: Price,
    quantity: Decimal,
    *,
    group: str | None,
    customer_key: str | None,
    at: datetime,
) -> Decimal:
    """The unit price a buyer pays for ``quantity`` units at ``at``.

    Precedence (the first that applies wins; negotiated prices beat promotions):
    1. a customer-specific price for ``customer_key``;
    2. the price of the buyer's ``group``, or its lowest quantity break that
       ``quantity`` reaches if lower;
    3. otherwise the lowest of the base price, the sale running at ``at`` and the
       general quantity breaks that ``quantity`` reaches.
    The result is never below the MAP. Amounts are used as given (round them first with
    ``prepare_price`` if they are not yet in the currency's precision).
    """
    if quantity <= 0:
        raise ValueError(f"quantity must be greater than 0, got {quantity}")
    unit = _unit_before_map(price, quantity, group=group, customer_key=customer_key, at=at)
    if price.map_price is not None and unit < price.map_price:
        return price.map_price
    return unit


def _unit_before_map(
    price: Price, quantity: Decimal, *, group: str | None, customer_key: str | None, at: datetime
) -> Decimal:
    if customer_key is not None:
        for customer_price in price.customer_prices:
            if customer_price.customer_key == customer_key:
                return customer_price.price
    if group is not None:
        for group_price in price.group_prices:
            if group_price.group == group:
                group_break = _best_break(group_price.breaks, quantity)
                if group_break is None:
                    return group_price.price
                return min(group_price.price, group_break)
    candidates = [price.base]
    sale = active_sale(price, at)
    if sale is not None:
        candidates.append(sale.price)
    general_break = _best_break(price.breaks, quantity)
    if general_break is not None:
        candidates.append(general_break)
    return min(candidates)


@dataclass(frozen=True)
class GuardDecision:
    """Whether a price change must wait for a person, and why."""

    hold: bool
    change_percent: Decimal | None  # signed; None when it cannot be measured
    reason: str


def _plain(value: Decimal) -> str:
    # 20 -> "20", 12.50 -> "12.5"; never "2E+1"
    return format(value.normalize(), "f")


APPROVALS_HINT = "approve or reject it in /api/v1/approvals"


def price_guard(previous: Decimal | None, new: Decimal, rules: PricingRules) -> GuardDecision:
    """Hold a change of more than ``guard_percent`` (either way) until someone approves it."""
    if previous is None:
        return GuardDecision(False, None, f"first price seen ({new}); nothing to compare")
    if previous == 0:
        if new == 0:
            return GuardDecision(False, ZERO, f"price stays {new}")
        reason = f"price changes from {previous} to {new}; a change from zero has no percentage"
        if not rules.guard_enabled:
            return GuardDecision(False, None, f"{reason} (guard disabled)")
        return GuardDecision(True, None, f"{reason}; {APPROVALS_HINT}")

    change = (new - previous) / abs(previous) * HUNDRED
    shown = change.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    shown = shown.copy_abs() if shown == 0 else shown  # no "-0.0%"
    sign = "+" if shown > 0 else ""
    what = f"price changes from {previous} to {new} ({sign}{shown}%)"
    limit = f"the {_plain(rules.guard_percent)}% guard"
    if not rules.guard_enabled:
        return GuardDecision(False, change, f"{what} (guard disabled)")
    # compared by multiplying, so no division rounding decides a case at the limit
    if abs(new - previous) * HUNDRED > rules.guard_percent * abs(previous):
        return GuardDecision(True, change, f"{what}, more than {limit}; {APPROVALS_HINT}")
    return GuardDecision(False, change, f"{what}, within {limit}")
