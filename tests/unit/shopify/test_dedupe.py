"""A re-sent delivery gets the same dedupe key; different deliveries get different ones."""

from __future__ import annotations

import hashlib

from connectors.shopify.inbound import dedupe_key

BODY = b'{"id": 820982911946154508}'


def test_webhook_id_wins() -> None:
    headers = {
        "X-Shopify-Webhook-Id": "wh-1",
        "X-Shopify-Event-Id": "ev-1",
        "X-Shopify-Topic": "orders/create",
    }
    assert dedupe_key(headers, BODY) == "wh-1"


def test_header_names_are_case_insensitive() -> None:
    assert dedupe_key({"x-shopify-webhook-id": "wh-1"}, BODY) == "wh-1"
    assert dedupe_key({"X-SHOPIFY-EVENT-ID": "ev-1", "x-shopify-topic": "orders/paid"}, BODY) == (
        "event:orders/paid:ev-1"
    )


def test_event_id_is_scoped_by_topic() -> None:
    # One merchant action emits orders/updated and orders/paid with one event id: both count.
    updated = {"X-Shopify-Event-Id": "ev-1", "X-Shopify-Topic": "orders/updated"}
    paid = {"X-Shopify-Event-Id": "ev-1", "X-Shopify-Topic": "orders/paid"}
    assert dedupe_key(updated, BODY) == "event:orders/updated:ev-1"
    assert dedupe_key(updated, BODY) != dedupe_key(paid, BODY)


def test_blank_ids_fall_through() -> None:
    headers = {"X-Shopify-Webhook-Id": " ", "X-Shopify-Event-Id": "ev-9", "X-Shopify-Topic": "t"}
    assert dedupe_key(headers, BODY) == "event:t:ev-9"


def test_without_ids_the_body_hash_is_the_key() -> None:
    key = dedupe_key({"X-Shopify-Topic": "orders/create"}, BODY)
    assert key == "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert dedupe_key({}, BODY) == key  # the same body again is the same delivery
    assert dedupe_key({}, BODY + b" ") != key
