"""The NetSuite user-event webhook: signature check and body → canonical events.

NetSuite has no native webhooks; a SuiteScript 2.1 user-event script (``afterSubmit``, see
``user_event_script.js``) posts every change to ``POST /webhooks/{connection_id}``:

- ``X-Gateway-Timestamp``: unix seconds when the script signed the body;
- ``X-Gateway-Signature``: ``sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">``, keyed
  with the connection's credential ``webhook_secret``; a timestamp further than
  ``webhook_tolerance_seconds`` (default 300) from our clock is refused, so a captured
  request cannot be replayed later;
- body ``{"eventId", "eventType", "recordType", "id", "lastModifiedDate", "record"}``:
  ``eventId`` is unique per event (the dedupe key), ``eventType`` the user-event context
  type (create, edit, xedit, delete, ship, …), ``record`` the fields in the contract of
  ``records.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from connectors.base import ParsedWebhook, PayloadError, SignatureError
from connectors.netsuite import wire
from connectors.netsuite.records import RECORD_TYPES, Fields, MappingSettings, events_for

TIMESTAMP_HEADER = "X-Gateway-Timestamp"
SIGNATURE_HEADER = "X-Gateway-Signature"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_SECONDS = 300.0
# user-event context types that mean "it exists now, with these fields"
_NO_EVENTS = frozenset({"delete"})
_CREATED = frozenset({"create", "copy", "transform", "dropship", "specialorder"})


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever the case the caller's mapping uses."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-Gateway-Signature`` value for ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


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
    raw_ts = header(headers, TIMESTAMP_HEADER)
    given = header(headers, SIGNATURE_HEADER)
    if not raw_ts or not given:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not raw_ts.strip().isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} must be unix seconds, not {raw_ts!r}")
    ts = int(raw_ts.strip())
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_seconds:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {int(current - ts)} s away from our clock (tolerance "
            f"{int(tolerance_seconds)} s): a replay, or a clock out of sync"
        )
    if not hmac.compare_digest(sign(body, secret, ts), given.strip()):
        raise SignatureError("the signature does not match the body and timestamp")


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = wire.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}", status_code=400) from None
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object", status_code=400)
    return data


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "record"
    return f"{where}: {first.get('msg', 'invalid')}"


def parse(body: bytes, settings: MappingSettings) -> ParsedWebhook:
    """The dedupe key, topic (``recordtype.eventtype``) and canonical events of one post."""
    data = _load(body)
    top = Fields(data, "body")
    event_id = top.text("eventId", required=True)
    event_type = (top.text("eventType", required=True) or "").lower()
    record_type = (top.text("recordType", required=True) or "").lower()
    internal_id = top.text("id", required=True)
    assert event_id is not None and internal_id is not None
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
        raise PayloadError(f"{record_type} {internal_id} does not fit: {_describe(exc)}") from None
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
