"""The SuiteQL tables of a standard NetSuite account, as the simulator serves them.

Only documented (or publicly queried) tables and columns are here; a query naming anything
else fails the way NetSuite fails. A custom field (``custitem_*``, ``custrecord_*``,
``custcol_*``, ``custbody_*``) exists only when the simulated account is given it
(``ErpState.custom_columns``), like a field an administrator created.

Sources for the names (SuiteQL spells them in lower case, case-insensitive):

- ``transaction``: ``id, tranid, type, trandate, createddate, lastmodifieddate, status
  (a letter per type), entity, currency, foreigntotal, externalid, otherrefnum, memo,
  shipmethod, shipcarrier, voided``: Oracle's SuiteQL examples and the Records Catalog, as
  used in public queries: Tim Dietrich's SuiteQL library (GSpo7/suiteql-sql-library:
  shipments.sql, rmas-in-date-range.sql, transaction-statuses.sql: "Transaction.Voided",
  "TransactionShipment", "BUILTIN.DF( Transaction.Status )"), and a production sync that
  reads ``f.shipmethod, f.shipcarrier`` of ItemShip transactions.
- ``transactionline``: ``id, transaction, mainline, taxline, item, itemtype, quantity,
  foreignamount, location, createdfrom, isinventoryaffecting, isclosed, quantityshiprecv``:
  goodrsunglasses/mozartdata transforms/staging/inventory_item_detail.sql (item, quantity,
  itemtype, location, createdfrom, isinventoryaffecting), Tim Dietrich's
  "Mainline.CreatedFrom ... TransactionLine.IsInventoryAffecting = 'T'" and
  "SUM(Quantity) * -1" (fulfilment and sales lines carry negative quantities); ``createdfrom``
  is a line column, not a transaction column.
- ``aggregateitemlocation``: ``item, location, quantityonhand, quantitycommitted,
  quantityavailable, quantityonorder, quantitybackordered, quantityintransit,
  lastquantityavailablechange`` (every inventory-type item, per location), and
  ``inventoryitemlocations`` (the same for InvtPart items only): public SuiteQL
  ("AIL.QuantityAvailable, AIL.QuantityOnHand, AIL.QuantityCommitted,
  AIL.LastQuantityAvailableChange FROM AggregateItemLocation AS AIL").
- ``item``: ``id, itemid, itemtype, displayname, description, upccode, isinactive,
  weight, weightunit, parent, cost, lastmodifieddate, createddate`` (items-inventory-analysis.sql).
- ``itemfulfillmentpackage``: ``id, itemfulfillment, packagetrackingnumber,
  packageweight, packagedescr`` (public SuiteQL: "packagetrackingnumber ... FROM
  itemfulfillmentpackage ... = itemfulfillmentpackage.itemfulfillment").
- ``currency`` (``id, name, symbol``: the ISO code is the symbol; ``BUILTIN.DF`` gives the
  name), ``location``, ``pricelevel``, ``pricing`` (``item, pricelevel, currency, quantity,
  unitprice``), ``customer``, ``term``, ``customercategory``, ``shipitem``.
- ``customeraddressbook`` (``entity``, ``addressbookaddress``, ``defaultbilling``,
  ``defaultshipping``, ``label``) joined to ``customeraddressbookentityaddress`` on
  ``nkey`` (``addr1``, ``city``, ``zip``, ``country``…): public SuiteQL, "LEFT JOIN
  customerAddressbook ON a.id = b.entity LEFT JOIN customerAddressbookEntityAddress ON
  b.addressbookaddress = c.nkey".
"""

from __future__ import annotations

from dataclasses import dataclass

# column kinds: how a value is stored in SQLite and written back in a row
TEXT, NUM, DATE, REF, BOOL = "text", "num", "date", "ref", "bool"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = TEXT
    refers_to: str | None = None  # for BUILTIN.DF: the table whose name it shows


def _cols(spec: str) -> tuple[Column, ...]:
    """``"id:num, tranid, entity:ref=customer"`` → columns."""
    out = []
    for part in spec.split(","):
        name, _, kind = part.strip().partition(":")
        kind, _, target = kind.partition("=")
        out.append(Column(name, kind or TEXT, target or None))
    return tuple(out)


TABLES: dict[str, tuple[Column, ...]] = {
    "transaction": _cols(
        "id:num, tranid, type, trandate:date, createddate:date, lastmodifieddate:date, "
        "status:ref=status, entity:ref=customer, currency:ref=currency, foreigntotal:num, "
        "externalid, otherrefnum, memo, shipmethod:ref=shipitem, shipcarrier, voided:bool, "
        "location:ref=location"
    ),
    "transactionline": _cols(
        "id:num, transaction:num, mainline:bool, taxline:bool, item:ref=item, itemtype, "
        "quantity:num, foreignamount:num, location:ref=location, createdfrom:ref=transaction, "
        "isinventoryaffecting:bool, isclosed:bool, quantityshiprecv:num"
    ),
    "item": _cols(
        "id:num, itemid, itemtype, displayname, description, upccode, isinactive:bool, "
        "weight:num, weightunit:ref=unitstype, parent:ref=item, cost:num, "
        "lastmodifieddate:date, createddate:date"
    ),
    "aggregateitemlocation": _cols(
        "item:ref=item, location:ref=location, quantityonhand:num, quantitycommitted:num, "
        "quantityavailable:num, quantityonorder:num, quantitybackordered:num, "
        "quantityintransit:num, lastquantityavailablechange:date"
    ),
    "inventoryitemlocations": _cols(
        "item:ref=item, location:ref=location, quantityonhand:num, quantitycommitted:num, "
        "quantityavailable:num, quantityonorder:num, quantitybackordered:num"
    ),
    "itemfulfillmentpackage": _cols(
        "id:num, itemfulfillment:num, packagetrackingnumber, packageweight:num, packagedescr"
    ),
    "pricing": _cols(
        "item:ref=item, pricelevel:ref=pricelevel, currency:ref=currency, quantity:num, "
        "unitprice:num"
    ),
    "customer": _cols(
        "id:num, entityid, externalid, isperson:bool, firstname, lastname, companyname, "
        "email, phone, terms:ref=term, creditlimit:num, currency:ref=currency, "
        "category:ref=customercategory, pricelevel:ref=pricelevel, taxable:bool, "
        "resalenumber, isinactive:bool, datecreated:date, lastmodifieddate:date"
    ),
    # a customer's address book: one row per entry, its address in the entity-address table
    "customeraddressbook": _cols(
        "id:num, entity:ref=customer, addressbookaddress:num, defaultbilling:bool, "
        "defaultshipping:bool, label"
    ),
    "customeraddressbookentityaddress": _cols(
        "nkey:num, addressee, addr1, addr2, city, state, zip, country, addrphone"
    ),
    "currency": _cols("id:num, name, symbol"),
    "location": _cols("id:num, name, isinactive:bool"),
    "pricelevel": _cols("id:num, name"),
    "term": _cols("id:num, name"),
    "customercategory": _cols("id:num, name"),
    "shipitem": _cols("id:num, itemid"),
    "unitstype": _cols("id:num, name"),
}

# which custom field prefix belongs to which tables (what an administrator's field applies to)
CUSTOM_PREFIXES = {
    "custitem": ("item",),
    "custrecord": ("aggregateitemlocation", "inventoryitemlocations"),
    "custcol": ("transactionline",),
    "custbody": ("transaction",),
    "custentity": ("customer",),
}

# the display value NetSuite shows for a reference (BUILTIN.DF): the column of the target
DISPLAY_COLUMN = {"item": "itemid", "shipitem": "itemid", "customer": "entityid"}

# SuiteQL transaction type ids by REST record type (Records Catalog "type" values; credit
# memos are CustCred, not CustMemo)
TRAN_TYPES = {
    "salesorder": "SalesOrd",
    "returnauthorization": "RtnAuth",
    "itemfulfillment": "ItemShip",
    "itemreceipt": "ItemRcpt",
    "creditmemo": "CustCred",
    "invoice": "CustInvc",
    "cashsale": "CashSale",
    "inventoryadjustment": "InvAdjst",
    "inventorytransfer": "InvTrnfr",
    "transferorder": "TrnfrOrd",
    "purchaseorder": "PurchOrd",
    "assemblybuild": "Build",
}
# sales transactions keep line quantities and amounts negative (the item leaves)
NEGATIVE_LINES = frozenset({"SalesOrd", "ItemShip", "CashSale", "CustInvc"})


def custom_tables(field_id: str) -> tuple[str, ...]:
    prefix = next((p for p in CUSTOM_PREFIXES if field_id.lower().startswith(p)), None)
    return CUSTOM_PREFIXES[prefix] if prefix else ()


__all__ = [
    "BOOL",
    "CUSTOM_PREFIXES",
    "DATE",
    "DISPLAY_COLUMN",
    "NEGATIVE_LINES",
    "NUM",
    "REF",
    "TABLES",
    "TEXT",
    "TRAN_TYPES",
    "Column",
    "custom_tables",
]
