"""Wire format shared by the client and the simulator: exact JSON numbers and error bodies.

The standard ``json`` module can only write a Decimal by going through float, which keeps
about 16 significant digits (``Decimal("1234567890123.4567")`` leaves as ``1234567890123.4568``)
and cannot tell ``19.90`` from ``19.9``. ``dumps`` writes Decimals digit for digit as JSON
numbers, and ``loads`` reads numbers with a fraction back as Decimal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

RECORD_API = "/services/rest/record/v1"
SUITEQL_API = "/services/rest/query/v1/suiteql"
ERROR_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=error"
RECORD_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=singular-resource"
COLLECTION_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=collection"

# RFC links NetSuite puts in "type" (as seen in real responses)
_TYPE_LINKS = {
    400: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
    401: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2",
    403: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.4",
    404: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5",
    429: "https://www.rfc-editor.org/rfc/rfc6585.html#section-4",
    500: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.1",
    503: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.4",
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def decimal_text(value: Decimal) -> str:
    """A Decimal as a JSON number in plain notation, every digit kept."""
    if not value.is_finite():
        raise ValueError(f"{value} cannot be sent as a JSON number")
    return format(value, "f")


def _encode(value: Any, out: list[str], allow_float: bool) -> None:
    if isinstance(value, Decimal):
        out.append(decimal_text(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            out.append("," if i else "")
            out.append(json.dumps(key))
            out.append(":")
            _encode(item, out, allow_float)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            out.append("," if i else "")
            _encode(item, out, allow_float)
        out.append("]")
    elif isinstance(value, float) and not allow_float:
        raise TypeError("floats lose precision; pass money and quantities as Decimal")
    elif value is None or isinstance(value, str | int | bool | float):
        out.append(json.dumps(value))
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(value: Any, *, allow_float: bool = False) -> bytes:
    """Compact JSON with Decimals written exactly; floats are refused unless allowed."""
    out: list[str] = []
    _encode(value, out, allow_float)
    return "".join(out).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """JSON with fractional numbers as Decimal, so nothing read back was rounded."""
    return json.loads(data, parse_float=Decimal)


def error_body(status: int, code: str, detail: str, *, path: str | None = None) -> dict[str, Any]:
    """NetSuite's RFC 7807-like error envelope with one ``o:errorDetails`` entry."""
    item: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path:
        item["o:errorPath"] = path
    return {
        "type": _TYPE_LINKS.get(status, "https://www.rfc-editor.org/rfc/rfc9110.html"),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [item],
    }


def error_details(body: Any) -> list[dict[str, str]]:
    """The ``o:errorDetails`` entries of a response body, or [] if it is not the envelope."""
    if not isinstance(body, Mapping):
        return []
    details = body.get("o:errorDetails")
    if not isinstance(details, list):
        return []
    return [
        {str(k): str(v) for k, v in d.items() if v is not None}
        for d in details
        if isinstance(d, Mapping)
    ]
