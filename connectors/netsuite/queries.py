"""The SuiteQL the connector runs: standard tables and columns only, custom fields only when
``options.custom_fields`` names them (``FieldNames.queried``).

Names as NetSuite's SuiteQL spells them (see ``simulators/netsuite/schema.py`` for the
sources of each): ``transaction`` (``type`` ids such as ItemShip, RtnAuth, CustCred;
``status`` a letter per type; ``lastmodifieddate``), ``transactionline`` (``mainline``,
``createdfrom`` — a line column, not a transaction column —, ``isinventoryaffecting``,
quantities signed as the stock moves), ``aggregateitemlocation`` (stock per item and
location for every inventory-type item), ``item``, ``pricing``, ``customer``, ``currency``
(its ``symbol`` is the ISO code; ``BUILTIN.DF`` would give the currency's *name*),
``itemfulfillmentpackage``.

Every driving query is ordered by ``(lastmodifieddate, id)`` and resumed with the keyset
condition ``lastmodifieddate > t OR (lastmodifieddate = t AND id > i)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kernel.errors import PermanentError

TIMESTAMP_FORMAT = "YYYY-MM-DD HH24:MI:SS"
SALES_ORDER, RETURN_AUTH, FULFILMENT, CREDIT_MEMO = "SalesOrd", "RtnAuth", "ItemShip", "CustCred"
# transaction types that change an item's on hand, committed or on-order quantity: orders
# commit (SalesOrd, TrnfrOrd); fulfilments, receipts, adjustments, counts, transfers,
# assembly builds and work orders, cash sales and credit memos move stock; purchase orders
# change what is on order (``options.stock_transaction_types`` replaces the list)
STOCK_TRANSACTION_TYPES = (
    "SalesOrd",
    "ItemShip",
    "ItemRcpt",
    "InvAdjst",
    "InvCount",
    "InvTrnfr",
    "TrnfrOrd",
    "InvWksht",
    "Build",
    "Unbuild",
    "WOIssue",
    "WOCompl",
    "CashSale",
    "CustCred",
    "PurchOrd",
)


def timestamp(text: str) -> str:
    return f"TO_TIMESTAMP('{text}', '{TIMESTAMP_FORMAT}')"


def after(alias: str, modified: str | None, ident: int) -> list[str]:
    """The keyset condition after (modified, id); ``modified`` is already validated."""
    if modified is None:
        return []
    ts = timestamp(modified)
    return [
        f"({alias}.lastmodifieddate > {ts} OR "
        f"({alias}.lastmodifieddate = {ts} AND {alias}.id > {ident}))"
    ]


def where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def modified_column(alias: str) -> str:
    return f"TO_CHAR({alias}.lastmodifieddate, '{TIMESTAMP_FORMAT}') AS modified"


def custom(alias: str, names: Iterable[str | None]) -> str:
    return "".join(f", {alias}.{name}" for name in names if name)


def id_list(ids: Sequence[str]) -> str:
    if not all(i.isdigit() for i in ids):  # internal ids are numbers; nothing else goes in SQL
        raise PermanentError(f"NetSuite returned non-numeric internal ids: {ids!r}")
    return ", ".join(ids)


def text_list(values: Sequence[str]) -> str:
    """Quoted SQL literals (a SKU may hold anything but control characters)."""
    for value in values:
        if not value.isprintable():
            raise PermanentError(f"SKU {value!r} cannot be looked up in NetSuite")
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def type_list(types: Sequence[str]) -> str:
    return ", ".join(f"'{t}'" for t in types if t.isascii() and t.isalpha())


# --- items, prices, customers ---------------------------------------------------------------


def items(modified: str | None, ident: int, extra: Sequence[str | None], *, full: bool) -> str:
    columns = ""
    if full:
        columns = (
            ", item.displayname, item.description AS salesdescription, item.upccode, "
            "item.isinactive, item.weight, BUILTIN.DF(item.weightunit) AS weightunit, "
            "BUILTIN.DF(item.parent) AS parentitemid, item.cost" + custom("item", extra)
        )
    conditions = where(["item.itemtype = 'InvtPart'", *after("item", modified, ident)])
    return (
        f"SELECT item.id, item.itemid, {modified_column('item')}{columns} FROM item{conditions}"
        " ORDER BY item.lastmodifieddate, item.id"
    )


def pricing(ids: Sequence[str]) -> str:
    return (
        "SELECT pricing.item, BUILTIN.DF(pricing.pricelevel) AS pricelevel, "
        "cur.symbol AS currency, pricing.quantity AS minquantity, pricing.unitprice AS price "
        "FROM pricing LEFT JOIN currency cur ON cur.id = pricing.currency "
        f"WHERE pricing.item IN ({id_list(ids)}) "
        "ORDER BY pricing.item, pricing.pricelevel, pricing.quantity"
    )


def customers(modified: str | None, ident: int) -> str:
    # no ``taxable``: it is not on every account (SuiteTax accounts compute tax instead)
    return (
        "SELECT customer.id, customer.entityid, customer.isperson, customer.firstname, "
        "customer.lastname, customer.companyname, customer.email, customer.phone, "
        "BUILTIN.DF(customer.terms) AS terms, customer.creditlimit, cur.symbol AS currency, "
        "BUILTIN.DF(customer.category) AS category, "
        "BUILTIN.DF(customer.pricelevel) AS pricelevel, customer.resalenumber, "
        f"{modified_column('customer')} FROM customer "
        f"LEFT JOIN currency cur ON cur.id = customer.currency"
        f"{where(after('customer', modified, ident))}"
        " ORDER BY customer.lastmodifieddate, customer.id"
    )


# --- stock ----------------------------------------------------------------------------------


def stock_transactions(modified: str | None, ident: int, types: Sequence[str]) -> str:
    """The driving query of the inventory stream: transactions that move stock."""
    conditions = where([f"t.type IN ({type_list(types)})", *after("t", modified, ident)])
    return (
        f"SELECT t.id, t.type, {modified_column('t')} FROM transaction t{conditions}"
        " ORDER BY t.lastmodifieddate, t.id"
    )


def touched_items(ids: Sequence[str]) -> str:
    return (
        "SELECT DISTINCT tl.item FROM transactionline tl "
        f"WHERE tl.transaction IN ({id_list(ids)}) AND tl.mainline = 'F' "
        "AND tl.item IS NOT NULL ORDER BY tl.item"
    )


def _stock(condition: str, extra: Sequence[str | None]) -> str:
    return (
        "SELECT ail.item, item.itemid, ail.location, ail.quantityonhand, "
        "ail.quantitycommitted, ail.quantityonorder"
        + custom("ail", extra)
        + " FROM aggregateitemlocation ail INNER JOIN item ON item.id = ail.item"
        f" WHERE {condition} ORDER BY ail.item, ail.location"
    )


def stock_of_items(ids: Sequence[str], extra: Sequence[str | None]) -> str:
    return _stock(f"ail.item IN ({id_list(ids)})", extra)


def stock_of_skus(skus: Sequence[str], extra: Sequence[str | None]) -> str:
    return _stock(f"item.itemid IN ({text_list(skus)})", extra)


# --- transactions -------------------------------------------------------------------------


def _source(alias: str) -> str:
    """Columns of the transaction a main line was created from (order, RMA, invoice)."""
    return (
        f"{alias}.id AS {alias}id, {alias}.type AS {alias}type, {alias}.tranid AS "
        f"{alias}tranid, {alias}.externalid AS {alias}externalid"
    )


def transactions(tran_type: str, modified: str | None, ident: int) -> str:
    """Fulfilments, credit memos or RMAs with where they came from: the main line's
    ``createdfrom`` (``src``: order, RMA or invoice) and that one's own (``up``: the order
    behind an RMA or invoice); for RMAs, the exchange order created from it, if any."""
    exchange = ""
    if tran_type == RETURN_AUTH:
        exchange = (
            ", (SELECT MIN(xl.transaction) FROM transactionline xl INNER JOIN transaction x "
            f"ON x.id = xl.transaction WHERE xl.createdfrom = t.id AND xl.mainline = 'T' "
            f"AND x.type = '{SALES_ORDER}') AS exchangeid"
        )
    if tran_type == CREDIT_MEMO:
        # a credit memo of an RMA that has an exchange order pays for the replacement
        exchange = (
            ", (SELECT MIN(xl.transaction) FROM transactionline xl INNER JOIN transaction x "
            f"ON x.id = xl.transaction WHERE xl.createdfrom = src.id AND xl.mainline = 'T' "
            f"AND x.type = '{SALES_ORDER}' AND src.type = '{RETURN_AUTH}') AS exchangeid"
        )
    conditions = where([f"t.type = '{tran_type}'", *after("t", modified, ident)])
    return (
        "SELECT t.id, t.tranid, TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate, t.status, "
        "t.externalid, t.memo, BUILTIN.DF(t.shipmethod) AS shipmethod, t.shipcarrier, "
        f"cur.symbol AS currency, t.foreigntotal AS total, {modified_column('t')}, "
        f"TO_CHAR(t.createddate, '{TIMESTAMP_FORMAT}') AS created, "
        f"{_source('src')}, {_source('up')}{exchange} "
        "FROM transaction t "
        "INNER JOIN transactionline ml ON ml.transaction = t.id AND ml.mainline = 'T' "
        "LEFT JOIN currency cur ON cur.id = t.currency "
        "LEFT JOIN transaction src ON src.id = ml.createdfrom "
        "LEFT JOIN transactionline srcml ON srcml.transaction = src.id AND srcml.mainline = 'T' "
        f"LEFT JOIN transaction up ON up.id = srcml.createdfrom{conditions}"
        " ORDER BY t.lastmodifieddate, t.id"
    )


def lines(ids: Sequence[str], extra: Sequence[str | None], *, inventory_only: bool) -> str:
    """Item lines; for fulfilments only the lines that moved stock (NetSuite may mirror a
    shipped line with a positive display line and a negative inventory line)."""
    moved = " AND tl.isinventoryaffecting = 'T'" if inventory_only else ""
    return (
        "SELECT tl.transaction, tl.id AS line, item.itemid, tl.quantity, "
        "tl.foreignamount AS amount, tl.location"
        + custom("tl", extra)
        + " FROM transactionline tl INNER JOIN item ON item.id = tl.item"
        f" WHERE tl.transaction IN ({id_list(ids)}) AND tl.mainline = 'F'"
        f" AND tl.taxline = 'F'{moved} ORDER BY tl.transaction, tl.id"
    )


def packages(ids: Sequence[str]) -> str:
    return (
        "SELECT p.itemfulfillment, p.packagetrackingnumber, p.packageweight, "
        f"p.packagedescr FROM itemfulfillmentpackage p WHERE p.itemfulfillment IN ({id_list(ids)})"
        " ORDER BY p.itemfulfillment, p.id"
    )
