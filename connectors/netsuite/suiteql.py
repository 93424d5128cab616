"""Polling NetSuite with SuiteQL: the path for accounts without the user-event script, and
the safety net for posts the script could not deliver.

Each stream has one *driving* query over the changed records, ordered by
``(lastmodifieddate, id)`` and resumed with the keyset condition::

    lastmodifieddate > TO_TIMESTAMP(t) OR (lastmodifieddate = TO_TIMESTAMP(t) AND id > i)

so a restart continues exactly after the last row returned, and rows sharing one timestamp
(NetSuite keeps whole seconds) are neither lost nor repeated. Sublists (stock per location,
price levels, transaction lines, packages) come from follow-up queries ``WHERE … IN (ids)``.
The rows are reshaped into the record dicts of ``records.py``, so polled changes become the
same canonical events as pushed ones.

Tables and columns are the usual SuiteQL ones; which exist depends on the account's features
(check them in the Records Catalog). Custom fields are queried only when named in
``options.custom_fields`` (a ``null`` there leaves one out).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from connectors.netsuite.fields import MappingSettings
from connectors.netsuite.records import (
    CREDIT_MEMO,
    CUSTOMER,
    INVENTORY_ITEM,
    INVENTORY_PARTS,
    ITEM_FULFILLMENT,
    PRODUCT_PARTS,
    events_for,
)
from kernel.canonical.events import CanonicalEvent
from kernel.errors import PayloadError, PermanentError
from kernel.types import PollPage

MAX_PAGE = 1000  # SuiteQL's largest page; also the most ids one IN list gets
TIMESTAMP_FORMAT = "YYYY-MM-DD HH24:MI:SS"
STREAMS = frozenset({"inventory", "products", "customers", "shipments", "credit_memos"})
_CURSOR_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_SALES_ORDER, _RETURN_AUTH = "SalesOrd", "RtnAuth"

# (q, limit, offset) → the SuiteQL answer: {"items": [...], "hasMore": bool, …}
RunQuery = Callable[[str, int, int], Awaitable[dict[str, Any]]]


# --- cursor --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Position after the last row returned: its modification time (account time) and id."""

    modified: str
    id: int

    def encode(self) -> str:
        return json.dumps({"t": self.modified, "id": self.id}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            modified, ident = str(data["t"]), int(data["id"])
        except (ValueError, TypeError, KeyError):
            raise PermanentError(
                f"poll cursor {text!r} was not written by the NetSuite connector; "
                "reset the stream's cursor to start over"
            ) from None
        if not _CURSOR_TIME.match(modified):  # it goes into SQL: only the exact shape passes
            raise PermanentError(f"poll cursor time {modified!r} is not YYYY-MM-DD HH:MM:SS")
        return cls(modified, ident)


def _ts(text: str) -> str:
    return f"TO_TIMESTAMP('{text}', '{TIMESTAMP_FORMAT}')"


def _after(alias: str, cursor: Cursor | None) -> list[str]:
    if cursor is None:
        return []
    ts = _ts(cursor.modified)
    return [
        f"({alias}.lastmodifieddate > {ts} OR "
        f"({alias}.lastmodifieddate = {ts} AND {alias}.id > {cursor.id}))"
    ]


def _where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _modified(alias: str) -> str:
    return f"TO_CHAR({alias}.lastmodifieddate, '{TIMESTAMP_FORMAT}') AS modified"


def _custom(alias: str, names: Iterable[str | None]) -> str:
    return "".join(f", {alias}.{name}" for name in names if name)


def _in_list(ids: Sequence[str]) -> str:
    if not all(i.isdigit() for i in ids):  # internal ids are numbers; nothing else goes in SQL
        raise PermanentError(f"NetSuite returned non-numeric internal ids: {ids!r}")
    return ", ".join(ids)


# --- the queries (the simulator answers exactly these shapes) -------------------------------


def item_query(settings: MappingSettings, cursor: Cursor | None, *, full: bool) -> str:
    f = settings.fields
    columns = ""
    if full:
        columns = (
            ", item.displayname, item.description AS salesdescription, item.upccode, "
            "item.isinactive, item.weight, BUILTIN.DF(item.weightunit) AS weightunit, "
            "BUILTIN.DF(item.parent) AS parentitemid, item.cost"
            + _custom("item", (f.sale_price, f.sale_start, f.sale_end, f.map_price))
        )
    where = _where(["item.itemtype = 'InvtPart'", *_after("item", cursor)])
    return (
        f"SELECT item.id, item.itemid, {_modified('item')}{columns} FROM item{where}"
        " ORDER BY item.lastmodifieddate, item.id"
    )


def stock_query(settings: MappingSettings, ids: Sequence[str]) -> str:
    f = settings.fields
    return (
        "SELECT iil.item, iil.location, iil.quantityonhand, iil.quantitycommitted, "
        "iil.quantityonorder"
        + _custom("iil", (f.reserved, f.damaged, f.quarantined, f.expected_date))
        + f" FROM inventoryitemlocations iil WHERE iil.item IN ({_in_list(ids)})"
        " ORDER BY iil.item, iil.location"
    )


def pricing_query(ids: Sequence[str]) -> str:
    return (
        "SELECT pricing.item, BUILTIN.DF(pricing.pricelevel) AS pricelevel, "
        "BUILTIN.DF(pricing.currency) AS currency, pricing.quantity AS minquantity, "
        f"pricing.unitprice AS price FROM pricing WHERE pricing.item IN ({_in_list(ids)})"
        " ORDER BY pricing.item, pricing.pricelevel, pricing.quantity"
    )


def customer_query(cursor: Cursor | None) -> str:
    return (
        "SELECT customer.id, customer.entityid, customer.isperson, customer.firstname, "
        "customer.lastname, customer.companyname, customer.email, customer.phone, "
        "BUILTIN.DF(customer.terms) AS terms, customer.creditlimit, "
        "BUILTIN.DF(customer.currency) AS currency, BUILTIN.DF(customer.category) AS category, "
        "BUILTIN.DF(customer.pricelevel) AS pricelevel, customer.taxable, customer.resalenumber, "
        f"{_modified('customer')} FROM customer{_where(_after('customer', cursor))}"
        " ORDER BY customer.lastmodifieddate, customer.id"
    )


def transaction_query(tran_type: str, cursor: Cursor | None) -> str:
    """Item fulfilments (``ItemShip``) or credit memos (``CustMemo``) with where they came
    from: the main line's ``createdfrom`` (order or RMA) and that one's own (the order)."""
    where = _where([f"t.type = '{tran_type}'", *_after("t", cursor)])
    return (
        "SELECT t.id, t.tranid, TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate, t.shipstatus, "
        "BUILTIN.DF(t.shipmethod) AS shipmethod, BUILTIN.DF(t.currency) AS currency, "
        f"t.foreigntotal AS total, {_modified('t')}, "
        f"TO_CHAR(t.createddate, '{TIMESTAMP_FORMAT}') AS created, "
        "src.id AS srcid, src.type AS srctype, src.tranid AS srctranid, "
        "src.externalid AS srcexternalid, up.id AS upid, up.type AS uptype, "
        "up.tranid AS uptranid, up.externalid AS upexternalid FROM transaction t "
        "INNER JOIN transactionline ml ON ml.transaction = t.id AND ml.mainline = 'T' "
        "LEFT JOIN transaction src ON src.id = ml.createdfrom "
        "LEFT JOIN transactionline srcml ON srcml.transaction = src.id AND srcml.mainline = 'T' "
        f"LEFT JOIN transaction up ON up.id = srcml.createdfrom{where}"
        " ORDER BY t.lastmodifieddate, t.id"
    )


def lines_query(settings: MappingSettings, ids: Sequence[str]) -> str:
    return (
        "SELECT tl.transaction, tl.id AS line, item.itemid, tl.quantity, "
        "tl.foreignamount AS amount, BUILTIN.DF(tl.location) AS location"
        + _custom("tl", (settings.fields.disposition,))
        + " FROM transactionline tl INNER JOIN item ON item.id = tl.item"
        f" WHERE tl.transaction IN ({_in_list(ids)}) AND tl.mainline = 'F'"
        " ORDER BY tl.transaction, tl.id"
    )


def packages_query(ids: Sequence[str]) -> str:
    return (
        "SELECT p.itemfulfillment, p.packagetrackingnumber, p.packageweight, "
        f"p.packagedescr FROM itemfulfillmentpackage p WHERE p.itemfulfillment IN ({_in_list(ids)})"
        " ORDER BY p.itemfulfillment, p.id"
    )


# --- running them --------------------------------------------------------------------------


async def fetch(
    run: RunQuery, q: str, limit: int, page_size: int = MAX_PAGE
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` rows of ``q``, paging by offset; True if more rows are waiting.

    The page size stays fixed within the call (NetSuite wants offsets that are multiples
    of it); a last page that overshoots is cut, and the cursor of the last row kept covers
    the cut rows on the next poll.
    """
    page = max(1, min(limit, page_size, MAX_PAGE))
    rows: list[dict[str, Any]] = []
    offset, more = 0, True
    while more and len(rows) < limit:
        answer = await run(q, page, offset)
        items = answer.get("items")
        if not isinstance(items, list):
            raise PermanentError("NetSuite answered a SuiteQL query without an items list")
        rows += [dict(r) for r in items if isinstance(r, dict)]
        more = bool(answer.get("hasMore")) and bool(items)
        offset += page
    if len(rows) > limit:
        return rows[:limit], True
    return rows, more


async def fetch_all(run: RunQuery, q: str) -> list[dict[str, Any]]:
    rows, _ = await fetch(run, q, 10**9)
    return rows


async def _details(
    run: RunQuery, build: Callable[[Sequence[str]], str], ids: Sequence[str], key: str
) -> dict[str, list[dict[str, Any]]]:
    """Follow-up rows grouped by the parent id in column ``key``."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), MAX_PAGE):
        for row in await fetch_all(run, build(ids[start : start + MAX_PAGE])):
            grouped.setdefault(str(row.get(key)), []).append(row)
    return grouped


def _ref(row: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    if row.get(f"{prefix}id") in (None, ""):
        return None
    return {
        "id": str(row[f"{prefix}id"]),
        "tranId": row.get(f"{prefix}tranid"),
        "externalId": row.get(f"{prefix}externalid"),
        "type": row.get(f"{prefix}type"),
    }


def _order_and_rma(row: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    src, up = _ref(row, "src"), _ref(row, "up")
    order = next((r for r in (src, up) if r and r["type"] == _SALES_ORDER), None)
    rma = src if src and src["type"] == _RETURN_AUTH else None
    return order, rma


def _abs_quantities(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # transaction lines store quantities with the sign of the stock movement
    for line in lines:
        for key in ("quantity", "amount"):
            value = line.get(key)
            if isinstance(value, int | Decimal):
                line[key] = abs(value)
            elif isinstance(value, str) and value.startswith("-"):
                line[key] = value[1:]
    return lines


@dataclass
class Poller:
    """Runs one stream's queries and maps the rows; ``run`` is ``NetSuiteClient.suiteql``."""

    run: RunQuery
    settings: MappingSettings
    page_size: int = MAX_PAGE

    async def poll(self, stream: str, cursor: str | None, limit: int) -> PollPage:
        if stream not in STREAMS:
            raise PermanentError(
                f"NetSuite cannot poll {stream!r}; streams: {', '.join(sorted(STREAMS))}"
            )
        after = Cursor.decode(cursor)
        q = self._driving_query(stream, after)
        rows, more = await fetch(self.run, q, limit, self.page_size)
        if not rows:
            return PollPage(events=[], cursor=cursor, has_more=False)
        records = await self._records(stream, rows)
        events: list[CanonicalEvent] = []
        for row, (record_type, record, created) in zip(rows, records, strict=True):
            events += self._events(stream, row, record_type, record, created)
        last = rows[-1]
        # Within a run, page exactly after the last row. At the end of a run, rewind to the
        # start of the last row's second: NetSuite stamps changes to the second, so a record
        # changed again later in that same second would otherwise never be read. The core
        # drops rows it has already recorded.
        last_id = int(last["id"]) if more else 0
        next_cursor = Cursor(str(last["modified"]), last_id).encode()
        return PollPage(events=events, cursor=next_cursor, has_more=more)

    def _driving_query(self, stream: str, after: Cursor | None) -> str:
        if stream == "inventory":
            return item_query(self.settings, after, full=False)
        if stream == "products":
            return item_query(self.settings, after, full=True)
        if stream == "customers":
            return customer_query(after)
        return transaction_query("ItemShip" if stream == "shipments" else "CustMemo", after)

    async def _records(
        self, stream: str, rows: list[dict[str, Any]]
    ) -> list[tuple[str, dict[str, Any], bool]]:
        ids = [str(r["id"]) for r in rows]
        s = self.settings
        if stream == "inventory":
            stock = await _details(self.run, lambda i: stock_query(s, i), ids, "item")
            return [
                (INVENTORY_ITEM, {**r, "locations": stock.get(str(r["id"]), [])}, False)
                for r in rows
            ]
        if stream == "products":
            prices = await _details(self.run, pricing_query, ids, "item")
            out = []
            for r in rows:
                levels = [
                    p
                    for p in prices.get(str(r["id"]), [])
                    if not p.get("currency") or str(p["currency"]).upper() == s.base_currency
                ]
                out.append((INVENTORY_ITEM, {**r, "priceLevels": levels}, False))
            return out
        if stream == "customers":
            return [(CUSTOMER, r, False) for r in rows]
        lines = await _details(self.run, lambda i: lines_query(s, i), ids, "transaction")
        packages = (
            await _details(self.run, packages_query, ids, "itemfulfillment")
            if stream == "shipments"
            else {}
        )
        out = []
        for r in rows:
            order, rma = _order_and_rma(r)
            record = {
                **r,
                "salesOrder": order,
                "returnAuthorization": rma,
                "items": _abs_quantities(lines.get(str(r["id"]), [])),
                "packages": packages.get(str(r["id"]), []),
            }
            kind = ITEM_FULFILLMENT if stream == "shipments" else CREDIT_MEMO
            out.append((kind, record, r.get("created") == r.get("modified")))
        return out

    def _events(
        self,
        stream: str,
        row: dict[str, Any],
        record_type: str,
        record: dict[str, Any],
        created: bool,
    ) -> list[CanonicalEvent]:
        # stock rows are read as they are now (a snapshot), not as of the item's last edit:
        # quantity changes need not move the item's lastmodifieddate
        when = datetime.now(UTC) if stream == "inventory" else _when(row, self.settings)
        parts = INVENTORY_PARTS if stream == "inventory" else PRODUCT_PARTS
        try:
            return events_for(
                record_type,
                record,
                self.settings,
                occurred_at=when,
                created=created,
                item_parts=parts,
            )
        except (ValidationError, ValueError, PayloadError) as exc:
            # stop here, naming the record, rather than skip it and move the cursor past it
            raise PermanentError(
                f"NetSuite {record_type} {row.get('id')} cannot be mapped: {exc}"
            ) from None


def _when(row: dict[str, Any], settings: MappingSettings) -> datetime:
    when = datetime.strptime(str(row["modified"]), "%Y-%m-%d %H:%M:%S")
    return when.replace(tzinfo=settings.timezone)


__all__ = ["STREAMS", "Cursor", "Poller", "fetch"]
