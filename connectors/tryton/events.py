"""Tryton rows → canonical events (pure; ``polling.py`` reads the rows).

Rows are what ``read``/``search_read`` answer, with dotted fields (``product.code``) as
Tryton 8 returns them: ``{"product.": {"code": …, "id": …}}``. Quantities arrive as JSON
numbers, read as Decimal (``wire.loads``), so nothing here touches a float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from connectors.tryton import records as rec
from connectors.tryton.options import TrytonOptions
from connectors.tryton.wire import as_utc, decimal_of
from kernel.canonical.common import Address, Money
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import InventoryLevel
from kernel.canonical.returns import CreditMemo, MoneyLine
from kernel.canonical.shipment import Package, Shipment, ShipmentLine


def related(row: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The sub-record of a dotted read (``name.``), or an empty mapping."""
    value = row.get(f"{name}.")
    return value if isinstance(value, Mapping) else {}


def ref_id(value: Any, model: str) -> int | None:
    """The id in a Reference value ``"model,id"`` when it points at ``model``."""
    if isinstance(value, str) and "," in value:
        name, _, ident = value.partition(",")
        if name == model and ident.lstrip("-").isdigit() and int(ident) > 0:
            return int(ident)
    return None


def day_start(day: Any, options: TrytonOptions, fallback: datetime) -> datetime:
    """A Tryton date (no time) as the start of that day in the company's time zone."""
    if isinstance(day, date) and not isinstance(day, datetime):
        return datetime.combine(day, time.min, tzinfo=options.zone)
    return fallback


def quantity(value: Any) -> Decimal:
    number = decimal_of(value)
    return abs(number) if number is not None else Decimal(0)


# --- inventory ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    sku: str
    location: str
    on_hand: Decimal
    allocated: Decimal


def level_event(source: str, level: Level, now: datetime) -> CanonicalEvent:
    payload = InventoryLevel(
        source=source,
        sku=level.sku,
        location=level.location,
        on_hand=level.on_hand,
        allocated=level.allocated,
        as_of=now,
    )
    return make_event("inventory.level_changed", payload, now)


# --- shipments ---------------------------------------------------------------------------


@dataclass
class ShipmentParts:
    """One shipment's moves for one order, grouped by package (None: not packed)."""

    order_key: str
    packages: dict[int | None, list[tuple[str, Decimal]]] = field(default_factory=dict)


def shipment_event(
    source: str,
    external_id: str,
    shipment: Mapping[str, Any],
    parts: ShipmentParts,
    trackings: Mapping[int, Mapping[str, Any]],
    options: TrytonOptions,
    now: datetime,
) -> CanonicalEvent:
    carrier = related(related(shipment, "carrier"), "party").get("name") or None
    default_tracking = shipment.get("shipping_reference") or None
    packages = []
    for package_id, moves in sorted(parts.packages.items(), key=lambda kv: kv[0] or 0):
        totals: dict[str, Decimal] = {}
        for sku, qty in moves:
            totals[sku] = totals.get(sku, Decimal(0)) + qty
        package = trackings.get(package_id, {}) if package_id is not None else {}
        packages.append(
            Package(
                tracking_number=package.get("shipping_reference") or default_tracking,
                tracking_url=package.get("shipping_tracking_url") or None,
                carrier=carrier,
                lines=[ShipmentLine(sku=sku, quantity=qty) for sku, qty in totals.items()],
            )
        )
    changed = as_utc(shipment.get("last_modified_at")) or now
    payload = Shipment(
        source=source,
        external_id=external_id,
        order_key=parts.order_key,
        status="shipped",
        shipped_at=day_start(shipment.get("effective_date"), options, changed),
        packages=packages,
    )
    return make_event("shipment.created", payload, changed)


# --- credit notes ------------------------------------------------------------------------


def credit_memo_event(
    source: str,
    external_id: str,
    invoice: Mapping[str, Any],
    order_key: str,
    amount: Decimal,
    lines: Sequence[Mapping[str, Any]],
    options: TrytonOptions,
    now: datetime,
) -> CanonicalEvent:
    currency = str(related(invoice, "currency").get("code") or "")
    money_lines = [
        MoneyLine(
            sku=str(related(line, "product").get("code") or ""),
            quantity=quantity(line.get("quantity")),
            amount=Money(amount=quantity(line.get("amount")), currency=currency),
        )
        for line in lines
    ]
    changed = as_utc(invoice.get("last_modified_at")) or now
    payload = CreditMemo(
        source=source,
        external_id=external_id,
        order_key=order_key,
        amount=Money(amount=abs(amount), currency=currency),
        lines=money_lines,
        created_at=day_start(invoice.get("invoice_date"), options, changed),
    )
    return make_event("credit_memo.created", payload, changed)


# --- customers ---------------------------------------------------------------------------


def customer_event(
    source: str,
    party: Mapping[str, Any],
    addresses: Sequence[Mapping[str, Any]],
    contacts: Sequence[Mapping[str, Any]],
    now: datetime,
) -> CanonicalEvent:
    first, last = rec.split_name(party.get("name"))

    def first_of(*kinds: str) -> str | None:
        values = [str(c["value"]) for c in contacts if c.get("type") in kinds and c.get("value")]
        return values[0] if values else None

    canonical: list[Address] = [rec.address_from_row(a) for a in addresses]
    updated = as_utc(party.get("last_modified_at")) or now
    payload = Customer(
        source=source,
        external_id=str(party["id"]),
        email=first_of("email"),
        first_name=first,
        last_name=last,
        phone=first_of("phone", "mobile"),
        addresses=canonical,
        default_billing=0 if canonical else None,
        default_shipping=0 if canonical else None,
        updated_at=updated,
    )
    return make_event("customer.upserted", payload, updated)


__all__ = [
    "Level",
    "ShipmentParts",
    "credit_memo_event",
    "customer_event",
    "level_event",
    "ref_id",
    "related",
    "shipment_event",
]
