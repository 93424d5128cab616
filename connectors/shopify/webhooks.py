"""A Shopify webhook → topic, dedupe key and canonical events: orders (``inbound``) and the
other topics (``records``), which build on the order module's wire helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._kit.headers import header
from connectors.shopify.inbound import (
    ORDER_TOPICS,
    TOPIC_HEADER,
    check_headers,
    check_topic_fits,
    dedupe_key,
    load_json,
    parse_order,
)
from connectors.shopify.records import record_events
from kernel.canonical.events import CanonicalEvent
from kernel.errors import PayloadError
from kernel.types import ParsedWebhook


def check_envelope(headers: Mapping[str, str]) -> str:
    """The headers Shopify always sends, sane (else a 400 that is refused, never kept: only
    the body is Shopify's to get wrong); returns the topic."""
    check_headers(headers)
    topic = (header(headers, TOPIC_HEADER) or "").strip()
    if not topic:
        raise PayloadError("missing X-Shopify-Topic header", status_code=400)
    return topic


def parse_webhook(headers: Mapping[str, str], body: bytes, source: str) -> ParsedWebhook:
    """Topic, dedupe key and canonical events of one delivery (none for untranslated topics).

    A body that fails carries the delivery's topic and dedupe key in its PayloadError, so
    the quarantined copy is found again when Shopify re-sends the same delivery.
    """
    topic = check_envelope(headers)
    key = dedupe_key(headers, body)
    try:
        return _parse_body(topic, key, headers, body, source)
    except PayloadError as exc:
        exc.topic, exc.dedupe_key = topic, key
        raise


def _parse_body(
    topic: str, key: str, headers: Mapping[str, str], body: bytes, source: str
) -> ParsedWebhook:
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise PayloadError(
            f"body must be a JSON object, not {_json_kind(payload)}", status_code=400
        )
    parsed = ParsedWebhook(topic=topic, dedupe_key=key)
    check_topic_fits(topic.lower(), payload)
    event_type = ORDER_TOPICS.get(topic.lower())
    if event_type is None:
        parsed.events.extend(record_events(topic.lower(), payload, headers, source))
        return parsed
    parsed.events.extend(order_events(event_type, payload, source))
    return parsed


def order_events(event_type: str, payload: Mapping[str, Any], source: str) -> list[CanonicalEvent]:
    """The canonical event of one order payload (a webhook's, or one read by the backfill)."""
    order = parse_order(payload, source)
    return [
        CanonicalEvent(
            type=event_type,
            entity_key=order.entity_key,
            occurred_at=order.updated_at or order.created_at,
            payload=order,
        )
    ]


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")
