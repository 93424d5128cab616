"""The simulated account's business side: stock per location, commitments, fulfilments,
credit memos, prices; the record bodies the webhook posts (the rows SuiteQL reads from
them: ``tables``).

Stock moves the way NetSuite moves it: through transactions, never by saving the item.

- Creating or changing a sales order *commits* stock: for each open line, ``quantity`` minus
  ``quantityFulfilled`` at the line's location (else the order's, else the default one) is
  added to ``quantityCommitted``, so what is available drops; closing lines releases it.
  The sales order is the transaction that changed (its ``lastmodifieddate`` moves).
- A fulfilment is an ``itemFulfillment`` (SuiteQL type ItemShip) whose lines take the
  shipped quantities off on-hand (and so off the commitment); the order becomes Partially
  Fulfilled / Pending Billing.
- A count or correction (``/_sim/stock`` on_hand) is an ``inventoryAdjustment`` (InvAdjst)
  with the difference per location; an expected delivery (on_order) a ``purchaseOrder``.
- A credit memo's ``restock`` lines put goods back on hand (lines that move stock).
Items keep their ``lastmodifieddate`` through all of this: only saving the item moves it.
Every record change is posted to the webhook, if set, as the user-event script posts it
(``webhooks.py``); a stock-moving transaction's post carries its items' levels after the move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulators.netsuite.script_shape import STOCK_TYPES, stock_rows

if TYPE_CHECKING:
    from simulators.netsuite.simulator import NetSuiteSimulator
    from simulators.netsuite.state import SimRecord

DEFAULT_LOCATION = "1"
# what the convenience names of /_sim/stock mean, as the default custom field ids
STOCK_CUSTOM = {
    "reserved": "custrecord_gw_qty_reserved",
    "damaged": "custrecord_gw_qty_damaged",
    "quarantined": "custrecord_gw_qty_quarantined",
    "expected_date": "custrecord_gw_expected_date",
}


class OpError(Exception):
    """A control operation that cannot be done (the message says why)."""


@dataclass
class StockRow:
    on_hand: Decimal = Decimal(0)
    committed: Decimal = Decimal(0)
    on_order: Decimal = Decimal(0)
    custom: dict[str, Any] = field(default_factory=dict)


def dec(value: Any, what: str) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise OpError(f"{what}: {value!r} is not a number") from None


def ref_id(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("id") not in (None, ""):
        return str(value["id"])
    return None


def sublist_lines(record: SimRecord, name: str = "item") -> list[dict[str, Any]]:
    sub = record.fields.get(name)
    return list(sub.get("items", [])) if isinstance(sub, Mapping) else []


def tf(value: Any) -> str | None:
    return None if value is None else ("T" if value else "F")


def ref_name(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get("refName") or value.get("id")
    return value


class ErpState:
    """Business state next to the record store of one NetSuiteSimulator."""

    def __init__(self, sim: NetSuiteSimulator) -> None:
        self.sim = sim
        self.stock: dict[str, dict[str, StockRow]] = {}
        self.commitments: dict[str, dict[tuple[str, str], Decimal]] = {}
        self.tax_rate = Decimal(0)
        self.default_location = DEFAULT_LOCATION
        # custom fields the account has, by SuiteQL table (a standard account: none)
        self.custom_columns: dict[str, list[str]] = {}

    def reset(self) -> None:
        self.stock.clear()
        self.commitments.clear()

    # --- lookups -----------------------------------------------------------------------
    def now(self) -> datetime:
        return self.sim.now()

    def item(self, key: str) -> SimRecord:
        """An inventory item by internal id, ``eid:…`` or its itemId (SKU)."""
        record = self.sim._find("inventoryItem", key)
        if record is None:
            record = next(
                (
                    r
                    for r in self.sim._store("inventoryItem").values()
                    if r.fields.get("itemId") == key
                ),
                None,
            )
        if record is None:
            raise OpError(f"no inventory item {key!r}")
        return record

    def record(self, record_type: str, key: str) -> SimRecord:
        record = self.sim._find(record_type, key)
        if record is None:
            raise OpError(f"no {record_type} {key!r}")
        return record

    def sku(self, item_id: str) -> str:
        record = self.sim._store("inventoryItem").get(item_id)
        return str(record.fields.get("itemId") or item_id) if record else item_id

    def row(self, item_id: str, location: str) -> StockRow:
        return self.stock.setdefault(item_id, {}).setdefault(location, StockRow())

    # --- changes -----------------------------------------------------------------------
    def touched(self, record: SimRecord, event_type: str = "edit") -> None:
        """A record changed: new lastModifiedDate, and the user-event post."""
        record.modified = self.now()
        if event_type == "create":
            record.created = record.modified
        kind = record.type.lower()
        stock = None
        if kind in STOCK_TYPES:  # the script reads the stock of the items it moved
            location = ref_id(record.fields.get("location"))
            stock = stock_rows(sublist_lines(record), location, self.stock, self.sku)
        body = self.contract(record)
        self.sim.webhooks.emit(kind, event_type, record.id, record.modified, body, stock)

    def stock_transaction(
        self, record_type: str, prefix: str, lines: list[dict[str, Any]], **fields: Any
    ) -> SimRecord:
        """A transaction that moves stock (adjustment, receipt, purchase order)."""
        self.sim._tran_seq += 1
        record = self.sim._new_transaction(
            record_type,
            {
                "tranId": f"{prefix}{self.sim._tran_seq}",
                "tranDate": self.now().date().isoformat(),
                "item": {"items": lines},
                **fields,
            },
        )
        self.touched(record, "create")
        return record

    def set_stock(self, item_key: str, location: str, values: Mapping[str, Any]) -> StockRow:
        """A stock count (an inventory adjustment by the difference), an expected delivery
        (a purchase order), or custom quantity fields (saved on the item)."""
        item = self.item(item_key)
        row = self.row(item.id, str(location))
        line = {"item": {"id": item.id}, "location": {"id": str(location)}}
        if "on_hand" in values and (delta := dec(values["on_hand"], "on_hand") - row.on_hand):
            row.on_hand += delta
            adjust = [{**line, "quantity": delta, "inventoryAffecting": True}]
            self.stock_transaction("inventoryAdjustment", "ADJ", adjust)
        if "on_order" in values and (delta := dec(values["on_order"], "on_order") - row.on_order):
            row.on_order += delta
            self.stock_transaction("purchaseOrder", "PO", [{**line, "quantity": delta}])
        custom = {c: values[n] for n, c in STOCK_CUSTOM.items() if n in values}
        custom.update(values.get("custom") or {})
        if custom:  # fields of the item's locations: saving them saves the item
            row.custom.update(custom)
            self.touched(item)
        return row

    def set_price(self, item_key: str, values: Mapping[str, Any]) -> SimRecord:
        item = self.item(item_key)
        known = ("basePrice", "cost", "priceLevels", "currency")
        for key, value in values.items():
            if key not in known and not key.startswith("custitem"):
                raise OpError(f"unknown price field {key!r}; known: {', '.join(known)}, custitem_*")
            item.fields[key] = value
        self.touched(item)
        return item

    def recommit(self, order: SimRecord) -> None:
        """Bring the order's stock commitments in line with its open, unfulfilled lines."""
        wanted: dict[tuple[str, str], Decimal] = {}
        order_location = ref_id(order.fields.get("location")) or self.default_location
        for line in sublist_lines(order):
            item = ref_id(line.get("item"))
            if item is None or line.get("isClosed"):
                continue
            open_qty = dec(line.get("quantity", 0), "quantity") - dec(
                line.get("quantityFulfilled", 0), "quantityFulfilled"
            )
            if open_qty > 0:
                key = (item, ref_id(line.get("location")) or order_location)
                wanted[key] = wanted.get(key, Decimal(0)) + open_qty
        had = self.commitments.get(order.id, {})
        for key in set(had) | set(wanted):
            delta = wanted.get(key, Decimal(0)) - had.get(key, Decimal(0))
            if delta:
                self.row(*key).committed += delta
        self.commitments[order.id] = wanted

    def fulfil(self, order_key: str, spec: Mapping[str, Any]) -> SimRecord:
        """Ship (part of) a sales order: an itemFulfillment, less on hand, a new status."""
        order = self.record("salesOrder", order_key)
        status = str(spec.get("ship_status", "C")).upper()
        if status not in ("A", "B", "C"):
            raise OpError("ship_status must be A (picked), B (packed) or C (shipped)")
        wanted = {
            self.item(str(k)).id: dec(v, "quantity") for k, v in (spec.get("lines") or {}).items()
        }
        shipped: list[dict[str, Any]] = []
        location = ref_id(order.fields.get("location")) or self.default_location
        for line in sublist_lines(order):
            item = ref_id(line.get("item"))
            if item is None or line.get("isClosed"):
                continue
            remaining = dec(line.get("quantity", 0), "q") - dec(
                line.get("quantityFulfilled", 0), "q"
            )
            if spec.get("lines"):  # only what was asked for, never more than is open
                if item not in wanted:
                    continue
                qty = min(remaining, wanted.pop(item))
            else:
                qty = remaining
            if qty <= 0:
                continue
            line["quantityFulfilled"] = dec(line.get("quantityFulfilled", 0), "q") + qty
            loc = ref_id(line.get("location")) or location
            self.row(item, loc).on_hand -= qty
            shipped.append(
                {
                    "item": {"id": item},
                    "quantity": qty,
                    "location": {"id": loc},
                    "orderLine": line["line"],
                    "inventoryAffecting": True,
                }
            )
        if not shipped:
            raise OpError(f"salesOrder {order.id} has nothing left to fulfil for that request")
        packages = [
            {
                "packageTrackingNumber": p.get("tracking"),
                "packageWeight": dec(p["weight"], "weight")
                if p.get("weight") is not None
                else None,
                "packageDescr": p.get("description"),
                "carrier": p.get("carrier"),
            }
            for p in spec.get("packages") or []
        ]
        self.sim._tran_seq += 1
        fulfilment = self.sim._new_transaction(
            "itemFulfillment",
            {
                "tranId": f"IF{self.sim._tran_seq}",
                "tranDate": self.now().date().isoformat(),
                "createdFrom": {"id": order.id},
                "shipStatus": status,
                "shipMethod": spec.get("ship_method"),
                "shipCarrier": spec.get("carrier"),
                "package": {"items": packages},
                "item": {"items": shipped},
            },
        )
        self.recommit(order)  # fulfilled lines no longer hold a commitment
        self.touched(order)
        self.touched(fulfilment, "create")
        return fulfilment

    def set_ship_status(self, fulfilment_key: str, status: str) -> SimRecord:
        """Picked (A) → packed (B) → shipped (C): an edit of the fulfilment."""
        if status not in ("A", "B", "C"):
            raise OpError("ship_status must be A (picked), B (packed) or C (shipped)")
        fulfilment = self.record("itemFulfillment", fulfilment_key)
        fulfilment.fields["shipStatus"] = status
        self.touched(fulfilment)
        return fulfilment

    def credit_memo(self, spec: Mapping[str, Any]) -> SimRecord:
        """A credit memo for an RMA (``rma``) or directly for an order (``order``)."""
        source = (
            self.record("returnAuthorization", str(spec["rma"]))
            if spec.get("rma")
            else self.record("salesOrder", str(spec.get("order", "")))
        )
        currency = spec.get("currency") or "USD"
        lines: list[dict[str, Any]] = []
        for line in spec.get("lines") or []:
            item = self.item(str(line["item"]))
            lines.append(
                {
                    "item": {"id": item.id},
                    "quantity": dec(line.get("quantity", 1), "quantity"),
                    "amount": dec(line.get("amount", 0), "amount"),
                }
            )
        for line in spec.get("restock") or []:
            item = self.item(str(line["item"]))
            qty = dec(line.get("quantity", 1), "quantity")
            disposition = str(line.get("disposition", "restock"))
            location = str(line.get("location") or self.default_location)
            lines.append(
                {
                    "item": {"id": item.id},
                    "quantity": qty,
                    "amount": dec(line.get("amount", 0), "amount"),
                    "location": {"id": location},
                    "custcol_gw_disposition": disposition,
                    "inventoryAffecting": disposition == "restock",
                }
            )
            if disposition == "restock":
                self.row(item.id, location).on_hand += qty
        amount = spec.get("amount")
        total = (
            dec(amount, "amount")
            if amount is not None
            else sum((ln["amount"] for ln in lines), Decimal(0))
        )
        self.sim._tran_seq += 1
        memo = self.sim._new_transaction(
            "creditMemo",
            {
                "tranId": f"CM{self.sim._tran_seq}",
                "tranDate": self.now().date().isoformat(),
                "createdFrom": {"id": source.id},
                "currency": {"refName": currency},
                "total": total,
                "item": {"items": lines},
            },
        )
        self.touched(memo, "create")
        return memo

    # --- derived values ------------------------------------------------------------------
    def tax_total(self, order_fields: Mapping[str, Any]) -> Decimal:
        """What SuiteTax would compute here: the configured rate on the line amounts."""
        lines = order_fields.get("item", {}).get("items", []) if "item" in order_fields else []
        net = sum(
            (dec(ln.get("quantity", 0), "q") * dec(ln.get("rate", 0), "r") for ln in lines),
            Decimal(0),
        )
        return (net * self.tax_rate).quantize(Decimal("0.01"))

    def order_ref(self, record: SimRecord | None) -> dict[str, Any] | None:
        """The sales order behind a transaction: itself, its source, or its source's source."""
        for _ in range(3):
            if record is None:
                return None
            if record.type.lower() == "salesorder":
                return {
                    "id": record.id,
                    "tranId": record.fields.get("tranId"),
                    "externalId": record.external_id,
                }
            record = self.created_from(record)
        return None

    def created_from(self, record: SimRecord) -> SimRecord | None:
        source = ref_id(record.fields.get("createdFrom"))
        if source is None:
            return None
        for kind in ("salesOrder", "returnAuthorization", "invoice"):
            found = self.sim._store(kind).get(source)
            if found is not None:
                return found
        return None

    # --- the webhook's record bodies (records.py's contract) ------------------------------
    def contract(self, record: SimRecord) -> dict[str, Any]:
        kind = record.type.lower()
        f = record.fields
        if kind == "inventoryitem":
            return {
                **{k: v for k, v in f.items() if not isinstance(v, Mapping)},
                "id": record.id,
                "itemId": f.get("itemId") or record.id,
                "locations": [
                    {
                        "location": loc,
                        "quantityOnHand": row.on_hand,
                        "quantityCommitted": row.committed,
                        "quantityOnOrder": row.on_order,
                        **row.custom,
                    }
                    for loc, row in sorted(self.stock.get(record.id, {}).items())
                ],
            }
        if kind == "customer":
            out = {k: ref_name(v) for k, v in f.items() if k != "addressBook"}
            out["addresses"] = [
                {
                    "defaultBilling": a.get("defaultBilling", False),
                    "defaultShipping": a.get("defaultShipping", False),
                    **(a.get("addressBookAddress") or {}),
                }
                for a in sublist_lines(record, "addressBook")
            ]
            return {**out, "id": record.id}
        items = [
            {
                "itemId": self.sku(ref_id(ln.get("item")) or ""),
                "quantity": ln.get("quantity"),
                "amount": ln.get("amount"),
                "custcol_gw_disposition": ln.get("custcol_gw_disposition"),
                "custcol_gw_return_reason": ln.get("custcol_gw_return_reason"),
            }
            for ln in sublist_lines(record)
        ]
        out = {
            "id": record.id,
            "tranId": f.get("tranId"),
            "tranDate": f.get("tranDate"),
            "externalId": record.external_id,
            "memo": f.get("memo"),
            "salesOrder": self.order_ref(
                self.created_from(record) if kind != "salesorder" else record
            ),
            "items": [{k: v for k, v in it.items() if v is not None} for it in items],
        }
        if kind == "itemfulfillment":
            out.update(
                shipStatus=f.get("shipStatus"),
                shipMethod=f.get("shipMethod"),
                shipCarrier=f.get("shipCarrier"),
                packages=[
                    {k: v for k, v in p.items() if v is not None}
                    for p in sublist_lines(record, "package")
                ],
            )
        elif kind == "creditmemo":
            source = self.created_from(record)
            rma = (
                source
                if source is not None and source.type.lower() == "returnauthorization"
                else None
            )
            out.update(
                currency=ref_name(f.get("currency")),
                total=f.get("total"),
                returnAuthorization=(
                    {
                        "id": rma.id,
                        "tranId": rma.fields.get("tranId"),
                        "externalId": rma.external_id,
                    }
                    if rma
                    else None
                ),
            )
        elif kind in ("returnauthorization", "salesorder"):
            out["status"] = self.sim._status_of(record)
        return {k: v for k, v in out.items() if v is not None}


__all__ = ["ErpState", "OpError", "StockRow"]
