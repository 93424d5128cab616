"""The store's values and errors: Admin API error answers, ``userErrors``, ids (above
2**53 on purpose), amounts (strings with two decimals, Decimal arithmetic), GraphQL ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

ID_BASE = 10_000_000_000_000_000
DEFAULT_LOCATION_ID = 10_000_000_000_000_001
CENT = Decimal("0.01")
FULFILLABLE = {"open", "in_progress"}
ADJUST_REASONS = {
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_canceled",
    "movement_created",
    "movement_received",
    "movement_updated",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
}
_GID = re.compile(r"^gid://shopify/(\w+)/(\d+)$")


class AdminError(Exception):
    """An Admin API error answer: status, Shopify-shaped body, extra headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def not_found() -> AdminError:
    return AdminError(404, {"errors": "Not Found"})


def invalid(field_name: str, message: str) -> AdminError:
    return AdminError(422, {"errors": {field_name: [message]}})


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def money(value: Any, field_name: str = "price") -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid(field_name, "is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise invalid(field_name, "must be greater than or equal to 0")
    return amount


def text(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def as_id(value: Any, field_name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise invalid(field_name, "is not a valid id")


def user_error(code: str, message: str, *path: str) -> dict[str, Any]:
    return {"field": list(path) or None, "message": message, "code": code}


class UserErrors(Exception):
    """A mutation answered with ``userErrors`` (HTTP 200, nothing applied)."""

    def __init__(self, *errors: dict[str, Any]) -> None:
        super().__init__("; ".join(str(e["message"]) for e in errors))
        self.errors = list(errors)


def gid_id(value: Any, kind: str, *path: str) -> int:
    match = _GID.match(value) if isinstance(value, str) else None
    if match is None or match.group(1) != kind:
        code = "INVALID_LOCATION" if kind == "Location" else "INVALID_INVENTORY_ITEM"
        raise UserErrors(user_error(code, f"{value!r} is not a {kind} id", *path))
    return int(match.group(2))


def whole(value: Any, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid(field_name, "must be a whole number")
    try:
        return int(value)
    except ValueError:
        raise invalid(field_name, "must be a whole number") from None
