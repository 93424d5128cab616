"""Polling NetSuite with SuiteQL: the path for accounts without the user-event script, and
the safety net for posts the script could not deliver.

Streams and their driving queries (``queries.py`` holds the SQL):

- ``inventory``: transactions that move stock (``options.stock_transaction_types``: sales
  and transfer orders commit, fulfilments, receipts, adjustments, counts, transfers, builds,
  credit memos move it), then the current quantities of the items they touched, per
  location (``aggregateitemlocation``). An item's own ``lastmodifieddate`` does not move
  when its stock does, so polling items would miss nearly every change;
- ``products``: inventory items changed (and their prices);
- ``customers``; ``shipments`` (ItemShip, sent once ``fulfillment_status`` is reached);
  ``credit_memos`` (CustCred; tied to the order through the RMA's ``createdfrom``);
  ``returns`` (RtnAuth: every status change of an RMA).

Each driving query is ordered by ``(lastmodifieddate, id)`` and resumed with the keyset
condition, so a restart continues exactly after the last row returned, and rows sharing
one timestamp (NetSuite keeps whole seconds) are neither lost nor repeated. Sublists come
from follow-up queries ``WHERE … IN (ids)`` and are reshaped into the record dicts of
``records.py``, so polled changes become the same canonical events as pushed ones.

Exchanges: a sales order NetSuite created from an RMA is the replacement of an exchange.
Its fulfilments are not shipments of a new web order (they are left out: the store has no
such order), a credit memo of such an RMA pays for the replacement and is not a refund (left
out), and the RMA's return event says which order replaces the goods (``note``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from connectors.netsuite import queries as sql
from connectors.netsuite.fields import MappingSettings
from connectors.netsuite.records import (
    CREDIT_MEMO,
    CUSTOMER,
    INVENTORY_ITEM,
    INVENTORY_PARTS,
    ITEM_FULFILLMENT,
    PRODUCT_PARTS,
    RETURN_AUTHORIZATION,
    events_for,
)
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.inventory import InventoryLevel
from kernel.errors import PayloadError, PermanentError
from kernel.types import PollPage

MAX_PAGE = 1000  # SuiteQL's largest page; also the most ids one IN list gets
STREAMS = frozenset({"inventory", "products", "customers", "shipments", "credit_memos", "returns"})
_CURSOR_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
# stream → (transaction type, record type for records.py)
_TRANSACTIONS = {
    "shipments": (sql.FULFILMENT, ITEM_FULFILLMENT),
    "credit_memos": (sql.CREDIT_MEMO, CREDIT_MEMO),
    "returns": (sql.RETURN_AUTH, RETURN_AUTHORIZATION),
}

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
    """The sales order and RMA a transaction came from: its own ``createdfrom`` (order, RMA
    or invoice), else that one's (the order an RMA or invoice was created from)."""
    src, up = _ref(row, "src"), _ref(row, "up")
    order = next((r for r in (src, up) if r and r["type"] == sql.SALES_ORDER), None)
    rma = src if src and src["type"] == sql.RETURN_AUTH else None
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


def _skipped(stream: str, row: dict[str, Any], order: dict[str, Any] | None) -> bool:
    """Transactions that are not the store's business (see the module docstring)."""
    if order is None:
        # a fulfilment, memo or RMA of something that is no sales order (a cash sale, a
        # transfer, a goodwill credit): no store order to tell
        return True
    if stream == "shipments" and _ref(row, "up") and row.get("uptype") == sql.RETURN_AUTH:
        return True  # the replacement of an exchange: not a new web order
    return stream == "credit_memos" and bool(row.get("exchangeid"))  # pays the replacement


def _stock_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """aggregateitemlocation rows → one inventory item record each, with its locations."""
    by_item: dict[str, dict[str, Any]] = {}
    for row in rows:
        item = str(row.get("item"))
        record = by_item.setdefault(
            item, {"id": item, "itemId": row.get("itemid"), "locations": []}
        )
        record["locations"].append(row)
    return list(by_item.values())


@dataclass
class Poller:
    """Runs one stream's queries and maps the rows; ``run`` is ``NetSuiteClient.suiteql``."""

    run: RunQuery
    settings: MappingSettings
    page_size: int = MAX_PAGE

    def _extra(self, *keys: str) -> list[str | None]:
        return [self.settings.fields.queried(k) for k in keys]

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
        if stream == "inventory":
            events = await self._stock_events([str(r["id"]) for r in rows])
        else:
            events = []
            for row, (record_type, record, created) in await self._records(stream, rows):
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
        modified, ident = (after.modified, after.id) if after else (None, 0)
        if stream == "inventory":
            return sql.stock_transactions(modified, ident, self.settings.stock_types)
        if stream in ("products",):
            extra = self._extra("sale_price", "sale_start", "sale_end", "map_price")
            return sql.items(modified, ident, extra, full=True)
        if stream == "customers":
            return sql.customers(modified, ident)
        return sql.transactions(_TRANSACTIONS[stream][0], modified, ident)

    # --- stock ------------------------------------------------------------------------
    def _stock_extra(self) -> list[str | None]:
        return self._extra("reserved", "damaged", "quarantined", "expected_date")

    async def _stock_events(self, transaction_ids: list[str]) -> list[CanonicalEvent]:
        """The current levels of every item the transactions touched (read now, so as of
        now: a level is a snapshot, whatever the transactions' own dates)."""
        touched = await _details(self.run, sql.touched_items, transaction_ids, "item")
        item_ids = sorted(touched, key=int)
        if not item_ids:
            return []
        stock = await _details(
            self.run, lambda ids: sql.stock_of_items(ids, self._stock_extra()), item_ids, "item"
        )
        rows = [row for item in item_ids for row in stock.get(item, [])]
        return self._level_events(rows)

    def _level_events(self, rows: list[dict[str, Any]]) -> list[CanonicalEvent]:
        when = datetime.now(UTC)
        events: list[CanonicalEvent] = []
        for record in _stock_records(rows):
            try:
                events += events_for(
                    INVENTORY_ITEM,
                    record,
                    self.settings,
                    occurred_at=when,
                    item_parts=INVENTORY_PARTS,
                )
            except (ValidationError, ValueError, PayloadError) as exc:
                raise PermanentError(
                    f"NetSuite stock of item {record.get('id')} cannot be mapped: {exc}"
                ) from None
        return events

    async def levels(self, skus: list[str]) -> list[InventoryLevel]:
        """What NetSuite holds now for these SKUs, per location (for reconciliation)."""
        rows: list[dict[str, Any]] = []
        for start in range(0, len(skus), MAX_PAGE):
            chunk = skus[start : start + MAX_PAGE]
            rows += await fetch_all(self.run, sql.stock_of_skus(chunk, self._stock_extra()))
        return [e.payload_as(InventoryLevel) for e in self._level_events(rows)]

    # --- records ----------------------------------------------------------------------
    async def _records(
        self, stream: str, rows: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], tuple[str, dict[str, Any], bool]]]:
        ids = [str(r["id"]) for r in rows]
        s = self.settings
        if stream == "products":
            prices = await _details(self.run, sql.pricing, ids, "item")
            out = []
            for r in rows:
                levels = [
                    p
                    for p in prices.get(str(r["id"]), [])
                    if not p.get("currency") or str(p["currency"]).upper() == s.base_currency
                ]
                out.append((r, (INVENTORY_ITEM, {**r, "priceLevels": levels}, False)))
            return out
        if stream == "customers":
            return [(r, (CUSTOMER, r, False)) for r in rows]
        tran_type, record_type = _TRANSACTIONS[stream]
        extra = self._extra("disposition") + (
            self._extra("return_reason") if stream == "returns" else []
        )
        lines = await _details(
            self.run,
            lambda i: sql.lines(i, extra, inventory_only=tran_type == sql.FULFILMENT),
            ids,
            "transaction",
        )
        packages = (
            await _details(self.run, sql.packages, ids, "itemfulfillment")
            if stream == "shipments"
            else {}
        )
        out = []
        for r in rows:
            order, rma = _order_and_rma(r)
            if _skipped(stream, r, order):
                continue
            record = {
                **r,
                "salesOrder": order,
                "returnAuthorization": rma,
                "shipStatus": r.get("status"),
                "items": _abs_quantities(lines.get(str(r["id"]), [])),
                "packages": packages.get(str(r["id"]), []),
            }
            if stream == "returns" and r.get("exchangeid"):
                note = f"exchange: replaced by sales order {r['exchangeid']}"
                record["memo"] = f"{r['memo']}; {note}" if r.get("memo") else note
            out.append((r, (record_type, record, r.get("created") == r.get("modified"))))
        return out

    def _events(
        self,
        stream: str,
        row: dict[str, Any],
        record_type: str,
        record: dict[str, Any],
        created: bool,
    ) -> list[CanonicalEvent]:
        try:
            return events_for(
                record_type,
                record,
                self.settings,
                occurred_at=_when(row, self.settings),
                created=created,
                item_parts=PRODUCT_PARTS,
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
