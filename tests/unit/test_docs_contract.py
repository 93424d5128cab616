"""The inbound contract in docs/flows.md names every column the NetSuite polls query.

The polls are run against a fake SuiteQL endpoint that records each query (every stream, and
reconciliation's stock read, with every custom field configured); each ``table.column`` they
name must appear in the "NetSuite: what the polls read" section, and each custom column id
too. A column added to ``connectors/netsuite/queries.py`` without a word in the doc fails here.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from connectors.netsuite.fields import FieldNames, MappingSettings
from connectors.netsuite.suiteql import STREAMS, Poller

FLOWS_DOC = Path(__file__).resolve().parents[2] / "docs" / "flows.md"
SECTION = "## NetSuite: what the polls read"
# one row that every query's answer can be read as: ids, a SKU, a Base Price row
ROW = {
    "id": "1",
    "modified": "2026-11-02 14:03:07",
    "item": "1",
    "itemid": "SKU-1",
    "location": "1",
    "transaction": "1",
    "itemfulfillment": "1",
    "pricelevel": "Base Price",
    "price": "9.90",
}
_SOURCE = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?!(?:ON|WHERE|INNER|LEFT|ORDER)\b)(\w+))?")
_REFERENCE = re.compile(r"\b(\w+)\.(\w+)\b")


def _section() -> str:
    text = FLOWS_DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"docs/flows.md lost its section {SECTION!r}"
    rest = text.split(SECTION, 1)[1]
    return rest.split("\n## ", 1)[0]


def _settings() -> MappingSettings:
    every = {f.name: getattr(FieldNames(), f.name) for f in fields(FieldNames)}
    every.pop("configured")
    return MappingSettings.from_options("erp", {"custom_fields": every})


async def _queries(stream: str) -> list[str]:
    seen: list[str] = []

    async def run(q: str, limit: int, offset: int) -> dict[str, Any]:
        seen.append(q)
        return {"items": [dict(ROW)], "hasMore": False}

    poller = Poller(run, _settings())
    if stream == "reconciliation":
        await poller.levels(["SKU-1"])
    else:
        await poller.poll(stream, None, 10)
    return seen


def columns(sql: str) -> set[str]:
    """``table.column`` for every column ``sql`` names, aliases resolved to their tables."""
    tables = {alias or table: table for table, alias in _SOURCE.findall(sql)}
    return {f"{tables[a]}.{c}" for a, c in _REFERENCE.findall(sql) if a in tables}


def _documented(name: str, doc: str) -> bool:
    """``table.column`` is named in ``doc``; a custom column by its id alone (the doc names it
    with its ``custom_fields`` key)."""
    column = name.split(".", 1)[1]
    token = column if column.startswith("cust") else name
    return re.search(rf"\b{re.escape(token)}\b", doc) is not None


def test_columns_resolves_aliases() -> None:
    sql = (
        "SELECT t.id, cur.symbol, item.itemid FROM transaction t "
        "LEFT JOIN currency cur ON cur.id = t.currency INNER JOIN item ON item.id = t.item"
    )
    assert columns(sql) == {
        "transaction.id",
        "transaction.currency",
        "transaction.item",
        "currency.symbol",
        "currency.id",
        "item.itemid",
        "item.id",
    }


@pytest.mark.parametrize("stream", [*sorted(STREAMS), "reconciliation"])
async def test_every_polled_column_is_documented(stream: str) -> None:
    doc = _section()
    queries = await _queries(stream)
    assert queries, f"the {stream} poll ran no query"
    named = set().union(*(columns(q) for q in queries))
    missing = sorted(name for name in named if not _documented(name, doc))
    assert not missing, f"docs/flows.md ({SECTION[3:]}) does not name: {', '.join(missing)}"
    if stream in STREAMS:
        assert f"`{stream}`" in doc, f"docs/flows.md does not describe the {stream} stream"
