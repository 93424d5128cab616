"""The simulator's SuiteQL service: it answers the query shapes the connector sends.

No SQL engine: each known shape is recognised by a regular expression, its parameters (the
keyset cursor, ``IN`` lists, custom columns) are read from the text, and the rows come from
the simulator's records. Anything else gets NetSuite's 400 for a query it cannot run.
Like NetSuite, columns whose value is null are left out of a row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

TS_FORMAT = "YYYY-MM-DD HH24:MI:SS"
_TS = rf"TO_TIMESTAMP\('(?P<t>[\d :-]+)', '{TS_FORMAT}'\)"
_CURSOR = re.compile(
    rf"^\((?P<a>\w+)\.lastmodifieddate > {_TS} OR "
    rf"\((?P=a)\.lastmodifieddate = TO_TIMESTAMP\('(?P=t)', '{TS_FORMAT}'\) "
    rf"AND (?P=a)\.id > (?P<id>\d+)\)\)$"
)
_IDS = r"\((?P<ids>\d+(?:, \d+)*)\)"
_MOD = rf"TO_CHAR\((?P<alias>\w+)\.lastmodifieddate, '{TS_FORMAT}'\) AS modified"

ITEMS = re.compile(
    rf"^SELECT item\.id, item\.itemid, {_MOD}(?P<cols>(?:, [^,]+?)*) FROM item "
    r"WHERE item\.itemtype = 'InvtPart'(?: AND (?P<cursor>\(.+\)))? "
    r"ORDER BY item\.lastmodifieddate, item\.id$"
)
STOCK = re.compile(
    r"^SELECT iil\.item, iil\.location, iil\.quantityonhand, iil\.quantitycommitted, "
    r"iil\.quantityonorder(?P<cols>(?:, iil\.\w+)*) FROM inventoryitemlocations iil "
    rf"WHERE iil\.item IN {_IDS} ORDER BY iil\.item, iil\.location$"
)
PRICING = re.compile(
    r"^SELECT pricing\.item, BUILTIN\.DF\(pricing\.pricelevel\) AS pricelevel, "
    r"BUILTIN\.DF\(pricing\.currency\) AS currency, pricing\.quantity AS minquantity, "
    rf"pricing\.unitprice AS price FROM pricing WHERE pricing\.item IN {_IDS} "
    r"ORDER BY pricing\.item, pricing\.pricelevel, pricing\.quantity$"
)
CUSTOMERS = re.compile(
    rf"^SELECT customer\.id, (?:[^,]+, )+{_MOD} FROM customer"
    r"(?: WHERE (?P<cursor>\(.+\)))? ORDER BY customer\.lastmodifieddate, customer\.id$"
)
TRANSACTIONS = re.compile(
    rf"^SELECT t\.id, .+?, {_MOD}, .+? FROM transaction t "
    r"INNER JOIN transactionline ml ON ml\.transaction = t\.id AND ml\.mainline = 'T' "
    r"LEFT JOIN transaction src ON src\.id = ml\.createdfrom "
    r"LEFT JOIN transactionline srcml ON srcml\.transaction = src\.id AND srcml\.mainline = 'T' "
    r"LEFT JOIN transaction up ON up\.id = srcml\.createdfrom "
    r"WHERE t\.type = '(?P<type>ItemShip|CustMemo)'(?: AND (?P<cursor>\(.+\)))? "
    r"ORDER BY t\.lastmodifieddate, t\.id$"
)
LINES = re.compile(
    r"^SELECT tl\.transaction, tl\.id AS line, item\.itemid, tl\.quantity, "
    r"tl\.foreignamount AS amount, BUILTIN\.DF\(tl\.location\) AS location"
    r"(?P<cols>(?:, tl\.\w+)*) FROM transactionline tl INNER JOIN item ON item\.id = tl\.item "
    rf"WHERE tl\.transaction IN {_IDS} AND tl\.mainline = 'F' ORDER BY tl\.transaction, tl\.id$"
)
PACKAGES = re.compile(
    r"^SELECT p\.itemfulfillment, p\.packagetrackingnumber, p\.packageweight, p\.packagedescr "
    rf"FROM itemfulfillmentpackage p WHERE p\.itemfulfillment IN {_IDS} "
    r"ORDER BY p\.itemfulfillment, p\.id$"
)
_CUSTOM = re.compile(r"\b\w+\.(cust\w+)\b")


class SuiteQLData(Protocol):
    """Rows of the simulator's records, as the tables the connector reads would give them."""

    def item_rows(self, full: bool, custom: Sequence[str]) -> list[dict[str, Any]]: ...
    def stock_rows(self, ids: Sequence[str], custom: Sequence[str]) -> list[dict[str, Any]]: ...
    def pricing_rows(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...
    def customer_rows(self) -> list[dict[str, Any]]: ...
    def transaction_rows(self, tran_type: str) -> list[dict[str, Any]]: ...
    def line_rows(self, ids: Sequence[str], custom: Sequence[str]) -> list[dict[str, Any]]: ...
    def package_rows(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...


class QueryError(Exception):
    """A query the simulated account cannot run (NetSuite answers 400)."""


@dataclass(frozen=True)
class _Keyset:
    modified: str
    id: int


def _keyset(text: str | None) -> _Keyset | None:
    if not text:
        return None
    match = _CURSOR.match(text)
    if match is None:
        raise QueryError(f"unsupported condition {text[:80]!r}")
    return _Keyset(match["t"], int(match["id"]))


def _driving(rows: list[dict[str, Any]], after: _Keyset | None) -> list[dict[str, Any]]:
    """Rows after the keyset, ordered by (modified, id) as the ORDER BY says."""
    ordered = sorted(rows, key=lambda r: (r["modified"], int(r["id"])))
    if after is None:
        return ordered
    return [r for r in ordered if (r["modified"], int(r["id"])) > (after.modified, after.id)]


def _ids(match: re.Match[str]) -> list[str]:
    return [i.strip() for i in match["ids"].split(",")]


def _customs(text: str | None) -> list[str]:
    return _CUSTOM.findall(text or "")


def run(q: str, data: SuiteQLData) -> list[dict[str, Any]]:
    """Every row of ``q`` (before paging); QueryError for a shape we do not know."""
    text = " ".join(q.split())
    handlers: list[tuple[re.Pattern[str], Callable[[re.Match[str]], list[dict[str, Any]]]]] = [
        (
            ITEMS,
            lambda m: _driving(
                data.item_rows(bool(m["cols"]), _customs(m["cols"])), _keyset(m["cursor"])
            ),
        ),
        (STOCK, lambda m: data.stock_rows(_ids(m), _customs(m["cols"]))),
        (PRICING, lambda m: data.pricing_rows(_ids(m))),
        (CUSTOMERS, lambda m: _driving(data.customer_rows(), _keyset(m["cursor"]))),
        (
            TRANSACTIONS,
            lambda m: _driving(data.transaction_rows(m["type"]), _keyset(m["cursor"])),
        ),
        (LINES, lambda m: data.line_rows(_ids(m), _customs(m["cols"]))),
        (PACKAGES, lambda m: data.package_rows(_ids(m))),
    ]
    for pattern, handler in handlers:
        match = pattern.match(text)
        if match is not None:
            rows = handler(match)
            return [{k: v for k, v in row.items() if v is not None} for row in rows]
    raise QueryError("the simulator does not know this query shape")


def page(rows: list[dict[str, Any]], limit: int, offset: int, href: str) -> dict[str, Any]:
    """One page of rows in NetSuite's collection envelope."""
    chunk = rows[offset : offset + limit]
    more = offset + limit < len(rows)

    def link(rel: str, at: int) -> dict[str, str]:
        return {"rel": rel, "href": f"{href}?limit={limit}&offset={at}"}

    links = [link("first", 0)]
    if more:
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    links += [link("last", max(0, (len(rows) - 1) // limit * limit)), link("self", offset)]
    return {
        "links": links,
        "count": len(chunk),
        "hasMore": more,
        "items": [{"links": [], **row} for row in chunk],
        "offset": offset,
        "totalResults": len(rows),
    }


__all__ = ["QueryError", "SuiteQLData", "page", "run"]
