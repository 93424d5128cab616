"""SuiteQL's tables over the simulated account (``suiteql.SuiteQLData``): items, stock per
location, pricing, customers, fulfilment and credit memo transactions, their lines and
packages, as the connector's queries read them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulators.netsuite.erp import (
    STAMP_FORMAT,
    TRAN_TYPES,
    ErpState,
    dec,
    ref_id,
    ref_name,
    sublist_lines,
    tf,
)

if TYPE_CHECKING:
    from simulators.netsuite.state import SimRecord


class ErpTables:
    """The rows SuiteQL reads, built from the records and the stock of one account."""

    def __init__(self, erp: ErpState) -> None:
        self.erp = erp
        self.sim = erp.sim

    def _stamp(self, record: SimRecord) -> str:
        return (record.modified or datetime(2020, 1, 1, tzinfo=UTC)).strftime(STAMP_FORMAT)

    def item_rows(self, full: bool, custom: Sequence[str]) -> list[dict[str, Any]]:
        rows = []
        for r in self.sim._store("inventoryItem").values():
            f = r.fields
            row: dict[str, Any] = {
                "id": int(r.id),
                "itemid": f.get("itemId") or r.id,
                "modified": self._stamp(r),
            }
            if full:
                row.update(
                    displayname=f.get("displayName"),
                    salesdescription=f.get("salesDescription"),
                    upccode=f.get("upcCode"),
                    isinactive=tf(bool(f.get("isInactive"))),
                    weight=f.get("weight"),
                    weightunit=ref_name(f.get("weightUnit")),
                    cost=f.get("cost"),
                    **{c: f.get(c) for c in custom},
                )
            rows.append(row)
        return rows

    def stock_rows(self, ids: Sequence[str], custom: Sequence[str]) -> list[dict[str, Any]]:
        return [
            {
                "item": int(item),
                "location": loc,
                "quantityonhand": row.on_hand,
                "quantitycommitted": row.committed,
                "quantityonorder": row.on_order,
                **{c: row.custom.get(c) for c in custom},
            }
            for item in sorted(ids, key=int)
            for loc, row in sorted(self.erp.stock.get(item, {}).items())
        ]

    def pricing_rows(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        rows = []
        for item_id in sorted(ids, key=int):
            record = self.sim._store("inventoryItem").get(item_id)
            if record is None:
                continue
            currency = ref_name(record.fields.get("currency")) or "USD"
            if record.fields.get("basePrice") is not None:
                rows.append(
                    {
                        "item": int(item_id),
                        "pricelevel": "Base Price",
                        "currency": currency,
                        "minquantity": 0,
                        "price": record.fields["basePrice"],
                    }
                )
            for level in record.fields.get("priceLevels") or []:
                rows.append(
                    {
                        "item": int(item_id),
                        "pricelevel": level.get("priceLevel"),
                        "currency": currency,
                        "minquantity": level.get("minQuantity", 0),
                        "price": level.get("price"),
                    }
                )
        return rows

    def customer_rows(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.sim._store("customer").values():
            f = r.fields
            rows.append(
                {
                    "id": int(r.id),
                    "entityid": f.get("entityId") or f.get("externalId") or r.id,
                    "isperson": tf(f.get("isPerson", True)),
                    "firstname": f.get("firstName"),
                    "lastname": f.get("lastName"),
                    "companyname": f.get("companyName"),
                    "email": f.get("email"),
                    "phone": f.get("phone"),
                    "terms": ref_name(f.get("terms")),
                    "creditlimit": f.get("creditLimit"),
                    "currency": ref_name(f.get("currency")),
                    "category": ref_name(f.get("category")),
                    "pricelevel": ref_name(f.get("priceLevel")),
                    "taxable": tf(f.get("taxable")),
                    "resalenumber": f.get("resaleNumber"),
                    "modified": self._stamp(r),
                }
            )
        return rows

    def _tran_cols(self, prefix: str, record: SimRecord | None) -> dict[str, Any]:
        if record is None:
            return {}
        return {
            f"{prefix}id": int(record.id),
            f"{prefix}type": TRAN_TYPES.get(record.type.lower(), record.type),
            f"{prefix}tranid": record.fields.get("tranId"),
            f"{prefix}externalid": record.external_id,
        }

    def transaction_rows(self, tran_type: str) -> list[dict[str, Any]]:
        kind = "itemFulfillment" if tran_type == "ItemShip" else "creditMemo"
        rows = []
        for r in self.sim._store(kind).values():
            f = r.fields
            src = self.erp.created_from(r)
            up = self.erp.created_from(src) if src is not None else None
            total = f.get("total")
            rows.append(
                {
                    "id": int(r.id),
                    "tranid": f.get("tranId"),
                    "trandate": f.get("tranDate"),
                    "shipstatus": f.get("shipStatus"),
                    "shipmethod": f.get("shipMethod"),
                    "currency": ref_name(f.get("currency")),
                    # NetSuite keeps a credit memo's total negative
                    "total": -total
                    if isinstance(total, Decimal) and kind == "creditMemo"
                    else total,
                    "modified": self._stamp(r),
                    "created": (r.created or r.modified or datetime(2020, 1, 1)).strftime(
                        STAMP_FORMAT
                    ),
                    **self._tran_cols("src", src),
                    **self._tran_cols("up", up),
                }
            )
        return rows

    def line_rows(self, ids: Sequence[str], custom: Sequence[str]) -> list[dict[str, Any]]:
        rows = []
        for tran_id in sorted(ids, key=int):
            record = next(
                (
                    self.sim._store(k).get(tran_id)
                    for k in ("itemFulfillment", "creditMemo")
                    if tran_id in self.sim._store(k)
                ),
                None,
            )
            if record is None:
                continue
            sign = -1 if record.type.lower() == "itemfulfillment" else 1  # stock leaves
            for ln in sublist_lines(record):
                rows.append(
                    {
                        "transaction": int(tran_id),
                        "line": ln.get("line"),
                        "itemid": self.erp.sku(ref_id(ln.get("item")) or ""),
                        "quantity": sign * dec(ln.get("quantity", 0), "q"),
                        "amount": ln.get("amount"),
                        "location": ref_id(ln.get("location")),
                        **{c: ln.get(c) for c in custom},
                    }
                )
        return rows

    def package_rows(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        rows = []
        for tran_id in sorted(ids, key=int):
            record = self.sim._store("itemFulfillment").get(tran_id)
            for p in sublist_lines(record, "package") if record else []:
                rows.append(
                    {
                        "itemfulfillment": int(tran_id),
                        "packagetrackingnumber": p.get("packageTrackingNumber"),
                        "packageweight": p.get("packageWeight"),
                        "packagedescr": p.get("packageDescr"),
                    }
                )
        return rows
