"""A delivery becomes canonical events, or a 400/422 that says what was wrong."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.webhooks import parse_webhook
from kernel.errors import PayloadError
from simulators.shopify.samples import make_order
from tests.unit.shopify.conftest import SOURCE, fixture_bytes, fixture_order, headers_for


def payload_error(headers: dict[str, str], body: bytes) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse_webhook(headers, body, SOURCE)
    return caught.value


@pytest.mark.parametrize(
    ("topic", "event_type"),
    [
        ("orders/create", "order.created"),
        ("orders/updated", "order.updated"),
        ("orders/cancelled", "order.cancelled"),
    ],
)
def test_order_topics_become_one_event(topic: str, event_type: str) -> None:
    body = fixture_bytes()
    parsed = parse_webhook(headers_for(body, topic), body, SOURCE)
    assert parsed.topic == topic
    assert parsed.dedupe_key == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    (event,) = parsed.events
    assert event.type == event_type
    assert event.entity_key == "shop-eu:order:820982911946154508"
    assert event.entity_key == event.payload.entity_key
    assert event.flow == "orders"
    assert str(event.payload.totals.total.amount) == json.loads(body)["total_price"] == "359.97"


def test_occurred_at_is_updated_at_else_created_at() -> None:
    order = make_order(1, cancelled=True)
    body = json.dumps(order).encode()
    (event,) = parse_webhook(headers_for(body, "orders/cancelled"), body, SOURCE).events
    assert event.occurred_at == datetime.fromisoformat(order["updated_at"])
    assert event.occurred_at > datetime.fromisoformat(order["created_at"])
    del order["updated_at"]
    body = json.dumps(order).encode()
    (event,) = parse_webhook(headers_for(body), body, SOURCE).events
    assert event.occurred_at == datetime.fromisoformat(order["created_at"])


def test_cancelled_webhook_carries_a_cancelled_order() -> None:
    body = json.dumps(make_order(7, cancelled=True)).encode()
    (event,) = parse_webhook(headers_for(body, "orders/cancelled"), body, SOURCE).events
    assert event.payload.status == "cancelled"
    assert event.payload.cancel_reason == "customer"
    assert event.payload.financial_status == "voided"


def test_event_payload_json_keeps_money_as_strings() -> None:
    body = fixture_bytes()
    (event,) = parse_webhook(headers_for(body), body, SOURCE).events
    data = event.payload_json()
    assert data["totals"]["total"] == {"amount": "359.97", "currency": "USD"}
    assert data["lines"][0]["unit_price"] == {"amount": "89.99", "currency": "USD"}
    assert data["external_id"] == "820982911946154508"


@pytest.mark.parametrize(
    "topic", ["orders/paid", "orders/fulfilled", "customers/delete", "shop/redact", "app/x"]
)
def test_other_topics_are_acknowledged_without_events(topic: str) -> None:
    body = b'{"shop_id": 954889, "shop_domain": "x.myshopify.com"}'
    parsed = parse_webhook(headers_for(body, topic), body, SOURCE)
    assert parsed.topic == topic
    assert parsed.events == []
    assert parsed.dedupe_key == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def test_topic_header_is_case_insensitive_and_value_trimmed() -> None:
    body = fixture_bytes()
    parsed = parse_webhook({"x-shopify-topic": " Orders/Create "}, body, SOURCE)
    assert [e.type for e in parsed.events] == ["order.created"]


@pytest.mark.parametrize("topic", [None, "", "  "])
def test_missing_topic_is_400(topic: str | None) -> None:
    headers = {} if topic is None else {"X-Shopify-Topic": topic}
    error = payload_error(headers, fixture_bytes())
    assert error.status_code == 400
    assert "X-Shopify-Topic" in str(error)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"{'id': 1}", b'{"id": 1,}', b"\xff\xfe\x00garbage", b'{"a": NaN}', b"[" * 100_000],
)
def test_malformed_json_is_400(body: bytes) -> None:
    error = payload_error(headers_for(body), body)
    assert error.status_code == 400
    assert str(error).startswith("body is not valid JSON: ")


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"[]", "an array"), (b'"order"', "a string"), (b"42", "a number"), (b"null", "null")],
)
def test_json_that_is_not_an_object_is_400(body: bytes, kind: str) -> None:
    error = payload_error(headers_for(body), body)
    assert error.status_code == 400
    assert str(error) == f"body must be a JSON object, not {kind}"


def test_missing_line_items_is_422_naming_the_field() -> None:
    order = fixture_order()
    del order["line_items"]
    body = json.dumps(order).encode()
    error = payload_error(headers_for(body), body)
    assert error.status_code == 422
    assert str(error) == "invalid Shopify order: line_items: Field required"


def test_unknown_topic_with_any_object_body_is_fine() -> None:
    body = b"{}"
    assert parse_webhook(headers_for(body, "products/update"), body, SOURCE).events == []


def test_connector_parses_with_its_connection_id(connector: ShopifyConnector) -> None:
    body = fixture_bytes()
    parsed = connector.parse_webhook(headers_for(body), body)
    assert parsed.events[0].payload.source == SOURCE
    assert parsed.events[0].entity_key.startswith(f"{SOURCE}:order:")


def test_connector_declares_its_type_and_flows() -> None:
    assert ShopifyConnector.type_name == "shopify"
    assert ShopifyConnector.inbound_flows == frozenset({"orders", "customers", "returns"})
    assert ShopifyConnector.outbound_flows == frozenset(
        {"inventory", "products", "shipments", "returns", "customers"}
    )


def test_registry_builds_the_shopify_connector() -> None:
    from connectors.registry import connector_types

    assert connector_types()["shopify"] is ShopifyConnector


# --- hostile headers and bodies that contradict their topic --------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X-Shopify-Topic", "orders/" + "x" * 122, "X-Shopify-Topic header is 129 characters"),
        ("X-Shopify-Topic", "orders/créate", "X-Shopify-Topic header must be printable ASCII"),
        ("X-Shopify-Topic", "orders/create\x7f", "X-Shopify-Topic header must be printable"),
        ("X-Shopify-Webhook-Id", "w" * 1025, "X-Shopify-Webhook-Id header is 1025 characters"),
        ("X-Shopify-Webhook-Id", "wébhook", "X-Shopify-Webhook-Id header must be printable"),
        ("X-Shopify-Event-Id", "e" * 1025, "X-Shopify-Event-Id header is 1025 characters"),
        ("X-Shopify-Shop-Domain", "s" * 256, "X-Shopify-Shop-Domain header is 256 characters"),
        ("X-Shopify-Shop-Domain", "shöp.myshopify.com", "X-Shopify-Shop-Domain header must be"),
    ],
)
def test_hostile_header_values_are_400(name: str, value: str, message: str) -> None:
    body = fixture_bytes()
    headers = {**headers_for(body), name: value}
    error = payload_error(headers, body)
    assert error.status_code == 400
    assert str(error).startswith(message)


def test_a_128_character_topic_is_still_a_topic() -> None:
    topic = "app/" + "x" * 124
    body = b"{}"
    assert parse_webhook(headers_for(body, topic), body, SOURCE).topic == topic


def test_orders_cancelled_without_cancelled_at_is_422() -> None:
    order = fixture_order()  # Shopify's sample is a cancelled order: make it an open one
    order["cancelled_at"] = None
    body = json.dumps(order).encode()
    error = payload_error(headers_for(body, "orders/cancelled"), body)
    assert error.status_code == 422
    assert str(error).startswith("cancelled_at: an orders/cancelled webhook must carry")


@pytest.mark.parametrize("topic", ["orders/create", "orders/updated"])
def test_create_or_update_of_a_cancelled_order_is_fine(topic: str) -> None:
    body = json.dumps(make_order(7, cancelled=True)).encode()
    (event,) = parse_webhook(headers_for(body, topic), body, SOURCE).events
    assert event.payload.status == "cancelled"


def test_an_order_under_a_customer_topic_is_422() -> None:
    body = fixture_bytes()
    error = payload_error(headers_for(body, "customers/create"), body)
    assert error.status_code == 422
    assert str(error) == "line_items: a customers/create webhook carries a customer, not an order"


def test_refund_without_refund_fields_is_422() -> None:
    body = json.dumps({"id": 1, "order_id": 2, "created_at": "2025-03-01T10:00:00-05:00"}).encode()
    error = payload_error(headers_for(body, "refunds/create"), body)
    assert error.status_code == 422
    assert "refunds/create webhook carries refund_line_items or transactions" in str(error)
