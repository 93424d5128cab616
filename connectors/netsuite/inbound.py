"""The NetSuite user-event webhook: signature check and body → canonical events.

NetSuite has no native webhooks; a SuiteScript 2.1 user-event script (``afterSubmit``, see
``user_event_script.js``, which names the record types to deploy it on) posts every change to
``POST /webhooks/{connection_id}``:

- ``X-Gateway-Timestamp``: unix seconds when the script signed the body;
- ``X-Gateway-Signature``: ``sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">``, keyed
  with the connection's credential ``webhook_secret``; a timestamp further than
  ``webhook_tolerance_seconds`` (default 300, 1 to 3600) from our clock is refused, so a captured
  request cannot be replayed later;
- body ``{"eventId", "eventType", "recordType", "id", "lastModifiedDate", "record"}``:
  ``eventId`` is unique per event (the dedupe key), ``eventType`` the user-event context
  type (create, edit, xedit, delete, ship, approve, …), ``recordType`` NetSuite's record type,
  ``lastModifiedDate`` the ISO instant the script read the record (the events' time),
  ``record`` the fields in the contract of ``records.py``: camelCase keys, numbers as decimal
  strings, dates as ISO dates (``"2026-11-02"``, a day in the account's time zone) or instants,
  currencies as ISO codes, items by ``itemId`` (the SKU), locations by internal id, selects as
  ``{id, refName}``.

What each record type becomes:

- ``inventoryitem``, ``assemblyitem`` (and their lot-numbered/serialized kinds): product, price
  (the price levels in the connection's ``base_currency``; each level carries its ``currency``)
  and one stock level per location;
- ``customer``, ``itemfulfillment``, ``creditmemo``, ``returnauthorization``: as ``records.py``
  says; a fulfilment, credit memo or return with no ``salesOrder`` behind it (a transfer order's
  fulfilment, a credit memo on account) concerns no store order: only its stock is used;
- any record carrying ``stock`` (the script sends it for sales orders, fulfilments, receipts,
  adjustments, transfers, assembly builds and credit memos, also when one is deleted):
  ``[{itemId, location, quantityOnHand, quantityCommitted, quantityOnOrder, <custom columns>}]``,
  the quantities the script read after the save, one ``inventory.level_changed`` per row;
- other types and deletes: stored, no events. Golden examples of every type the script posts:
  ``tests/fixtures/netsuite_script/``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from connectors._kit import signatures
from connectors._kit.headers import header
from connectors.netsuite import wire
from connectors.netsuite.fields import Fields, MappingSettings
from connectors.netsuite.records import (
    CREDIT_MEMO,
    INVENTORY_ITEM,
    ITEM_FULFILLMENT,
    RECORD_TYPES,
    RETURN_AUTHORIZATION,
    events_for,
    levels_of,
)
from kernel.canonical.common import shown
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.validation import describe_errors, safe_text
from kernel.errors import PayloadError
from kernel.types import ParsedWebhook

TIMESTAMP_HEADER = "X-Gateway-Timestamp"
SIGNATURE_HEADER = "X-Gateway-Signature"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_SECONDS = 300.0
MIN_TOLERANCE_SECONDS = 1.0
MAX_TOLERANCE_SECONDS = 3600.0
# the topic "<recordType>.<eventType>" goes into a varchar(128) column; eventId is the dedupe
# key (ingest stores one over 256 characters as its hash)
MAX_NAME_LENGTH = 60
MAX_EVENT_ID_LENGTH = 1024
# user-event context types that mean "it exists now, with these fields"
_NO_EVENTS = frozenset({"delete"})
_CREATED = frozenset({"create", "copy", "transform", "dropship", "specialorder"})
# item records the script posts in the inventory item's shape
ITEM_TYPES = frozenset(
    {
        INVENTORY_ITEM,
        "assemblyitem",
        "lotnumberedinventoryitem",
        "serializedinventoryitem",
        "lotnumberedassemblyitem",
        "serializedassemblyitem",
    }
)
# documents about a customer's order; without one there is nothing for a store to do
ORDER_DOCUMENTS = frozenset({ITEM_FULFILLMENT, CREDIT_MEMO, RETURN_AUTHORIZATION})


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-Gateway-Signature`` value for ``body`` sent at ``timestamp``."""
    return SIGNATURE_PREFIX + signatures.compute(secret, f"{timestamp}.".encode() + body)


def signed_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Both headers the script sends; what the simulator and tests use to post."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(body, secret, ts),
        "Content-Type": "application/json",
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the body is signed with ``secret`` recently enough."""
    found = signatures.require(
        {
            TIMESTAMP_HEADER: header(headers, TIMESTAMP_HEADER),
            SIGNATURE_HEADER: header(headers, SIGNATURE_HEADER),
        },
        scheme="NetSuite user-event script",
    )
    ts = signatures.check_timestamp(
        found[TIMESTAMP_HEADER],
        header=TIMESTAMP_HEADER,
        tolerance_seconds=tolerance_seconds,
        now=now,
    )
    signatures.verify_hmac(
        secret,
        f"{ts}.".encode() + body,
        found[SIGNATURE_HEADER],
        header=SIGNATURE_HEADER,
        prefix=SIGNATURE_PREFIX,
        signed="the body and timestamp",
    )


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = wire.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadError(
            f"body is not valid JSON: {safe_text(str(exc), 200)}", status_code=400
        ) from None
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object", status_code=400)
    return data


def _name(top: Fields, key: str, limit: int) -> str:
    """A required header-like field of the body: printable ASCII of at most ``limit``."""
    value = top.text(key, required=True) or ""
    if len(value) > limit:
        raise PayloadError(f"body.{key} is {len(value)} characters long, over the {limit} allowed")
    if not (value.isascii() and value.isprintable()) or not value.strip():
        raise PayloadError(f"body.{key} must be printable ASCII, not {shown(value)}")
    return value


class _StockRow(Fields):
    """One row of ``record.stock`` read as an item stocked at that one location, so the
    inventory mapping of ``records.py`` applies and complaints name ``record.stock[i]``."""

    def items(self, key: str) -> list[Fields]:
        return [Fields(self.data, self.path)] if key == "locations" else super().items(key)


def stock_events(
    record: Mapping[str, Any], settings: MappingSettings, when: datetime
) -> list[CanonicalEvent]:
    """``inventory.level_changed`` for each row of ``record.stock`` (none without it)."""
    rows = Fields(record, "record").items("stock")
    levels = [
        level for row in rows for level in levels_of(_StockRow(row.data, row.path), settings, when)
    ]
    return [make_event("inventory.level_changed", level, when) for level in levels]


def _in_base_currency(record: dict[str, Any], settings: MappingSettings) -> dict[str, Any]:
    """Keep the price levels in the connection's base currency (as the SuiteQL poll does)."""
    levels = record.get("priceLevels")
    if not isinstance(levels, list):
        return record
    base = settings.base_currency
    kept = [
        level
        for level in levels
        if not isinstance(level, dict) or str(level.get("currency") or base).upper() == base
    ]
    return {**record, "priceLevels": kept, "currency": record.get("currency") or base}


def _record_events(
    record_type: str,
    event_type: str,
    record: dict[str, Any],
    settings: MappingSettings,
    occurred: datetime,
) -> list[CanonicalEvent]:
    kind = INVENTORY_ITEM if record_type in ITEM_TYPES else record_type
    if kind not in RECORD_TYPES or event_type in _NO_EVENTS:
        return []
    if kind in ORDER_DOCUMENTS and record.get("salesOrder") is None:
        return []
    if kind == INVENTORY_ITEM:
        record = _in_base_currency(record, settings)
    return events_for(kind, record, settings, occurred_at=occurred, created=event_type in _CREATED)


def parse(body: bytes, settings: MappingSettings) -> ParsedWebhook:
    """The dedupe key, topic (``recordtype.eventtype``) and canonical events of one post."""
    data = _load(body)
    top = Fields(data, "body")
    event_id = _name(top, "eventId", MAX_EVENT_ID_LENGTH)
    event_type = _name(top, "eventType", MAX_NAME_LENGTH).lower()
    record_type = _name(top, "recordType", MAX_NAME_LENGTH).lower()
    internal_id = top.text("id", required=True)
    assert internal_id is not None
    topic = f"{record_type}.{event_type}"
    record = data.get("record")
    if not isinstance(record, dict):
        known = record_type in RECORD_TYPES or record_type in ITEM_TYPES
        if not known or event_type in _NO_EVENTS:
            return ParsedWebhook(topic=topic, dedupe_key=event_id)  # stored, nothing to route
        raise PayloadError("body.record is required and must be an object")
    occurred = top.moment("lastModifiedDate", settings.timezone) or datetime.now(UTC)
    record = {**record, "id": record.get("id") or internal_id}
    try:
        events = _record_events(record_type, event_type, record, settings, occurred)
        events += stock_events(record, settings, occurred)
    except ValidationError as exc:
        raise PayloadError(
            f"{record_type} {safe_text(internal_id, 60)} does not fit: {describe_errors(exc)}"
        ) from None
    return ParsedWebhook(topic=topic, dedupe_key=event_id, events=events)


__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "header",
    "parse",
    "sign",
    "signed_headers",
    "stock_events",
    "verify",
]
