"""Units an ERP stock level does not include yet, per SKU and the location they ship from.

The store's orders the ERP has not booked, and those it booked after the level of their
location was taken, are sold already: the level must not offer them again. Each order ships
from one ERP location, the one the ERP connector books it at: its ``location`` keys
(``location:`` tags, else its source connection) mapped on the ERP connection, the first
mapped one winning as in ``kernel.mappings.first_mapped``. An order whose location is not
known ships from ``rules.inventory.default_order_location``; without one it may ship from
anywhere, so it counts at every store location (the store shows less, never more).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.flows.inventory.rules import InventoryRules
from app.flows.inventory.state import OrderUnits, booked_units, orders_in_transit
from app.flows.state import mapping_table
from kernel.canonical.inventory import InventoryLevel


@dataclass
class InTransit:
    """Units per (SKU, ERP location); the location None: not known, so it may be any."""

    units: dict[tuple[str, str | None], Decimal] = field(default_factory=dict)

    def add(self, sku: str, erp_location: str | None, quantity: Decimal) -> None:
        key = (sku, erp_location)
        self.units[key] = self.units.get(key, Decimal(0)) + quantity

    def at(
        self, sku: str, store_location: str | None, store_location_of: Mapping[str, str]
    ) -> Decimal:
        """Units of ``sku`` to subtract from one store location (None: the store's total,
        every unit wherever it ships from). ``store_location_of``: ERP location → store
        location (``mappings.location`` of the store)."""
        return sum(
            (
                quantity
                for (sku_, erp_location), quantity in self.units.items()
                if sku_ == sku
                and (
                    store_location is None
                    or erp_location is None
                    or store_location_of.get(erp_location) == store_location
                )
            ),
            Decimal(0),
        )


@dataclass(frozen=True)
class OrderLocations:
    """Where the ERP books an order: ``location`` keys → ERP location (the ERP
    connection's ``mappings.location``), else the rules' default."""

    erp_location_of: Mapping[str, str]
    default: str | None

    def of(self, order: OrderUnits) -> str | None:
        return next(
            (self.erp_location_of[k] for k in order.location_keys if k in self.erp_location_of),
            self.default,
        )


async def order_locations(session: AsyncSession, erp: str, rules: InventoryRules) -> OrderLocations:
    return OrderLocations(
        await mapping_table(session, erp, "location"), rules.default_order_location
    )


async def not_yet_booked(
    session: AsyncSession, store: str, erp: str, where: OrderLocations
) -> InTransit:
    """``store``'s orders the ERP has not booked, at the ERP location each ships from."""
    found = InTransit()
    for order in await orders_in_transit(session, store, erp):
        location = where.of(order)
        for sku, quantity in order.units.items():
            found.add(sku, location, quantity)
    return found


async def booked_after_levels(
    session: AsyncSession,
    store: str,
    erp: str,
    sku: str,
    levels: list[InventoryLevel],
    where: OrderLocations,
    *,
    margin_seconds: float,
    now: datetime,
) -> tuple[Decimal, InTransit]:
    """Units of ``sku`` in ``store``'s orders the ERP booked: (those its levels include, the
    rest as in transit).

    An order is in the level of the location it was booked at when it was sent well before
    that level's time: the ERP's clock and ours differ a little (``margin_seconds``; counting
    it too late is the safe side). An order whose location has no level, or is unknown, is
    judged by the oldest level (the safe side again).
    """
    margin = timedelta(seconds=margin_seconds)
    oldest = min((lv.as_of for lv in levels), default=now) - margin
    cutoff_at = {lv.location: lv.as_of - margin for lv in levels}
    in_level, recent = await booked_units(session, store, erp, sku, oldest)
    not_yet = InTransit()
    for order in recent:
        location = where.of(order)
        cutoff = oldest if location is None else cutoff_at.get(location, oldest)
        quantity = order.units.get(sku, Decimal(0))
        if order.booked_at is not None and order.booked_at <= cutoff:
            in_level += quantity
        else:
            not_yet.add(sku, location, quantity)
    return in_level, not_yet
