"""What the user-event script posts, as data: the simulator's record dicts reshaped into it,
and a check that a body has that shape.

``connectors/netsuite/user_event_script.js`` is the real thing; its output for every record
type it is deployed on is kept in ``tests/fixtures/netsuite_script`` (compared byte for byte
with what the script, run under Node, posts). ``RECORD_SHAPES`` below declares the same shape,
and a test holds both the golden files and the simulator's posts to it, so the simulator
cannot post anything the script would not.

The shape: every value is a string (numbers as decimal strings, dates as ISO), a boolean, a
``{id, refName}`` select (custom fields only) or a list of such objects; no nulls, no numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

ITEM_TYPES = frozenset(
    {
        "inventoryitem",
        "assemblyitem",
        "lotnumberedinventoryitem",
        "serializedinventoryitem",
        "lotnumberedassemblyitem",
        "serializedassemblyitem",
    }
)
# transactions whose post carries the current stock of the items they touched
STOCK_TYPES = frozenset(
    {
        "salesorder",
        "itemfulfillment",
        "itemreceipt",
        "creditmemo",
        "inventoryadjustment",
        "inventorytransfer",
        "assemblybuild",
        "assemblyunbuild",
        "transferorder",
        "cashsale",
        "purchaseorder",
    }
)
_COLUMN = re.compile(r"^[a-z0-9_]+$")
_CUSTOM = ("custitem", "custentity", "custbody", "custcol", "custrecord")
_TRAN = ("id", "tranId", "tranDate", "externalId", "memo")
# keys in the order the script writes them (so the simulator's JSON reads like the script's)
_REF = ("id", "tranId", "externalId")
_LINE = ("itemId", "quantity", "location", "amount")
_STOCK = ("itemId", "location", "quantityOnHand", "quantityCommitted", "quantityOnOrder")


@dataclass(frozen=True)
class Shape:
    """Keys a record of one type carries, in order; lists and references by their own keys."""

    keys: tuple[str, ...]
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    refs: frozenset[str] = frozenset()


def _tran(*extra: str, lists: Mapping[str, tuple[str, ...]] | None = None) -> Shape:
    refs = frozenset({"salesOrder", "returnAuthorization"} & set(extra))
    return Shape(
        (*_TRAN, *extra, *(lists or {}), "items", "stock"),
        {**(lists or {}), "items": _LINE, "stock": _STOCK},
        refs,
    )


_ITEM = Shape(
    (
        "id",
        "itemId",
        "displayName",
        "salesDescription",
        "upcCode",
        "isInactive",
        "weight",
        "weightUnit",
        "parentItemId",
        "cost",
        "priceLevels",
        "locations",
    ),
    {
        "priceLevels": ("priceLevel", "currency", "minQuantity", "price"),
        "locations": ("location", "quantityOnHand", "quantityCommitted", "quantityOnOrder"),
    },
)
_CUSTOMER = Shape(
    (
        "id",
        "entityId",
        "isPerson",
        "firstName",
        "lastName",
        "companyName",
        "email",
        "phone",
        "terms",
        "creditLimit",
        "currency",
        "category",
        "priceLevel",
        "taxable",
        "resaleNumber",
        "addresses",
    ),
    {
        "addresses": (
            "defaultBilling",
            "defaultShipping",
            "addressee",
            "attention",
            "addr1",
            "addr2",
            "city",
            "state",
            "zip",
            "country",
            "addrPhone",
        )
    },
)
_PACKAGES = {"packages": ("packageTrackingNumber", "packageWeight", "packageDescr", "carrier")}
RECORD_SHAPES: dict[str, Shape] = {
    **dict.fromkeys(ITEM_TYPES, _ITEM),
    "customer": _CUSTOMER,
    "itemfulfillment": _tran("shipStatus", "shipMethod", "salesOrder", lists=_PACKAGES),
    "creditmemo": _tran("currency", "total", "salesOrder", "returnAuthorization"),
    "returnauthorization": _tran("status", "salesOrder"),
    "salesorder": _tran("status"),
    **{kind: _tran() for kind in STOCK_TYPES - {"salesorder", "itemfulfillment", "creditmemo"}},
}


# --- reshaping the simulator's records --------------------------------------------------------


def text(value: Any) -> str | None:
    """A scalar as the script sends it: numbers as decimal strings, dates as ISO."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f") if value == value.to_integral() else str(value.normalize())
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):  # a REST reference: its id (a letter, an ISO code, an id)
        return text(value.get("id") if value.get("id") not in (None, "") else value.get("refName"))
    return str(value)


def flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.upper() in ("T", "TRUE"))


def _custom(value: Any) -> Any:
    if isinstance(value, Mapping) and value.get("id") not in (None, ""):
        return {"id": str(value["id"]), "refName": text(value.get("refName")) or str(value["id"])}
    return text(value)


def _pick(
    data: Mapping[str, Any], keys: Iterable[str], flags: Iterable[str] = (), columns: bool = False
) -> dict[str, Any]:
    flagged = set(flags)
    out: dict[str, Any] = {}
    for key in keys:
        if key in data and data[key] is not None:
            value = flag(data[key]) if key in flagged else text(data[key])
            if value is not None:
                out[key] = value
    for key, value in data.items():  # the account's own fields go as they are
        own = key.startswith(_CUSTOM) or (columns and _COLUMN.match(key) is not None)
        if own and key not in out and (shaped := _custom(value)) is not None:
            out[key] = shaped
    return out


def _lines(
    rows: Any, keys: Iterable[str], flags: Iterable[str] = (), columns: bool = False
) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        return []
    return [_pick(row, keys, flags, columns) for row in rows if isinstance(row, Mapping)]


def _own(record: Mapping[str, Any]) -> dict[str, Any]:
    """The account's custom fields (the script sends them after the standard ones)."""
    return _pick(record, ())


def _item(record: Mapping[str, Any]) -> dict[str, Any]:
    shape = RECORD_SHAPES["inventoryitem"]
    order = shape.lists["priceLevels"]
    currency = text(record.get("currency"))
    levels = _lines(record.get("priceLevels"), order)
    base = text(record.get("basePrice"))
    if base is not None and not any(lv.get("priceLevel") == "Base Price" for lv in levels):
        # the script reads the pricing matrix: the base price is the Base Price level from 0
        levels.insert(0, {"priceLevel": "Base Price", "minQuantity": "0", "price": base})
    levels = [{"currency": currency, **lv} if currency else lv for lv in levels]
    standard = {k: v for k, v in _pick(record, shape.keys[:10]).items() if k in shape.keys}
    return {
        **standard,
        "isInactive": flag(record.get("isInactive")),
        "priceLevels": [{k: lv[k] for k in order if k in lv} for lv in levels],
        "locations": _lines(record.get("locations"), shape.lists["locations"]),
        **_own(record),
    }


def _customer(record: Mapping[str, Any]) -> dict[str, Any]:
    shape = RECORD_SHAPES["customer"]
    flags = ["isPerson", "taxable"]
    standard = {k: v for k, v in _pick(record, shape.keys[:-1], flags).items() if k in shape.keys}
    addresses = _lines(
        record.get("addresses"), shape.lists["addresses"], ["defaultBilling", "defaultShipping"]
    )
    return {
        **standard,
        "isPerson": flag(record.get("isPerson")),
        "addresses": [
            {"defaultBilling": False, "defaultShipping": False, **address} for address in addresses
        ],
        **_own(record),
    }


def _transaction(kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
    shape = RECORD_SHAPES[kind]
    out: dict[str, Any] = {}
    for key in shape.keys:
        if key in shape.refs:
            value = record.get(key)
            if isinstance(value, Mapping) and (ref := _pick(value, _REF)):
                out[key] = ref
        elif key == "items":
            out.update(_own(record))  # custom body fields come before the lines
            out[key] = _lines(record.get(key), _LINE)
        elif key in shape.lists:
            if key != "stock":
                out[key] = _lines(record.get(key), shape.lists[key])
        elif (value := text(record.get(key))) is not None:
            out[key] = value
    return out


def _ordered(out: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The script's key order: its standard fields as it writes them, then custom ones."""
    return {**{k: out[k] for k in keys if k in out}, **out}


def script_record(
    record_type: str, record: Mapping[str, Any], stock: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The simulator's record dict as ``user_event_script.js`` posts it; ``stock``: the
    current rows of the items a stock-moving transaction touched."""
    kind = record_type.lower()
    if kind in ITEM_TYPES:
        out = _ordered(_item(record), RECORD_SHAPES[kind].keys[1:])
    elif kind == "customer":
        out = _ordered(_customer(record), RECORD_SHAPES[kind].keys[1:])
    elif kind in RECORD_SHAPES:
        out = _transaction(kind, record)
    else:
        out = {}
    out = {"id": str(record.get("id")), **{k: v for k, v in out.items() if k != "id"}}
    if kind in STOCK_TYPES and stock is not None:
        out["stock"] = _lines(stock, _STOCK, columns=True)
    return out


def stock_rows(
    lines: Iterable[Mapping[str, Any]],
    header_location: str | None,
    table: Mapping[str, Mapping[str, Any]],
    sku: Callable[[str], str],
) -> list[dict[str, Any]]:
    """What the script reads after a stock-moving transaction's save: the aggregateitemlocation
    rows of the items its lines name, at the locations it names (every location of them when
    a line names none and the header has none), by item then location. ``table``: item id →
    location → a row with ``on_hand``, ``committed``, ``on_order`` and ``custom`` columns."""
    items: set[str] = set()
    named: set[str] = set()
    unnamed = False
    for line in lines:
        item, where = _ref_id(line.get("item")), _ref_id(line.get("location"))
        if item:
            items.add(item)
            if where:
                named.add(where)
            else:
                unnamed = True
    if header_location:
        named.add(header_location)
    wanted = None if (unnamed and not header_location) or not named else named
    rows = []
    for item in sorted(items, key=_numeric):
        for location, row in sorted(table.get(item, {}).items(), key=lambda kv: _numeric(kv[0])):
            if wanted is None or location in wanted:
                rows.append(
                    {
                        "itemId": sku(item),
                        "location": location,
                        "quantityOnHand": row.on_hand,
                        "quantityCommitted": row.committed,
                        "quantityOnOrder": row.on_order,
                        **row.custom,
                    }
                )
    return rows


def _ref_id(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("id") not in (None, ""):
        return str(value["id"])
    return None


def _numeric(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)


# --- the check ----------------------------------------------------------------------------


def _leaf_errors(path: str, value: Any, custom: bool) -> list[str]:
    if isinstance(value, bool | str):
        return []
    if custom and isinstance(value, Mapping) and set(value) == {"id", "refName"}:
        return _leaf_errors(f"{path}.id", value["id"], False)
    return [f"{path} is {type(value).__name__} {value!r}; the script sends strings and booleans"]


def _object_errors(path: str, data: Any, keys: Iterable[str], columns: bool = False) -> list[str]:
    """``columns``: SuiteQL column ids the deployment names (custscript_gw_location_fields)
    may come along too."""
    if not isinstance(data, Mapping):
        return [f"{path} must be an object"]
    errors = []
    allowed = set(keys)
    for key, value in data.items():
        custom = key.startswith(_CUSTOM) or (columns and _COLUMN.match(key) is not None)
        if key not in allowed and not custom:
            errors.append(f"{path}.{key} is not something the script sends")
        else:
            errors += _leaf_errors(f"{path}.{key}", value, custom)
    return errors


def shape_errors(record_type: str, record: Mapping[str, Any]) -> list[str]:
    """What in ``record`` the script would never send (empty: it fits)."""
    shape = RECORD_SHAPES.get(record_type.lower())
    if shape is None:
        return [] if set(record) <= {"id"} else [f"the script sends only the id of a {record_type}"]
    refs = shape.refs
    nested = set(shape.lists) | refs
    plain = {k: v for k, v in record.items() if k not in nested}
    errors = _object_errors("record", plain, set(shape.keys) - nested)
    for name, keys in shape.lists.items():
        rows = record.get(name, [])
        if not isinstance(rows, list):
            errors.append(f"record.{name} must be a list")
            continue
        for i, row in enumerate(rows):
            errors += _object_errors(f"record.{name}[{i}]", row, keys, columns=name == "stock")
    for ref in refs & set(record):
        errors += _object_errors(f"record.{ref}", record[ref], _REF)
    return errors


__all__ = [
    "ITEM_TYPES",
    "RECORD_SHAPES",
    "STOCK_TYPES",
    "script_record",
    "shape_errors",
    "stock_rows",
]
