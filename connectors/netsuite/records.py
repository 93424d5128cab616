"""NetSuite records (as the user-event script or SuiteQL rows give them) → canonical events.

Both inbound paths feed this module: the webhook body's ``record`` (see ``inbound.py`` and
``user_event_script.js``) and the SuiteQL rows that ``suiteql.py`` reshapes into the same
dicts. One mapping, so a polled change and a pushed change become the same events.

The record contract (camelCase keys; amounts and quantities as JSON numbers or strings,
never floats on our side; dates ISO 8601, a naive date-time is in the account time zone):

- ``inventoryitem``: ``itemId`` (the SKU, required), ``displayName``, ``salesDescription``,
  ``upcCode``, ``isInactive``, ``weight``, ``weightUnit``, ``parentItemId``, ``currency``,
  ``basePrice``, ``cost``, the custom fields named by :class:`FieldNames` (sale price and its
  dates, MAP), ``priceLevels`` ``[{priceLevel, minQuantity, price}]`` and ``locations``
  ``[{location, quantityOnHand, quantityCommitted, quantityOnOrder, <reserved/damaged/
  quarantined/expected date custom fields>}]``;
- ``customer``: ``entityId``, ``isPerson``, ``firstName``, ``lastName``, ``companyName``,
  ``email``, ``phone``, ``terms``, ``creditLimit``, ``currency``, ``category``,
  ``priceLevel``, ``taxable``, ``resaleNumber``, ``addresses`` ``[{defaultBilling,
  defaultShipping, addressee, attention, addr1, addr2, city, state, zip, country,
  addrPhone}]``;
- ``itemfulfillment``: ``tranId``, ``tranDate``, ``shipStatus`` (A picked, B packed,
  C shipped; NetSuite's item fulfillment statuses ItemShip:A/B/C; the store hears of a
  fulfilment from ``MappingSettings.fulfillment_status`` on, shipped by default, so a
  picked one never reaches it), ``shipMethod``, ``shipCarrier``, ``salesOrder``
  ``{id, tranId, externalId}``,
  ``packages`` ``[{packageTrackingNumber, packageWeight, carrier, items?}]``, ``items``
  ``[{itemId, quantity}]``;
- ``creditmemo``: ``tranId``, ``tranDate``, ``currency``, ``total``, ``salesOrder``,
  ``returnAuthorization`` ``{id, tranId, externalId}``, ``items`` ``[{itemId, quantity,
  amount, <disposition column>}]``;
- ``returnauthorization``: ``tranId``, ``tranDate``, ``status`` (A…H), ``externalId``,
  ``memo``, ``salesOrder``, ``items`` ``[{itemId, quantity, <reason column>,
  <disposition column>}]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, get_args

from connectors.netsuite.fields import FieldNames, Fields, MappingSettings
from kernel.canonical.common import (
    NON_NEGATIVE_AMOUNT_RULE,
    QUANTITY_RULE,
    SIGNED_QUANTITY_RULE,
    Address,
    Money,
    shown,
)
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import IncomingStock, InventoryLevel
from kernel.canonical.product import GroupPrice, Price, Product, QuantityBreak, SalePrice
from kernel.canonical.returns import CreditMemo, Disposition, MoneyLine, Return, ReturnLine
from kernel.canonical.shipment import Package, Shipment, ShipmentLine
from kernel.errors import PayloadError

INVENTORY_ITEM = "inventoryitem"
CUSTOMER = "customer"
ITEM_FULFILLMENT = "itemfulfillment"
CREDIT_MEMO = "creditmemo"
RETURN_AUTHORIZATION = "returnauthorization"
SALES_ORDER = "salesorder"
RECORD_TYPES = frozenset(
    {INVENTORY_ITEM, CUSTOMER, ITEM_FULFILLMENT, CREDIT_MEMO, RETURN_AUTHORIZATION, SALES_ORDER}
)
BASE_PRICE_LEVEL = "Base Price"
# item fulfillment status letters (A Picked, B Packed, C Shipped) → canonical status; a
# picked fulfilment is warehouse work the store has nothing to show for
SHIP_STATUS = {"A": "picked", "B": "packed", "C": "shipped"}
SHIP_STATUS_RANK = {"picked": 1, "packed": 2, "shipped": 3}
# NetSuite return authorization statuses → the canonical lifecycle
RMA_STATUS = {
    "A": "requested",  # Pending Approval
    "B": "authorized",  # Pending Receipt
    "C": "rejected",  # Cancelled
    "D": "received",  # Partially Received
    "E": "received",  # Pending Refund/Partially Received
    "F": "received",  # Pending Refund
    "G": "closed",  # Refunded
    "H": "closed",  # Closed
}
# the REST record service and SuiteQL may give the names (or camelCase ids) instead
SHIP_STATUS_NAMES = {"picked": "picked", "packed": "packed", "shipped": "shipped"}
RMA_STATUS_NAMES = {
    "pending approval": "requested",
    "pendingapproval": "requested",
    "pending receipt": "authorized",
    "pendingreceipt": "authorized",
    "cancelled": "rejected",
    "partially received": "received",
    "pending refund/partially received": "received",
    "pending refund": "received",
    "pendingrefund": "received",
    "refunded": "closed",
    "closed": "closed",
}
_DISPOSITIONS = frozenset(get_args(Disposition))


# --- keys shared with the outbound side ----------------------------------------------------


def split_external_id(eid: str | None, sources: Sequence[str] = ()) -> tuple[str, str] | None:
    """``"shop-eu-1001"`` → ``("shop-eu", "1001")``: the longest known source wins."""
    if not eid:
        return None
    for source in sorted(sources, key=len, reverse=True):
        if eid.startswith(source + "-") and len(eid) > len(source) + 1:
            return source, eid[len(source) + 1 :]
    if sources:
        return None
    source, dash, rest = eid.rpartition("-")
    return (source, rest) if dash and source and rest else None


def order_key_for(ref: Fields | None, settings: MappingSettings) -> str:
    """Our key of the sales order a transaction came from.

    An order the gateway booked has externalId ``<source>-<order id>`` → ``<source>:order:<id>``;
    one entered in NetSuite has none and is keyed ``<this connection>:order:<internal id>``.
    """
    if ref is None:
        raise PayloadError("record.salesOrder is required (the order this came from)")
    split = split_external_id(ref.text("externalId"), settings.sources)
    if split is not None:
        return f"{split[0]}:order:{split[1]}"
    return f"{settings.connection_id}:order:{ref.text('id', required=True)}"


def _quantity(line: Fields) -> Decimal:
    """A shipped quantity: 0 to 10^9 (a negative one is not a shipment)."""
    return line.decimal("quantity", required=True, rule=QUANTITY_RULE) or Decimal(0)


def _line_sku(line: Fields) -> str:
    sku = line.text("itemId") or line.text("item")
    if sku is None:
        raise PayloadError(f"{line.path}.itemId is required (the item's SKU)")
    return sku


def _disposition(line: Fields, column: str | None) -> Disposition | None:
    value = line.text(column)
    if value is None:
        return None
    normalized = value.strip().lower().replace(" ", "_")
    if normalized not in _DISPOSITIONS:
        raise PayloadError(
            f"{line.path}.{column}: {shown(value)} is not a disposition "
            f"({', '.join(sorted(_DISPOSITIONS))})"
        )
    return normalized  # type: ignore[return-value]


# --- inventory items -----------------------------------------------------------------------


def product_of(rec: Fields, settings: MappingSettings, when: datetime) -> Product:
    sku = rec.text("itemId", required=True)
    assert sku is not None
    return Product(
        source=settings.connection_id,
        sku=sku,
        external_id=rec.text("id"),
        title=rec.text("displayName") or sku,
        description=rec.text("salesDescription"),
        status="archived" if rec.boolean("isInactive") else "active",
        parent_sku=rec.text("parentItemId"),
        barcode=rec.text("upcCode"),
        weight=rec.decimal("weight", rule=QUANTITY_RULE),
        weight_unit=rec.text("weightUnit"),
        updated_at=when,
    )


def _levels(rec: Fields) -> dict[str, list[QuantityBreak]]:
    """Price level name → its quantity breaks, lowest quantity first."""
    levels: dict[str, list[QuantityBreak]] = {}
    for level in rec.items("priceLevels"):
        name = level.text("priceLevel", required=True)
        price = level.decimal("price", rule=NON_NEGATIVE_AMOUNT_RULE)
        if name is None or price is None:  # a level without a price is not offered
            continue
        qty = level.decimal("minQuantity", rule=QUANTITY_RULE) or Decimal(0)
        levels.setdefault(name, []).append(QuantityBreak(min_quantity=qty, price=price))
    for breaks in levels.values():
        breaks.sort(key=lambda b: b.min_quantity)
    return levels


def price_of(rec: Fields, settings: MappingSettings, when: datetime) -> Price | None:
    """The item's prices; None when the record carries no base price at all."""
    f = settings.fields
    levels = _levels(rec)
    base_breaks = levels.pop(BASE_PRICE_LEVEL, [])
    base = rec.decimal("basePrice", rule=NON_NEGATIVE_AMOUNT_RULE)
    if base is None and base_breaks:
        base = base_breaks[0].price
    if base is None:
        return None
    sale = None
    if (sale_price := rec.decimal(f.sale_price, rule=NON_NEGATIVE_AMOUNT_RULE)) is not None:
        start, end = (
            rec.moment(f.sale_start, settings.timezone),
            rec.moment(f.sale_end, settings.timezone),
        )
        sale = SalePrice(price=sale_price, starts_at=start, ends_at=end)
    groups = [
        GroupPrice(group=name, price=breaks[0].price, breaks=breaks[1:])
        for name, breaks in levels.items()
    ]
    sku = rec.text("itemId", required=True)
    assert sku is not None
    return Price(
        source=settings.connection_id,
        sku=sku,
        currency=(rec.text("currency") or settings.base_currency).upper(),
        base=base,
        cost=rec.decimal("cost", rule=NON_NEGATIVE_AMOUNT_RULE),
        sale=sale,
        map_price=rec.decimal(f.map_price, rule=NON_NEGATIVE_AMOUNT_RULE),
        breaks=[b for b in base_breaks if b.min_quantity > 1],
        group_prices=groups,
        effective_at=when,
    )


def levels_of(rec: Fields, settings: MappingSettings, when: datetime) -> list[InventoryLevel]:
    f = settings.fields
    sku = rec.text("itemId", required=True)
    assert sku is not None
    out = []
    for loc in rec.items("locations"):
        location = loc.text("location", required=True)
        assert location is not None
        on_order = loc.decimal("quantityOnOrder", rule=SIGNED_QUANTITY_RULE) or Decimal(0)
        incoming = (
            [IncomingStock(quantity=on_order, expected_on=loc.day(f.expected_date))]
            if on_order > 0
            else []
        )
        out.append(
            InventoryLevel(
                source=settings.connection_id,
                sku=sku,
                location=location,
                on_hand=loc.decimal("quantityOnHand", rule=SIGNED_QUANTITY_RULE) or Decimal(0),
                allocated=loc.decimal("quantityCommitted", rule=SIGNED_QUANTITY_RULE) or Decimal(0),
                reserved=loc.decimal(f.reserved, rule=SIGNED_QUANTITY_RULE) or Decimal(0),
                damaged=loc.decimal(f.damaged, rule=SIGNED_QUANTITY_RULE) or Decimal(0),
                quarantined=loc.decimal(f.quarantined, rule=SIGNED_QUANTITY_RULE) or Decimal(0),
                incoming=incoming,
                as_of=when,
            )
        )
    return out


# --- customers -----------------------------------------------------------------------------


def _address(a: Fields) -> Address:
    attention = a.text("attention")
    addressee = a.text("addressee")
    first, _, last = (attention or "").partition(" ")
    return Address(
        first_name=first or None,
        last_name=last or None,
        company=addressee if attention else None,
        line1=a.text("addr1"),
        line2=a.text("addr2"),
        city=a.text("city"),
        region_code=a.text("state"),
        postal_code=a.text("zip"),
        country_code=a.ref_id("country") or a.text("country"),
        phone=a.text("addrPhone"),
    )


def customer_of(rec: Fields, settings: MappingSettings, when: datetime) -> Customer:
    addresses = rec.items("addresses")
    billing = next((i for i, a in enumerate(addresses) if a.boolean("defaultBilling")), None)
    shipping = next((i for i, a in enumerate(addresses) if a.boolean("defaultShipping")), None)
    credit = rec.decimal("creditLimit", rule=NON_NEGATIVE_AMOUNT_RULE)
    currency = (rec.text("currency") or settings.base_currency).upper()
    return Customer(
        source=settings.connection_id,
        external_id=rec.text("id", required=True) or "",
        email=rec.text("email"),
        first_name=rec.text("firstName"),
        last_name=rec.text("lastName"),
        company=rec.text("companyName"),
        phone=rec.text("phone"),
        addresses=[_address(a) for a in addresses],
        default_billing=billing,
        default_shipping=shipping,
        group=rec.text("priceLevel") or rec.text("category"),
        tax_exempt=not rec.boolean("taxable", default=True),
        tax_exemption_certificate=rec.text("resaleNumber"),
        terms=rec.text("terms"),
        credit_limit=Money(amount=credit, currency=currency) if credit is not None else None,
        updated_at=when,
    )


# --- transactions --------------------------------------------------------------------------


def ship_status(rec: Fields) -> str:
    """picked, packed or shipped (PayloadError for anything else)."""
    code = (rec.ref_id("shipStatus") or "C").strip()
    status = SHIP_STATUS.get(code.upper()) or SHIP_STATUS_NAMES.get(code.lower())
    if status is None:
        raise PayloadError(f"{rec.path}.shipStatus must be A, B or C, not {shown(code)}")
    return status


def shipment_of(rec: Fields, settings: MappingSettings, when: datetime) -> Shipment | None:
    """The shipment, or None while the fulfilment is below ``fulfillment_status``."""
    status = ship_status(rec)
    if SHIP_STATUS_RANK[status] < SHIP_STATUS_RANK.get(settings.fulfillment_status, 3):
        return None
    lines = [
        ShipmentLine(sku=_line_sku(line), quantity=_quantity(line)) for line in rec.items("items")
    ]
    carrier, service = rec.text("shipCarrier"), rec.text("shipMethod")
    packages = []
    for i, pkg in enumerate(rec.items("packages")):
        own = [
            ShipmentLine(sku=_line_sku(line), quantity=_quantity(line))
            for line in pkg.items("items")
        ]
        packages.append(
            Package(
                tracking_number=pkg.text("packageTrackingNumber"),
                carrier=pkg.text("carrier") or carrier,
                service=service,
                weight=pkg.decimal("packageWeight", rule=QUANTITY_RULE),
                weight_unit=pkg.text("weightUnit"),
                # NetSuite packages do not list items: the first package carries the lines
                lines=own or (lines if i == 0 else []),
            )
        )
    if not packages:
        packages = [Package(carrier=carrier, service=service, lines=lines)]
    order = rec.sub("salesOrder")
    return Shipment(
        source=settings.connection_id,
        external_id=rec.text("id", required=True) or "",
        order_key=order_key_for(order, settings),
        order_number=order.text("tranId") if order else None,
        status="shipped" if status == "shipped" else "packed",
        shipped_at=rec.moment("tranDate", settings.timezone) if status == "shipped" else None,
        packages=packages,
    )


def _return_key(ref: Fields | None, settings: MappingSettings) -> str | None:
    if ref is None:
        return None
    split = split_external_id(ref.text("externalId"), settings.sources)
    if split is not None:
        return f"{split[0]}:return:{split[1]}"
    internal = ref.text("id")
    return f"{settings.connection_id}:return:{internal}" if internal else None


def credit_memo_of(rec: Fields, settings: MappingSettings, when: datetime) -> CreditMemo:
    currency = (rec.text("currency") or settings.base_currency).upper()
    lines, restock = [], []
    for line in rec.items("items"):
        # credit memo lines may carry NetSuite's negative quantities and amounts
        sku = _line_sku(line)
        qty = line.decimal("quantity", required=True, rule=SIGNED_QUANTITY_RULE) or Decimal(0)
        amount = line.decimal("amount") or Decimal(0)
        lines.append(
            MoneyLine(
                sku=sku, quantity=abs(qty), amount=Money(amount=abs(amount), currency=currency)
            )
        )
        disposition = _disposition(line, settings.fields.disposition)
        if disposition is not None:
            restock.append(ReturnLine(sku=sku, quantity=abs(qty), disposition=disposition))
    total = rec.decimal("total")
    if total is None:
        total = sum((ln.amount.amount for ln in lines), Decimal(0))
    rma = rec.sub("returnAuthorization")
    return CreditMemo(
        source=settings.connection_id,
        external_id=rec.text("id", required=True) or "",
        order_key=order_key_for(rec.sub("salesOrder"), settings),
        return_key=_return_key(rma, settings),
        rma_number=rma.text("tranId") if rma else None,
        amount=Money(amount=abs(total), currency=currency),
        lines=lines,
        restock=restock,
        created_at=rec.moment("tranDate", settings.timezone) or when,
    )


def return_of(rec: Fields, settings: MappingSettings, when: datetime) -> Return:
    raw = (rec.ref_id("status") or "A").strip()
    status = RMA_STATUS.get(raw.upper()) or RMA_STATUS_NAMES.get(raw.lower())
    if status is None:
        raise PayloadError(f"{rec.path}.status must be one of A to H, not {shown(raw)}")
    f = settings.fields
    key = _return_key(rec, settings) or ""
    source, _, external = key.partition(":return:")
    order = rec.sub("salesOrder")
    return Return(
        source=source,
        external_id=external,
        order_key=order_key_for(order, settings),
        order_number=order.text("tranId") if order else None,
        rma_number=rec.text("tranId"),
        status=status,
        lines=[
            ReturnLine(
                sku=_line_sku(line),
                quantity=abs(
                    line.decimal("quantity", required=True, rule=SIGNED_QUANTITY_RULE) or Decimal(0)
                ),
                reason=line.text(f.return_reason),
                disposition=_disposition(line, f.disposition),
            )
            for line in rec.items("items")
        ],
        requested_at=rec.moment("tranDate", settings.timezone) or when,
        note=rec.text("memo"),
    )


# --- record → events -----------------------------------------------------------------------

PRODUCT_PARTS = frozenset({"product", "price"})
INVENTORY_PARTS = frozenset({"inventory"})
ALL_ITEM_PARTS = PRODUCT_PARTS | INVENTORY_PARTS


def events_for(
    record_type: str,
    record: Mapping[str, Any],
    settings: MappingSettings,
    *,
    occurred_at: datetime,
    created: bool = False,
    item_parts: frozenset[str] = ALL_ITEM_PARTS,
) -> list[CanonicalEvent]:
    """The canonical events one NetSuite record stands for; [] for types we only store.

    ``created`` tells a new fulfilment (shipment.created) from a changed one; ``item_parts``
    picks what an inventory item yields (a poll of the inventory stream wants only levels).
    """
    rec = Fields(record, "record")
    kind = record_type.lower()
    if kind == INVENTORY_ITEM:
        events: list[CanonicalEvent] = []
        if "product" in item_parts:
            events.append(
                make_event("product.upserted", product_of(rec, settings, occurred_at), occurred_at)
            )
        if "price" in item_parts and (price := price_of(rec, settings, occurred_at)) is not None:
            events.append(make_event("price.changed", price, occurred_at))
        if "inventory" in item_parts:
            events += [
                make_event("inventory.level_changed", level, occurred_at)
                for level in levels_of(rec, settings, occurred_at)
            ]
        return events
    if kind == CUSTOMER:
        return [
            make_event("customer.upserted", customer_of(rec, settings, occurred_at), occurred_at)
        ]
    if kind == ITEM_FULFILLMENT:
        shipment = shipment_of(rec, settings, occurred_at)
        if shipment is None:
            return []  # not far enough yet: the store hears of it when it is
        return [
            make_event("shipment.created" if created else "shipment.updated", shipment, occurred_at)
        ]
    if kind == CREDIT_MEMO:
        return [
            make_event(
                "credit_memo.created", credit_memo_of(rec, settings, occurred_at), occurred_at
            )
        ]
    if kind == RETURN_AUTHORIZATION:
        return [make_event("return.updated", return_of(rec, settings, occurred_at), occurred_at)]
    return []


__all__ = [
    "FieldNames",
    "Fields",
    "MappingSettings",
    "events_for",
    "order_key_for",
    "split_external_id",
]
