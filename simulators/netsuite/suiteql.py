"""The simulator's SuiteQL service: any query, run by SQLite over the account's tables.

Each query gets a fresh in-memory SQLite database holding the tables of ``schema.TABLES``
(plus the custom fields the simulated account has), filled from the simulator's records, so
a correct query works whatever its shape, and a query naming a table or field the account
lacks fails with NetSuite's documented 400 (``o:errorCode`` INVALID_PARAMETER,
``o:errorQueryParam`` q; the wording as NetSuite answers it, e.g. "Invalid search query.
Detailed unprocessed description follows. Search error occurred: Unknown identifier
'subsidiary'. Available identifiers are: {transaction=transaction}." — captured from a live
account in databrickslabs/lakeflow-community-connectors' NetSuite tests; "Field 'amout' for
record 'transactionLine' was not found." and "Invalid search type: …" from public client
tests).

SuiteQL is Oracle-flavoured; what SQLite lacks is supplied: ``BUILTIN.DF(col)`` (the
display value: a reference's name, e.g. a currency's name, not its ISO code),
``TO_CHAR``, ``TO_TIMESTAMP``, ``TO_DATE``, ``NVL`` and ``FETCH FIRST n ROWS ONLY``.
Like NetSuite, every value comes back as text, a column whose value is null is left out
of its row, booleans are ``T``/``F``, and a date selected without ``TO_CHAR`` comes back
in the account's display format (``M/D/YYYY``), which is why clients format dates
themselves.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from simulators.netsuite.schema import BOOL, DATE, DISPLAY_COLUMN, NUM, REF, TABLES, Column

ERROR_PREFIX = "Invalid search query. Detailed unprocessed description follows. "
DATE_MARK = "\x01"  # stored dates sort and compare as text; the mark tells them apart
_STAMP = "%Y-%m-%d %H:%M:%S"
_STRINGS = re.compile(r"('(?:[^']|'')*')")
_DF = re.compile(r"\bBUILTIN\.DF\s*\(\s*((?:\w+\.)?)(\w+)\s*\)", re.IGNORECASE)
_FETCH = re.compile(r"\bFETCH\s+(?:FIRST|NEXT)\s+(\d+)\s+ROWS?\s+ONLY\b", re.IGNORECASE)
_KEYWORD_NAMES = re.compile(r'(?<!")\btransaction\b(?!")', re.IGNORECASE)  # an SQLite keyword
_SOURCES = re.compile(
    r"\b(?:FROM|JOIN)\s+\"?(\w+)\"?(?:\s+(?:AS\s+)?(?!(?:ON|WHERE|INNER|LEFT|RIGHT|JOIN|"
    r"ORDER|GROUP|CROSS|FULL|OUTER|UNION|HAVING)\b)(\w+))?",
    re.IGNORECASE,
)
# Oracle date format elements → strftime (the ones integrations use)
_FORMAT = [
    ("YYYY", "%Y"),
    ("HH24", "%H"),
    ("MM", "%m"),
    ("DD", "%d"),
    ("MI", "%M"),
    ("SS", "%S"),
]


class QueryError(Exception):
    """A query the simulated account cannot run; ``str()`` is NetSuite's ``detail``."""


class SuiteQLData(Protocol):
    """What the engine needs from the account: its rows and custom fields."""

    def table_rows(self) -> Mapping[str, list[dict[str, Any]]]: ...
    def custom_columns(self) -> Mapping[str, Sequence[str]]: ...
    def display(self, table: str, ident: Any) -> str | None: ...


# --- values ----------------------------------------------------------------------------


def stamp(value: datetime | str | None) -> str | None:
    """A date or date-time as the engine stores it."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value if len(value) > 10 else f"{value[:10]} 00:00:00"
        value = datetime.strptime(text[:19].replace("T", " "), _STAMP)
    return DATE_MARK + value.strftime(_STAMP)


def _strftime(fmt: str) -> str:
    out = fmt
    for oracle, python in _FORMAT:
        out = out.replace(oracle, python)
    return out


def _to_char(value: Any, fmt: str | None = None) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and value.startswith(DATE_MARK):
        when = datetime.strptime(value[1:], _STAMP)
        return when.strftime(_strftime(fmt)) if fmt else _display_date(value)
    return _text(value)


def _to_timestamp(text: Any, fmt: str | None = None) -> str | None:
    if text is None:
        return None
    try:
        when = datetime.strptime(str(text), _strftime(fmt or "YYYY-MM-DD HH24:MI:SS"))
    except ValueError:
        raise ValueError(f"{text!r} does not match the format {fmt!r}") from None
    return DATE_MARK + when.strftime(_STAMP)


def _display_date(value: str) -> str:
    when = datetime.strptime(value[1:], _STAMP)
    return f"{when.month}/{when.day}/{when.year}"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)


def _stored(column: Column, value: Any) -> Any:
    if value is None or value == "":
        return None
    if column.kind == NUM or (column.kind == REF and str(value).isdigit()):
        number = Decimal(str(value))
        return int(number) if number == number.to_integral_value() else float(number)
    if column.kind == BOOL:
        if isinstance(value, str):
            return "T" if value.upper() in ("T", "TRUE") else "F"
        return "T" if value else "F"
    if column.kind == DATE:
        return stamp(value)
    return str(value)


# --- the database ------------------------------------------------------------------------


def _regexp_replace(value: Any, pattern: str, replacement: str) -> str | None:
    """Oracle's REGEXP_REPLACE (every match replaced), a function SuiteQL supports."""
    return None if value is None else re.sub(pattern, replacement, str(value))


def _quoted(name: str) -> str:
    return f'"{name}"'


def _columns(table: str, custom: Mapping[str, Sequence[str]]) -> list[Column]:
    return [*TABLES[table], *(Column(c.lower()) for c in custom.get(table, ()))]


def build(data: SuiteQLData) -> sqlite3.Connection:
    """An in-memory database with every table of the account, filled with its rows."""
    db = sqlite3.connect(":memory:")
    db.create_function("TO_CHAR", -1, _to_char, deterministic=True)
    db.create_function("TO_TIMESTAMP", -1, _to_timestamp, deterministic=True)
    db.create_function("TO_DATE", -1, _to_timestamp, deterministic=True)
    db.create_function("NVL", 2, lambda a, b: b if a is None else a, deterministic=True)
    db.create_function("REGEXP_REPLACE", 3, _regexp_replace, deterministic=True)
    custom = data.custom_columns()
    rows = data.table_rows()
    for table in TABLES:
        columns = _columns(table, custom)
        # every column has a twin "<name>__df" holding what BUILTIN.DF shows for it
        names = [n for c in columns for n in (c.name, f"{c.name}__df")]
        db.execute(f"CREATE TABLE {_quoted(table)} ({', '.join(map(_quoted, names))})")
        values = []
        for row in rows.get(table, []):
            record: list[Any] = []
            for column in columns:
                raw = row.get(column.name)
                value = _stored(column, raw)
                shown = data.display(column.refers_to, raw) if column.refers_to else value
                record += [value, shown]
            values.append(record)
        if values:
            marks = ", ".join("?" * len(names))
            db.executemany(f"INSERT INTO {_quoted(table)} VALUES ({marks})", values)
    return db


# --- running a query ---------------------------------------------------------------------


def _rewrite(q: str) -> str:
    """SuiteQL → SQLite, outside string literals only."""
    parts = _STRINGS.split(q)
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        text = _DF.sub(lambda m: f"{m[1]}{m[2]}__df", parts[i])
        text = _FETCH.sub(lambda m: f"LIMIT {m[1]}", text)
        parts[i] = _KEYWORD_NAMES.sub(lambda m: _quoted(m[0].lower()), text)
    return "".join(parts)


def _sources(q: str) -> dict[str, str]:
    """alias → table of the query's FROM and JOIN clauses (for error messages)."""
    found: dict[str, str] = {}
    for match in _SOURCES.finditer(_STRINGS.sub("''", q)):
        table = match[1].lower()
        found[(match[2] or table).lower()] = table
    return found


def _explain(exc: sqlite3.Error, q: str) -> str:
    message = str(exc)
    if match := re.match(r"no such table: (\S+)", message):
        return f"{ERROR_PREFIX}Invalid search type: {match[1].strip(chr(34))}."
    if match := re.match(r"no such column: (\S+)", message):
        name = match[1].strip('"').removesuffix("__df")
        sources = _sources(q)
        alias, dot, field = name.rpartition(".")
        if dot and alias.lower() in sources:
            return (
                f"{ERROR_PREFIX}Search error occurred: Field '{field}' for record "
                f"'{sources[alias.lower()]}' was not found."
            )
        known = ", ".join(f"{a}={t}" for a, t in sources.items())
        return (
            f"{ERROR_PREFIX}Search error occurred: Unknown identifier '{field or name}'. "
            f"Available identifiers are: {{{known}}}."
        )
    if match := re.match(r"no such function: (\w+)", message):
        return f"{ERROR_PREFIX}Search error occurred: Unknown function {match[1]}."
    return f"{ERROR_PREFIX}Search error occurred: Invalid or unsupported search."


def _row(labels: Iterable[str], values: Iterable[Any]) -> dict[str, str]:
    row: dict[str, str] = {}
    for label, value in zip(labels, values, strict=True):
        if value is None or label.endswith("__df"):
            continue
        if isinstance(value, str) and value.startswith(DATE_MARK):
            row[label] = _display_date(value)
        else:
            row[label] = _text(value)
    return row


def run(
    q: str, data: SuiteQLData, database: Callable[[], sqlite3.Connection] | None = None
) -> list[dict[str, str]]:
    """Every row of ``q`` (before paging); QueryError with NetSuite's wording otherwise.

    ``database`` gives tables built earlier (``build``) and kept for the next query; without
    it they are built for this query alone.
    """
    text = q.strip().rstrip(";")
    if not re.match(r"(?is)^\s*(SELECT|WITH)\b", text):
        raise QueryError(f"{ERROR_PREFIX}Search error occurred: Invalid or unsupported search.")
    db = build(data) if database is None else database()
    try:
        cursor = db.execute(_rewrite(text))
        labels = [d[0].lower() for d in cursor.description or ()]
        return [_row(labels, values) for values in cursor.fetchall()]
    except sqlite3.Error as exc:  # OperationalError, ProgrammingError (two statements)…
        raise QueryError(_explain(exc, text)) from None
    finally:
        if database is None:
            db.close()


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


def display_names(rows: Mapping[str, list[dict[str, Any]]], table: str) -> dict[str, str | None]:
    """What BUILTIN.DF shows for each row of ``table`` (its name, item id, entity id), by the
    row's id; the first row with an id wins."""
    column = DISPLAY_COLUMN.get(table, "name")
    names: dict[str, str | None] = {}
    for row in rows.get(table, []):
        value = row.get(column)
        names.setdefault(str(row.get("id")), None if value is None else str(value))
    return names


__all__ = ["DATE_MARK", "QueryError", "SuiteQLData", "build", "page", "run", "stamp"]
