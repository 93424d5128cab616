"""Reading NetSuite records: the account's custom field names, the settings the mapping
needs (who we are, the account's time zone and currency), and ``Fields``, a record dict that
names the field in every complaint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.netsuite.queries import STOCK_TRANSACTION_TYPES
from kernel.canonical.common import (
    AMOUNT_RULE,
    DecimalRule,
    check_decimal,
    check_text,
    shown,
)
from kernel.errors import PayloadError


@dataclass(frozen=True)
class FieldNames:
    """Custom field ids the account uses; ``None`` switches one off (not read, not queried).

    A record posted by the user-event script is read under these ids (a missing field is
    simply absent). SuiteQL only ever queries the ones ``options.custom_fields`` names
    (``queried``): a standard account has none of them, and NetSuite refuses a whole query
    that names a field the account lacks.
    """

    sale_price: str | None = "custitem_gw_sale_price"
    sale_start: str | None = "custitem_gw_sale_start"
    sale_end: str | None = "custitem_gw_sale_end"
    map_price: str | None = "custitem_gw_map_price"
    reserved: str | None = "custrecord_gw_qty_reserved"
    damaged: str | None = "custrecord_gw_qty_damaged"
    quarantined: str | None = "custrecord_gw_qty_quarantined"
    expected_date: str | None = "custrecord_gw_expected_date"
    return_reason: str | None = "custcol_gw_return_reason"
    disposition: str | None = "custcol_gw_disposition"
    # the keys options.custom_fields named: only these are queried with SuiteQL
    configured: frozenset[str] = frozenset()

    def queried(self, key: str) -> str | None:
        """The field id to put in a SuiteQL query for ``key``, or None (not configured)."""
        return getattr(self, key) if key in self.configured else None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> FieldNames:
        """From ``options.custom_fields``; unknown names are an error, not a silent default."""
        if not values:
            return cls()
        known = set(cls.__dataclass_fields__) - {"configured"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"options.custom_fields has unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        named = {k: (str(v) if v else None) for k, v in values.items()}
        return cls(**named, configured=frozenset(k for k, v in named.items() if v))


@dataclass(frozen=True)
class MappingSettings:
    """What the mapping needs besides the record: who we are and how the account is set."""

    connection_id: str
    base_currency: str = "USD"
    timezone: tzinfo = UTC
    fields: FieldNames = FieldNames()
    # connection ids that put their orders into NetSuite as "<source>-<id>" external ids;
    # empty: split such an id at its last "-"
    sources: tuple[str, ...] = ()
    # the lowest item fulfillment status the store hears of (packed or shipped)
    fulfillment_status: str = "shipped"
    stock_types: tuple[str, ...] = STOCK_TRANSACTION_TYPES

    @classmethod
    def from_options(cls, connection_id: str, options: Mapping[str, Any]) -> MappingSettings:
        name = str(options.get("timezone") or "UTC")
        try:
            zone: tzinfo = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"connection {connection_id!r}: options.timezone {name!r} is not an IANA zone"
            ) from None
        return cls(
            connection_id=connection_id,
            base_currency=str(options.get("base_currency") or "USD").upper(),
            timezone=zone,
            fields=FieldNames.from_mapping(options.get("custom_fields")),
            sources=tuple(str(s) for s in options.get("order_sources") or ()),
            fulfillment_status=str(options.get("fulfillment_status") or "shipped"),
            stock_types=tuple(options.get("stock_transaction_types") or STOCK_TRANSACTION_TYPES),
        )


# --- reading fields, with errors that name the field ---------------------------------------


class Fields:
    """A record dict plus its path, so every complaint says which field was wrong."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise PayloadError(f"{path} must be an object")
        self.data = data
        self.path = path

    def raw(self, key: str | None) -> Any:
        """The value of ``key``; the field id in lower case (what SuiteScript and SuiteQL
        call it: ``itemid`` for ``itemId``) is accepted too."""
        if key is None:
            return None
        value = self.data.get(key)
        return self.data.get(key.lower()) if value is None else value

    def text(self, key: str | None, *, required: bool = False) -> str | None:
        value = self.raw(key)
        if isinstance(value, Mapping):  # a reference {id, refName}: the name reads best
            value = value.get("refName") or value.get("id")
        if value is None or value == "":
            if required:
                raise PayloadError(f"{self.path}.{key} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise PayloadError(f"{self.path}.{key} must be text, not {type(value).__name__}")
        text = str(value)
        try:
            return check_text(text)
        except ValueError as exc:
            raise PayloadError(f"{self.path}.{key}: {exc}") from None

    def ref_id(self, key: str) -> str | None:
        value = self.raw(key)
        if isinstance(value, Mapping):
            value = value.get("id")
        if value in (None, ""):
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise PayloadError(f"{self.path}.{key} must be an id, not {type(value).__name__}")
        try:
            return check_text(str(value))
        except ValueError as exc:
            raise PayloadError(f"{self.path}.{key}: {exc}") from None

    def decimal(
        self, key: str | None, *, required: bool = False, rule: DecimalRule = AMOUNT_RULE
    ) -> Decimal | None:
        """A number within ``rule`` (by default an amount: |x| < 10^12, at most 6 places)."""
        value = self.raw(key)
        if value is None or value == "":
            if required:
                raise PayloadError(f"{self.path}.{key} is required")
            return None
        if isinstance(value, bool | float):
            # a float has already lost digits; the script must send numbers as strings/JSON
            raise PayloadError(f"{self.path}.{key} must be a number, not {shown(value)}")
        if not isinstance(value, str | int | Decimal):
            raise PayloadError(f"{self.path}.{key} must be a number, not {type(value).__name__}")
        try:
            return check_decimal(value, rule)
        except ValueError as exc:
            raise PayloadError(f"{self.path}.{key}: {exc}") from None

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.raw(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.upper() in ("T", "TRUE", "F", "FALSE"):
            return value.upper() in ("T", "TRUE")
        raise PayloadError(f"{self.path}.{key} must be true/false or T/F, not {value!r}")

    def day(self, key: str | None) -> date | None:
        text = self.text(key)
        if text is None:
            return None
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise PayloadError(f"{self.path}.{key}: {shown(text)} is not an ISO date") from None

    def moment(self, key: str | None, zone: tzinfo) -> datetime | None:
        text = self.text(key)
        if text is None:
            return None
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError(
                f"{self.path}.{key}: {shown(text)} is not an ISO date-time"
            ) from None
        return when if when.tzinfo else when.replace(tzinfo=zone)

    def items(self, key: str) -> list[Fields]:
        value = self.raw(key)
        if value is None:
            return []
        if isinstance(value, Mapping) and isinstance(value.get("items"), list):
            value = value["items"]  # the REST sublist shape is accepted too
        if not isinstance(value, list):
            raise PayloadError(f"{self.path}.{key} must be a list")
        return [Fields(v, f"{self.path}.{key}[{i}]") for i, v in enumerate(value)]

    def sub(self, key: str) -> Fields | None:
        value = self.raw(key)
        return None if value is None else Fields(value, f"{self.path}.{key}")
