"""Business rules of the shipments flow: notification trigger, partial shipments, carriers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.canonical.order import Order
from kernel.canonical.shipment import Shipment

ShipmentStatus = Literal["packed", "shipped", "picked_up", "delivered"]


def _default_notify_on() -> list[ShipmentStatus]:
    # "shipped" is when the ERP has a tracking number; the customer can follow the parcel
    return ["shipped"]


class ShipmentRules(BaseModel):
    """``rules.shipments`` in the config file; editable at run time through the API."""

    model_config = ConfigDict(extra="forbid")

    notify_on: list[ShipmentStatus] = Field(
        default_factory=_default_notify_on,
        description="Shipment statuses on which the store e-mails the customer; empty: "
        "never. Use picked_up to wait until the carrier really has the parcel.",
    )
    allow_over_shipment: bool = Field(
        default=False,
        description="Accept shipments of more than was ordered (e.g. weighed goods); "
        "otherwise an over-shipment is reported as a problem.",
    )


def should_notify(shipment: Shipment, rules: ShipmentRules) -> bool:
    """Whether the store should e-mail the customer about this shipment now."""
    return shipment.status in rules.notify_on


def _num(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def ordered_quantities(order: Order) -> dict[str, Decimal]:
    """Ordered quantity by SKU (lines without a SKU cannot be shipped by SKU)."""
    totals: dict[str, Decimal] = {}
    for line in order.lines:
        if line.sku:
            totals[line.sku] = totals.get(line.sku, Decimal(0)) + line.quantity
    return totals


def shipped_quantities(shipments: Iterable[Shipment]) -> dict[str, Decimal]:
    """Shipped quantity by SKU across all packages of all ``shipments``."""
    totals: dict[str, Decimal] = {}
    for shipment in shipments:
        for package in shipment.packages:
            for line in package.lines:
                totals[line.sku] = totals.get(line.sku, Decimal(0)) + line.quantity
    return totals


def _others(earlier: list[Shipment], new: Shipment) -> list[Shipment]:
    # a re-sent or updated shipment replaces its earlier version instead of adding to it
    return [s for s in earlier if s.entity_key != new.entity_key]


def check_quantities(
    order: Order,
    earlier: list[Shipment],
    new: Shipment,
    *,
    allow_over_shipment: bool = False,
) -> list[str]:
    """Problems with ``new`` given the order and the shipments before it; empty: fine."""
    problems: list[str] = []
    ordered = ordered_quantities(order)
    before = shipped_quantities(_others(earlier, new))
    now = shipped_quantities([new])
    for sku, quantity in now.items():
        if quantity <= 0:
            problems.append(f"SKU {sku}: shipped quantity {_num(quantity)} is not positive")
            continue
        if sku not in ordered:
            problems.append(f"SKU {sku} is not on order {order.number}")
            continue
        total = before.get(sku, Decimal(0)) + quantity
        if total > ordered[sku] and not allow_over_shipment:
            problems.append(
                f"SKU {sku}: {_num(total)} shipped in total "
                f"({_num(before.get(sku, Decimal(0)))} before, {_num(quantity)} now) "
                f"but {_num(ordered[sku])} ordered on {order.number}"
            )
    return problems


def remaining(order: Order, shipments: list[Shipment]) -> dict[str, Decimal]:
    """What is still to ship, by SKU; fully shipped SKUs are left out ({} = complete)."""
    shipped = shipped_quantities(shipments)
    left = {
        sku: qty - shipped.get(sku, Decimal(0)) for sku, qty in ordered_quantities(order).items()
    }
    return {sku: qty for sku, qty in left.items() if qty > 0}


def map_carriers(shipment: Shipment, carrier_map: Mapping[str, str]) -> tuple[Shipment, list[str]]:
    """A copy with each package's carrier named as the destination knows it.

    Looked up as written, then case-insensitively. Unmapped carriers are kept as they
    are and listed once each, so the caller can warn (the store then shows them as text).
    """
    folded = {key.casefold(): value for key, value in carrier_map.items()}
    copy = shipment.model_copy(deep=True)
    unmapped: list[str] = []
    for package in copy.packages:
        carrier = package.carrier
        if not carrier:
            continue
        mapped = carrier_map.get(carrier) or folded.get(carrier.casefold())
        if mapped:
            package.carrier = mapped
        elif carrier not in unmapped:
            unmapped.append(carrier)
    return copy, unmapped
