"""The NetSuite user-event webhook: signature check and body → canonical events.

NetSuite has no native webhooks; a SuiteScript 2.1 user-event script (``afterSubmit``, see
``user_event_script.js``) posts every change to ``POST /webhooks/{connection_id}``:

- ``X-Gateway-Timestamp``: unix seconds when the script signed the body;
- ``X-Gateway-Signature``: ``sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">``, keyed
  with the connection's credential ``webhook_secret``; a timestamp further than
  ``webhook_tolerance_seconds`` (default 300, 1 to 3600) from our clock is refused, so a captured
  request cannot be replayed later;
- body ``{"eventId", "eventType", "recordType", "id", "lastModifiedDate", "record"}``:
  ``eventId`` is unique per event (the dedupe key), ``eventType`` the user-event context
  type (create, edit, xedit, delete, ship, …), ``record`` the fields in the contract of
  ``records.py``.
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
from connectors.netsuite.records import RECORD_TYPES, events_for
from kernel.canonical.common import shown
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
    if record_type not in RECORD_TYPES or event_type in _NO_EVENTS:
        return ParsedWebhook(topic=topic, dedupe_key=event_id)  # stored, nothing to route
    occurred = top.moment("lastModifiedDate", settings.timezone) or datetime.now(UTC)
    record = data.get("record")
    if not isinstance(record, dict):
        raise PayloadError("body.record is required and must be an object")
    record = {**record, "id": record.get("id") or internal_id}
    try:
        events = events_for(
            record_type,
            record,
            settings,
            occurred_at=occurred,
            created=event_type in _CREATED,
        )
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
    "verify",
]
