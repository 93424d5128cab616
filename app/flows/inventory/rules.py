"""Inventory rules: from what the ERP reports to what a store may sell.

Pure functions over canonical models. The worker feeds them the ERP's levels and the
configured ``rules.inventory``; they return the availabilities to send, with notes that
explain every number an operator might find surprising (negative ERP stock, unmapped
locations).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kernel.canonical.inventory import InventoryLevel, StockAvailability, StockStatus

ZERO = Decimal(0)

InventoryMode = Literal["aggregate", "per_location"]


class InventoryRules(BaseModel):
    """The ``rules.inventory`` part of the config; editable at run time through the API."""

    model_config = ConfigDict(extra="forbid")

    safety_stock: Decimal = Field(
        default=ZERO,
        ge=0,
        description="Units held back from every SKU so the store shows out of stock a little "
        "early instead of overselling; per-SKU overrides are in safety_stock_by_sku.",
    )
    safety_stock_by_sku: dict[str, Decimal] = Field(
        default_factory=dict,
        description="Safety stock per SKU; overrides safety_stock for that SKU.",
    )
    mode: InventoryMode = Field(
        default="aggregate",
        description="aggregate: one total per SKU for the store. per_location: every ERP "
        "location maps to a store location; ERP locations mapping to the same store "
        "location are summed and unmapped ERP locations are left out (with a note).",
    )
    bundles: dict[str, dict[str, Decimal]] = Field(
        default_factory=dict,
        description="Bundles that exist only in the store: bundle SKU -> component SKU -> "
        "quantity of the component in one bundle.",
    )
    high_velocity_skus: list[str] = Field(
        default_factory=list,
        description="SKUs whose changes are sent at once, without the coalescing delay.",
    )
    normal_delay_seconds: float = Field(
        default=0,
        ge=0,
        description="Coalescing window for SKUs that are not high-velocity: an update waits "
        "this long so newer levels supersede it and the store API is called less often.",
    )
    backorder_skus: list[str] = Field(
        default_factory=list,
        description="SKUs shown as 'backorder' instead of 'out_of_stock' at 0 while stock is "
        "incoming.",
    )
    reconcile_interval_seconds: float = Field(
        default=86400,
        gt=0,
        description="How often the full reconciliation compares store stock to the ERP.",
    )
    drift_tolerance: Decimal = Field(
        default=ZERO,
        ge=0,
        description="A reconciliation difference up to this many units is not reported.",
    )
    push_mode: Literal["delta", "absolute"] = Field(
        default="delta",
        description="delta: after the first push of a SKU, send how much the ERP-side stock "
        "changed (it commutes with the store's own sales, so a push can never undo a sale "
        "made while it was on its way); absolute: always set the computed quantity. Bundles "
        "and per-location stock are always absolute.",
    )
    erp_clock_margin_seconds: float = Field(
        default=0.0,
        ge=0,
        description="An order the ERP booked counts as part of an ERP stock level when it was "
        "sent to the ERP at least this long before the level's time. Raise it if the ERP's "
        "clock can run ahead of the gateway's (a larger margin errs toward showing less "
        "stock, never more, until the ERP's next level).",
    )
    subtract_orders_in_transit: bool = Field(
        default=True,
        description="Subtract the store's own orders that have not reached the ERP yet from "
        "what the store may sell: the ERP's level cannot know them, and sending it unchanged "
        "would give the store back stock it has already sold (the flash-sale oversell).",
    )

    default_order_location: str | None = Field(
        default=None,
        min_length=1,
        description="ERP location id an order ships from when the gateway cannot tell (no "
        "location: tag, and neither a tag nor its source connection has a location mapping on "
        "the ERP connection): set it to where the ERP books such orders (NetSuite: the "
        "connection's location_id option). Unset: in per_location mode such an order in "
        "transit is subtracted at every store location, since any of them may ship it (less "
        "is shown, never more).",
    )

    @field_validator("safety_stock_by_sku")
    @classmethod
    def _no_negative_safety_stock(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        negative = sorted(sku for sku, qty in value.items() if qty < 0)
        if negative:
            raise ValueError(f"safety stock must not be negative (SKUs: {', '.join(negative)})")
        return value

    @field_validator("bundles")
    @classmethod
    def _components_are_positive(
        cls, value: dict[str, dict[str, Decimal]]
    ) -> dict[str, dict[str, Decimal]]:
        for bundle, components in value.items():
            if not components:
                raise ValueError(f"bundle {bundle} has no components")
            for component, qty in components.items():
                if qty <= 0:
                    raise ValueError(
                        f"bundle {bundle}: quantity of component {component} must be "
                        f"greater than 0, got {qty}"
                    )
        return value

    def safety_stock_for(self, sku: str) -> Decimal:
        return self.safety_stock_by_sku.get(sku, self.safety_stock)

    def is_high_velocity(self, sku: str) -> bool:
        return sku in self.high_velocity_skus

    def delay_seconds_for(self, sku: str) -> float:
        """How long an update of ``sku`` may wait so a newer level can supersede it."""
        return 0.0 if self.is_high_velocity(sku) else self.normal_delay_seconds


def location_sellable(level: InventoryLevel) -> tuple[Decimal, list[str]]:
    """Sellable stock at one ERP location: on hand minus every committed or unusable unit.

    Stores cannot show negative stock, so anything below zero becomes 0 with a note saying
    what the ERP reported.
    """
    notes: list[str] = []
    if level.on_hand < 0:
        notes.append(
            f"ERP reports on hand {level.on_hand} for SKU {level.sku} at location "
            f"{level.location}; treated as 0"
        )
        return ZERO, notes
    sellable = level.on_hand - level.allocated - level.reserved - level.damaged - level.quarantined
    if sellable < 0:
        notes.append(
            f"ERP reports on hand {level.on_hand} for SKU {level.sku} at location "
            f"{level.location} but {level.on_hand - sellable} allocated, reserved, damaged or "
            f"quarantined; sellable {sellable} treated as 0"
        )
        return ZERO, notes
    return sellable, notes


def _newest_per_location(levels: Iterable[InventoryLevel]) -> list[InventoryLevel]:
    # A newer level supersedes an older one of the same location; keep first-seen order.
    newest: dict[str, InventoryLevel] = {}
    for level in levels:
        current = newest.get(level.location)
        if current is None or is_newer(level.as_of, current.as_of):
            newest[level.location] = level
    return list(newest.values())


def _has_incoming(levels: Iterable[InventoryLevel]) -> bool:
    return any(incoming.quantity > 0 for level in levels for incoming in level.incoming)


def _restock_on(levels: Iterable[InventoryLevel]) -> date | None:
    dates = [
        incoming.expected_on
        for level in levels
        for incoming in level.incoming
        if incoming.quantity > 0 and incoming.expected_on is not None
    ]
    return min(dates, default=None)


def _status(sku: str, available: Decimal, has_incoming: bool, rules: InventoryRules) -> StockStatus:
    if available > 0:
        return "in_stock"
    if has_incoming and sku in rules.backorder_skus:
        return "backorder"
    return "out_of_stock"


def _combine(
    sku: str,
    location: str | None,
    levels: list[InventoryLevel],
    rules: InventoryRules,
    *,
    source: str,
    as_of: datetime,
    extra_notes: list[str],
) -> StockAvailability:
    total = ZERO
    notes: list[str] = []
    for level in levels:
        sellable, level_notes = location_sellable(level)
        total += sellable
        notes.extend(level_notes)
    # Safety stock is held back once per availability the store sees, not per ERP location.
    available = max(ZERO, total - rules.safety_stock_for(sku))
    return StockAvailability(
        source=source,
        sku=sku,
        location=location,
        available=available,
        status=_status(sku, available, _has_incoming(levels), rules),
        restock_on=_restock_on(levels),
        as_of=as_of,
        notes=notes + extra_notes,
    )


def availability(
    sku: str,
    levels: list[InventoryLevel],
    rules: InventoryRules,
    store_location_of: Mapping[str, str],
    *,
    source: str,
    as_of: datetime,
) -> list[StockAvailability]:
    """What the store may sell of ``sku``, from the ERP's levels at each of its locations.

    aggregate mode: one availability with ``location=None`` over every ERP location.
    per_location mode: one availability per store location that at least one ERP location
    maps to (``store_location_of``: ERP location id -> store location id); unmapped ERP
    locations are left out and noted on every availability returned. If no ERP location is
    mapped, nothing is returned.
    """
    foreign = sorted({level.sku for level in levels if level.sku != sku})
    if foreign:
        raise ValueError(f"availability of {sku} was given levels of {', '.join(foreign)}")
    current = _newest_per_location(levels)

    if rules.mode == "aggregate":
        return [_combine(sku, None, current, rules, source=source, as_of=as_of, extra_notes=[])]

    by_store: dict[str, list[InventoryLevel]] = {}
    unmapped: list[str] = []
    for level in current:
        store_location = store_location_of.get(level.location)
        if store_location is None:
            unmapped.append(level.location)
        else:
            by_store.setdefault(store_location, []).append(level)
    extra = [
        f"ERP location {location} is not mapped to a store location; its stock of SKU {sku} "
        "is left out"
        for location in sorted(unmapped)
    ]
    return [
        _combine(sku, store_location, group, rules, source=source, as_of=as_of, extra_notes=extra)
        for store_location, group in sorted(by_store.items())
    ]


def bundle_available(
    components: Mapping[str, Decimal], component_available: Mapping[str, Decimal]
) -> Decimal:
    """How many whole bundles the components allow: the scarcest component decides.

    A component with unknown stock (or a bundle without components) allows none.
    """
    if not components:
        return ZERO
    counts: list[Decimal] = []
    for component, per_bundle in components.items():
        if per_bundle <= 0:
            raise ValueError(f"component {component} quantity per bundle must be > 0")
        available = component_available.get(component)
        if available is None or available <= 0:
            return ZERO
        # Decimal // is exact integer division (toward zero, = floor for positives).
        counts.append(available // per_bundle)
    return min(counts)


def bundles_containing(sku: str, rules: InventoryRules) -> list[str]:
    """The bundle SKUs whose availability changes when ``sku``'s stock changes."""
    return sorted(bundle for bundle, parts in rules.bundles.items() if sku in parts)


@dataclass(frozen=True)
class Drift:
    """A difference between what the store should show and what it shows."""

    sku: str
    location: str | None
    expected: Decimal
    actual: Decimal

    @property
    def difference(self) -> Decimal:
        """actual - expected: positive means the store shows more than it may sell."""
        return self.actual - self.expected


def find_drift(
    expected: Mapping[tuple[str, str | None], Decimal],
    actual: Mapping[tuple[str, str | None], Decimal],
    tolerance: Decimal,
) -> list[Drift]:
    """Every (sku, location) whose store stock differs from the expected by more than
    ``tolerance``; a key missing on one side counts as 0 there. Sorted by sku, location."""
    drifts: list[Drift] = []
    for key in set(expected) | set(actual):
        sku, location = key
        drift = Drift(sku, location, expected.get(key, ZERO), actual.get(key, ZERO))
        if abs(drift.difference) > tolerance:
            drifts.append(drift)
    # the store default (None) sorts before named locations
    return sorted(drifts, key=lambda d: (d.sku, d.location is not None, d.location or ""))


def is_newer(new_as_of: datetime, old_as_of: datetime) -> bool:
    """Whether a level stamped ``new_as_of`` supersedes one stamped ``old_as_of``.

    Equal is not newer: a re-sent level must not replace the one already queued.
    """
    return new_as_of > old_as_of
