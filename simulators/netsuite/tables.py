"""The SuiteQL tables of the simulated account (``suiteql.SuiteQLData``), built from its
records and stock the way NetSuite records them (``schema`` names the columns):

- every transaction record (sales order, fulfilment, receipt, adjustment, RMA, credit
  memo…) is a ``transaction`` row with its SuiteQL ``type`` and ``status`` letter, plus
  ``transactionline`` rows: the main line (``id`` 0, ``mainline`` T, ``createdfrom``) and one
  line per item, quantities signed as NetSuite keeps them (sales and fulfilment lines
  negative) and ``isinventoryaffecting`` T where stock moved;
- stock per item and location is ``aggregateitemlocation`` / ``inventoryitemlocations``;
  an item's ``lastmodifieddate`` moves only when the item record itself is saved, never
  because stock moved;
- references (currency, location, price level, ship method…) are ids into their own
  tables; ``BUILTIN.DF`` shows their names (a currency's name, not its ISO code).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulators.netsuite import suiteql
from simulators.netsuite.erp import ErpState, dec, ref_id, ref_name, sublist_lines
from simulators.netsuite.schema import NEGATIVE_LINES, TRAN_TYPES
from simulators.netsuite.suiteql import display_names

if TYPE_CHECKING:
    from simulators.netsuite.state import SimRecord

# currencies the account has (id, ISO code as "symbol", name as BUILTIN.DF shows it)
CURRENCIES = [(1, "USD", "US Dollar"), (2, "EUR", "Euro"), (3, "GBP", "British pound")]
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


class _Names:
    """Ids for things the simulator keeps by name (ship methods, price levels, units)."""

    def __init__(self, start: list[tuple[int, str]] | None = None) -> None:
        self.ids: dict[str, int] = {name: i for i, name in start or []}

    def id(self, name: Any) -> int | None:
        if name in (None, ""):
            return None
        text = str(name)
        if text not in self.ids:
            self.ids[text] = len(self.ids) + 1
        return self.ids[text]

    def rows(self, column: str = "name") -> list[dict[str, Any]]:
        return [{"id": i, column: name} for name, i in self.ids.items()]


class ErpTables:
    """The rows SuiteQL reads, built from the records and the stock of one account."""

    def __init__(self, erp: ErpState, *, reuse: bool = False) -> None:
        self.erp = erp
        self.sim = erp.sim
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._names: dict[str, dict[str, str | None]] = {}  # table → id → display value
        # reuse: the tables are built once and kept until the account changes (``changed``);
        # for a served simulator, where every change comes through a request
        self.reuse = reuse
        self._built: sqlite3.Connection | None = None

    # --- queries -------------------------------------------------------------------------
    def query(self, q: str) -> list[dict[str, str]]:
        """Every row of SuiteQL ``q`` (``suiteql.run``) over the account as it is now."""
        return suiteql.run(q, self, self._database if self.reuse else None)

    def changed(self) -> None:
        """The account changed (or is about to): tables kept from before are stale."""
        if self._built is not None:
            self._built.close()
            self._built = None

    def _database(self) -> sqlite3.Connection:
        if self._built is None:
            self._built = suiteql.build(self)
            self._built.execute("PRAGMA query_only = ON")  # shared by the next queries
        return self._built

    # --- suiteql.SuiteQLData -------------------------------------------------------------
    def custom_columns(self) -> Mapping[str, Sequence[str]]:
        return self.erp.custom_columns

    def display(self, table: str, ident: Any) -> str | None:
        if ident in (None, ""):
            return None
        if table not in self._rows:  # status letters, unit names: shown as they are
            return str(ident)
        if table not in self._names:  # one pass over the table, not one per value shown
            self._names[table] = display_names(self._rows, table)
        return self._names[table].get(str(ident), str(ident))

    def table_rows(self) -> Mapping[str, list[dict[str, Any]]]:
        self._names.clear()
        self.currencies = _Names([(i, code) for i, code, _ in CURRENCIES])
        self.ship_items = _Names()
        self.price_levels = _Names([(1, "Base Price")])
        self.terms = _Names()
        self.categories = _Names()
        self.locations: set[str] = {self.erp.default_location}
        transactions, lines, packages = self._transactions()
        rows: dict[str, list[dict[str, Any]]] = {
            "transaction": transactions,
            "transactionline": lines,
            "itemfulfillmentpackage": packages,
            "item": self._items(),
            "aggregateitemlocation": self._stock(),
            "pricing": self._pricing(),
            "customer": self._customers(),
        }
        rows["customeraddressbook"], rows["customeraddressbookentityaddress"] = self._address_book()
        rows["inventoryitemlocations"] = rows["aggregateitemlocation"]
        names = {code: name for _, code, name in CURRENCIES}
        rows["currency"] = [
            {"id": i, "symbol": code, "name": names.get(code, code)}
            for code, i in self.currencies.ids.items()
        ]
        rows["shipitem"] = self.ship_items.rows("itemid")
        rows["pricelevel"] = self.price_levels.rows()
        rows["term"] = self.terms.rows()
        rows["customercategory"] = self.categories.rows()
        rows["location"] = [
            {"id": loc, "name": f"Warehouse {loc}", "isinactive": "F"}
            for loc in sorted(self.locations, key=lambda x: (len(x), x))
        ]
        self._rows = rows
        return rows

    # --- helpers -------------------------------------------------------------------------
    def _currency(self, value: Any) -> int | None:
        """A currency reference as the REST API takes it ({"id": "2"}), or an ISO code."""
        internal = ref_id(value) or (str(value) if isinstance(value, int) else None)
        if internal and internal.isdigit():
            return int(internal)
        code = ref_name(value)
        return self.currencies.id(str(code).upper()) if code else None

    def _location(self, value: Any) -> str | None:
        loc = ref_id(value) or (str(value) if isinstance(value, str | int) and value else None)
        if loc:
            self.locations.add(loc)
        return loc

    def _custom(self, values: Mapping[str, Any], table: str) -> dict[str, Any]:
        wanted = {c.lower() for c in self.erp.custom_columns.get(table, ())}
        return {k.lower(): ref_name(v) for k, v in values.items() if k.lower() in wanted}

    # --- transactions --------------------------------------------------------------------
    def _transactions(
        self,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        transactions: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        packages: list[dict[str, Any]] = []
        for kind, store in self.sim._records.items():
            tran_type = TRAN_TYPES.get(kind)
            if tran_type is None:
                continue
            for record in store.values():
                transactions.append(self._transaction(record, tran_type))
                lines += self._lines(record, tran_type)
                if tran_type == "ItemShip":
                    for p in sublist_lines(record, "package"):
                        packages.append(
                            {
                                "id": len(packages) + 1,
                                "itemfulfillment": record.id,
                                "packagetrackingnumber": p.get("packageTrackingNumber"),
                                "packageweight": p.get("packageWeight"),
                                "packagedescr": p.get("packageDescr"),
                            }
                        )
        return transactions, lines, packages

    def _status(self, record: SimRecord, tran_type: str) -> str | None:
        f = record.fields
        if tran_type in ("SalesOrd", "RtnAuth"):
            return self.sim._status_of(record)["id"]
        if tran_type == "ItemShip":
            return str(f.get("shipStatus") or "C")
        if tran_type == "CustCred":
            return "A"  # Open
        return None

    def _transaction(self, record: SimRecord, tran_type: str) -> dict[str, Any]:
        f = record.fields
        total = f.get("total")
        if total is None and tran_type == "SalesOrd":
            total = sum(
                (dec(ln.get("quantity", 0), "q") * dec(ln.get("rate", 0), "r"))
                for ln in sublist_lines(record)
            )
        if isinstance(total, Decimal) and tran_type == "CustCred":
            total = -total  # NetSuite keeps a credit memo's total negative
        return {
            "id": record.id,
            "tranid": f.get("tranId"),
            "type": tran_type,
            "trandate": f.get("tranDate"),
            "createddate": record.created or record.modified or _EPOCH,
            "lastmodifieddate": record.modified or _EPOCH,
            "status": self._status(record, tran_type),
            "entity": ref_id(f.get("entity")),
            "currency": self._currency(f.get("currency")),
            "foreigntotal": total,
            "externalid": record.external_id,
            "otherrefnum": f.get("otherRefNum"),
            "memo": f.get("memo"),
            "shipmethod": self.ship_items.id(ref_name(f.get("shipMethod"))),
            "shipcarrier": f.get("shipCarrier"),
            "voided": "F",
            "location": self._location(f.get("location")),
            **self._custom(f, "transaction"),
        }

    def _lines(self, record: SimRecord, tran_type: str) -> list[dict[str, Any]]:
        f = record.fields
        created_from = ref_id(f.get("createdFrom"))
        main = {
            "id": 0,
            "transaction": record.id,
            "mainline": "T",
            "taxline": "F",
            "createdfrom": created_from,
            "location": self._location(f.get("location")),
            "isinventoryaffecting": "F",
            "isclosed": "F",
        }
        sign = -1 if tran_type in NEGATIVE_LINES else 1
        out = [main]
        for ln in sublist_lines(record):
            quantity = dec(ln.get("quantity", 0), "quantity")
            amount = ln.get("amount")
            if amount is None and ln.get("rate") is not None:
                amount = quantity * dec(ln["rate"], "rate")
            out.append(
                {
                    "id": ln.get("line"),
                    "transaction": record.id,
                    "mainline": "F",
                    "taxline": "F",
                    "item": ref_id(ln.get("item")),
                    "itemtype": "InvtPart",
                    "quantity": sign * quantity,
                    "foreignamount": None if amount is None else sign * dec(amount, "amount"),
                    "location": self._location(ln.get("location")),
                    "createdfrom": created_from,
                    "isinventoryaffecting": "T" if ln.get("inventoryAffecting") else "F",
                    "isclosed": "T" if ln.get("isClosed") else "F",
                    "quantityshiprecv": ln.get("quantityFulfilled") or ln.get("quantityReceived"),
                    **self._custom(ln, "transactionline"),
                }
            )
        return out

    # --- items, stock, prices, customers ---------------------------------------------------
    def _items(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.sim._store("inventoryItem").values():
            f = r.fields
            rows.append(
                {
                    "id": r.id,
                    "itemid": f.get("itemId") or r.id,
                    "itemtype": "InvtPart",
                    "displayname": f.get("displayName"),
                    "description": f.get("salesDescription"),
                    "upccode": f.get("upcCode"),
                    "isinactive": bool(f.get("isInactive")),
                    "weight": f.get("weight"),
                    "weightunit": ref_name(f.get("weightUnit")),
                    "parent": ref_id(f.get("parent")),
                    "cost": f.get("cost"),
                    "createddate": r.created or _EPOCH,
                    "lastmodifieddate": r.modified or _EPOCH,
                    **self._custom(f, "item"),
                }
            )
        return rows

    def _stock(self) -> list[dict[str, Any]]:
        rows = []
        for item, by_location in sorted(self.erp.stock.items(), key=lambda kv: int(kv[0])):
            for loc, row in sorted(by_location.items()):
                self.locations.add(loc)
                custom = self._custom(row.custom, "aggregateitemlocation")
                rows.append(
                    {
                        "item": item,
                        "location": loc,
                        "quantityonhand": row.on_hand,
                        "quantitycommitted": row.committed,
                        "quantityavailable": row.on_hand - row.committed,
                        "quantityonorder": row.on_order,
                        "quantitybackordered": max(Decimal(0), row.committed - row.on_hand),
                        "quantityintransit": Decimal(0),
                        **custom,
                    }
                )
        return rows

    def _pricing(self) -> list[dict[str, Any]]:
        rows = []
        for item_id, record in self.sim._store("inventoryItem").items():
            currency = self._currency(record.fields.get("currency") or "USD")
            if record.fields.get("basePrice") is not None:
                rows.append(
                    {
                        "item": item_id,
                        "pricelevel": 1,
                        "currency": currency,
                        "quantity": 0,
                        "unitprice": record.fields["basePrice"],
                    }
                )
            for level in record.fields.get("priceLevels") or []:
                rows.append(
                    {
                        "item": item_id,
                        "pricelevel": self.price_levels.id(level.get("priceLevel")),
                        "currency": currency,
                        "quantity": level.get("minQuantity", 0),
                        "unitprice": level.get("price"),
                    }
                )
        return rows

    def _address_book(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every customer's address book entries and the addresses they point at."""
        entries: list[dict[str, Any]] = []
        addresses: list[dict[str, Any]] = []
        for r in self.sim._store("customer").values():
            for line in sublist_lines(r, "addressBook"):
                nkey = len(addresses) + 1
                a = line.get("addressBookAddress") or {}
                addresses.append(
                    {
                        "nkey": nkey,
                        "addressee": a.get("addressee"),
                        "addr1": a.get("addr1"),
                        "addr2": a.get("addr2"),
                        "city": a.get("city"),
                        "state": a.get("state"),
                        "zip": a.get("zip"),
                        "country": ref_id(a.get("country")) or a.get("country"),
                        "addrphone": a.get("addrPhone"),
                    }
                )
                entries.append(
                    {
                        "id": nkey,
                        "entity": r.id,
                        "addressbookaddress": nkey,
                        "defaultbilling": bool(line.get("defaultBilling")),
                        "defaultshipping": bool(line.get("defaultShipping")),
                        "label": line.get("label"),
                    }
                )
        return entries, addresses

    def _customers(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.sim._store("customer").values():
            f = r.fields
            rows.append(
                {
                    "id": r.id,
                    "entityid": f.get("entityId") or f.get("externalId") or r.id,
                    "externalid": r.external_id,
                    "isperson": f.get("isPerson", True),
                    "firstname": f.get("firstName"),
                    "lastname": f.get("lastName"),
                    "companyname": f.get("companyName"),
                    "email": f.get("email"),
                    "phone": f.get("phone"),
                    "terms": self.terms.id(ref_name(f.get("terms"))),
                    "creditlimit": f.get("creditLimit"),
                    "currency": self._currency(f.get("currency")),
                    "category": self.categories.id(ref_name(f.get("category"))),
                    "pricelevel": self.price_levels.id(ref_name(f.get("priceLevel"))),
                    "taxable": f.get("taxable"),
                    "resalenumber": f.get("resaleNumber"),
                    "isinactive": bool(f.get("isInactive")),
                    "datecreated": r.created or _EPOCH,
                    "lastmodifieddate": r.modified or _EPOCH,
                    **self._custom(f, "customer"),
                }
            )
        return rows
