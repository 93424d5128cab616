"""Tryton's JSON-RPC value encoding, as ``trytond/protocols/jsonrpc.py`` defines it.

JSON has no Decimal, date or datetime, so Tryton tags them as objects::

    {"__class__": "Decimal", "decimal": "19.99"}
    {"__class__": "date", "year": 2026, "month": 7, "day": 8}
    {"__class__": "datetime", "year": …, "hour": …, "minute": …, "second": …, "microsecond": …}

(also ``time``, ``timedelta`` as ``seconds`` and ``bytes`` as ``base64``). ``dumps`` writes
them the same way and ``loads`` reads them back; plain JSON numbers with a fraction are read
as Decimal too, so no amount or quantity passes through a Python float on our side.

Tryton keeps quantities in ``fields.Float``. A :class:`Number` is written as a bare JSON
number, digit for digit from its Decimal, for those fields: the server makes the float, not
us. Money goes as tagged Decimal into ``fields.Numeric`` columns, exactly.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Number:
    """A quantity for a Tryton Float field, sent as a plain JSON number."""

    value: Decimal

    def text(self) -> str:
        if not self.value.is_finite():
            raise ValueError(f"{self.value} cannot be sent as a number")
        return format(self.value, "f")


def _tagged(value: Any) -> dict[str, Any] | None:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be sent to Tryton")
        return {"__class__": "Decimal", "decimal": format(value, "f")}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:  # Tryton's datetimes are naive UTC
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.time):
        return {
            "__class__": "time",
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.encodebytes(bytes(value)).decode()}
    return None


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, Number):
        out.append(value.text())
    elif isinstance(value, bool) or value is None or isinstance(value, str | int):
        out.append(json.dumps(value))
    elif isinstance(value, float):
        raise TypeError("floats lose precision; pass Decimal (money) or Number (quantities)")
    elif (tagged := _tagged(value)) is not None:
        out.append(json.dumps(tagged, separators=(",", ":")))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            out.append("," if i else "")
            out.append(json.dumps(key))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple | set | frozenset):
        out.append("[")
        for i, item in enumerate(value):
            out.append("," if i else "")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def dumps(value: Any) -> bytes:
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def _decode_object(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind is None:
        return obj
    try:
        if kind == "Decimal":
            return Decimal(str(obj["decimal"]))
        if kind == "datetime":
            return dt.datetime(
                obj["year"],
                obj["month"],
                obj["day"],
                obj["hour"],
                obj["minute"],
                obj["second"],
                obj["microsecond"],
            )
        if kind == "date":
            return dt.date(obj["year"], obj["month"], obj["day"])
        if kind == "time":
            return dt.time(obj["hour"], obj["minute"], obj["second"], obj["microsecond"])
        if kind == "timedelta":
            return dt.timedelta(seconds=float(obj["seconds"]))  # a duration, not money
        if kind == "bytes":
            return base64.decodebytes(str(obj["base64"]).encode())
    except (KeyError, TypeError, ValueError, ArithmeticError):
        raise ValueError(f"Tryton sent a malformed {kind} value") from None
    return obj


def loads(data: bytes | str) -> Any:
    return json.loads(data, object_hook=_decode_object, parse_float=Decimal)


def as_utc(value: Any) -> dt.datetime | None:
    """A naive Tryton datetime (UTC by convention) as an aware one."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return None


def decimal_of(value: Any) -> Decimal | None:
    """An amount or quantity as Tryton sent it (Decimal, int, or a JSON number read as one)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):  # not produced by loads; accepted from callers' data
        return Decimal(repr(value))
    return None


__all__ = ["Number", "as_utc", "decimal_of", "dumps", "loads"]
