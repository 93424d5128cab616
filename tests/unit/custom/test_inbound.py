"""Shop → gateway: configuration, signature, envelope and payload parsing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.custom import signing
from connectors.custom.connector import INBOUND_EVENT_TYPES, CustomConnector
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.order import Order
from kernel.canonical.returns import Refund, Return
from kernel.errors import PayloadError, SignatureError
from tests.support.connectors import connect
from tests.unit.custom.conftest import (
    OTHER_SECRET,
    SECRET,
    customer_data,
    erasure_data,
    make_config,
    order_data,
    refund_data,
    return_data,
    usd,
)

NOW = 1_800_000_000


def body_of(event_type: Any, data: Any, timestamp: Any = "2026-11-01T12:30:00Z") -> bytes:
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}).encode()


def headers_for(body: bytes, msg_id: str = "msg_abc", ts: int = NOW) -> dict[str, str]:
    return signing.sign_headers(SECRET, msg_id, body, timestamp=ts)


def parse(connector: CustomConnector, event_type: Any, data: Any, **kw: Any) -> Any:
    body = body_of(event_type, data, **kw)
    return connector.parse_webhook(headers_for(body), body)


# --- configuration ------------------------------------------------------------------------


async def test_missing_webhook_secret_fails_at_start(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match=r"webhook_secret\s+Field required"):
        connect(CustomConnector, make_config(credentials={}), http)


async def test_undecodable_secret_fails_at_start(http: httpx.AsyncClient) -> None:
    config = make_config(credentials={"webhook_secret": SECRET, "push_secret": "whsec_%%%"})
    with pytest.raises(ValueError, match=r"push_secret\s+Value error, .*base64"):
        connect(CustomConnector, config, http)


@pytest.mark.parametrize(
    "bad", [0, -5, "soon", True, float("nan"), float("inf"), "300", 0.5, 3601, None]
)
async def test_bad_tolerance_fails_at_start(http: httpx.AsyncClient, bad: Any) -> None:
    # NaN and infinity once slipped through "value <= 0" and accepted any signature's age
    with pytest.raises(ValueError, match=r"CustomOptions\ntimestamp_tolerance_seconds\n"):
        connect(CustomConnector, make_config(timestamp_tolerance_seconds=bad), http)


@pytest.mark.parametrize("good", [1, 60, 300.5, 3600])
async def test_tolerance_within_bounds_is_kept(http: httpx.AsyncClient, good: float) -> None:
    assert (
        connect(
            CustomConnector, make_config(timestamp_tolerance_seconds=good), http
        ).tolerance_seconds
        == good
    )


def test_registered_as_custom() -> None:
    from connectors.registry import connector_types

    assert connector_types()["custom"] is CustomConnector


# --- signature ----------------------------------------------------------------------------


def test_verify_uses_webhook_secret_and_tolerance(http: httpx.AsyncClient) -> None:
    connector = connect(CustomConnector, make_config(timestamp_tolerance_seconds=60), http)
    connector.clock = lambda: NOW + 61
    body = body_of("order.created", order_data())
    with pytest.raises(SignatureError, match="61 s old, over the 60 s tolerance"):
        connector.verify_signature(headers_for(body), body)
    connector.clock = lambda: NOW + 59
    connector.verify_signature(headers_for(body), body)


def test_push_secret_does_not_sign_inbound(http: httpx.AsyncClient) -> None:
    config = make_config(credentials={"webhook_secret": SECRET, "push_secret": OTHER_SECRET})
    connector = connect(CustomConnector, config, http)
    connector.clock = lambda: NOW
    body = body_of("order.created", order_data())
    forged = signing.sign_headers(OTHER_SECRET, "msg_x", body, timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        connector.verify_signature(forged, body)


def test_missing_headers_are_a_signature_error(connector: CustomConnector) -> None:
    with pytest.raises(SignatureError, match="webhook-id, webhook-timestamp, webhook-signature"):
        connector.verify_signature({}, b"{}")


# --- every inbound type -------------------------------------------------------------------

CASES = [
    ("order.created", order_data, Order, "myshop:order:1001"),
    ("order.updated", order_data, Order, "myshop:order:1001"),
    ("order.cancelled", lambda **kw: order_data(status="cancelled", **kw), Order, None),
    ("customer.upserted", customer_data, Customer, "myshop:customer:77"),
    ("customer.erase_requested", lambda **kw: erasure_data(), ErasureRequest, None),
    ("return.requested", return_data, Return, "myshop:return:R-5"),
    ("refund.created", refund_data, Refund, "myshop:refund:RF-9"),
]


def test_cases_cover_every_inbound_type() -> None:
    assert sorted(c[0] for c in CASES) == sorted(INBOUND_EVENT_TYPES)


@pytest.mark.parametrize(("event_type", "data", "model", "key"), CASES)
def test_parses_each_inbound_type_with_source_forced(
    connector: CustomConnector, event_type: str, data: Any, model: type, key: str | None
) -> None:
    payload = data()
    payload["source"] = "erp"  # a shop trying to write as another connection
    parsed = parse(connector, event_type, payload)
    assert parsed.topic == event_type
    assert parsed.dedupe_key == "msg_abc"
    [event] = parsed.events
    assert event.type == event_type
    assert isinstance(event.payload, model)
    assert event.payload.source == "myshop"
    assert event.entity_key.startswith("myshop:")
    if key:
        assert event.entity_key == key
    assert event.occurred_at.isoformat() == "2026-11-01T12:30:00+00:00"


def test_source_may_be_left_out(connector: CustomConnector) -> None:
    payload = order_data()
    del payload["source"]
    [event] = parse(connector, "order.created", payload).events
    assert event.payload.source == "myshop"


def test_amounts_stay_exact_even_as_json_numbers(connector: CustomConnector) -> None:
    body = body_of("order.created", order_data()).replace(b'"19.99"', b"19.99")
    assert b": 19.99" in body
    [event] = connector.parse_webhook(headers_for(body), body).events
    assert event.payload.lines[0].unit_price.amount == Decimal("19.99")


def test_return_order_key_from_the_shops_own_id(connector: CustomConnector) -> None:
    [event] = parse(connector, "return.requested", return_data(order_key="1001")).events
    assert event.payload.order_key == "myshop:order:1001"
    [refund] = parse(connector, "refund.created", refund_data()).events
    assert refund.payload.return_key == "myshop:return:R-5"
    assert refund.payload.order_key == "myshop:order:1001"


@pytest.mark.parametrize(
    "foreign", ["other-shop:order:1001", "erp:order:1", "myshop:return:1", "myshop:order:"]
)
def test_refund_cannot_point_at_another_connections_order(
    connector: CustomConnector, foreign: str
) -> None:
    with pytest.raises(PayloadError, match=r"data.order_key: .* not one of this shop's orders"):
        parse(connector, "refund.created", refund_data(order_key=foreign))


def test_refund_without_order_key_is_refused(connector: CustomConnector) -> None:
    with pytest.raises(PayloadError, match=r"data.order_key: must not be empty"):
        parse(connector, "refund.created", refund_data(order_key=""))


# --- errors -------------------------------------------------------------------------------


def test_unknown_type_lists_the_known_ones(connector: CustomConnector) -> None:
    with pytest.raises(PayloadError) as info:
        parse(connector, "order.exploded", order_data())
    assert info.value.status_code == 422
    assert "unknown event type 'order.exploded'" in str(info.value)
    assert "order.created" in str(info.value) and "refund.created" in str(info.value)


def test_known_type_a_shop_may_not_send(connector: CustomConnector) -> None:
    with pytest.raises(PayloadError, match=r"a shop cannot send shipment.created") as info:
        parse(connector, "shipment.created", {})
    assert info.value.status_code == 422


def test_validation_error_names_the_field_paths(connector: CustomConnector) -> None:
    payload = order_data()
    payload["lines"][0]["quantity"] = "two"
    del payload["number"]
    with pytest.raises(PayloadError) as info:
        parse(connector, "order.created", payload)
    message = str(info.value)
    assert info.value.status_code == 422
    assert message.startswith("invalid order.created payload: ")
    assert "data.number: Field required" in message
    assert "data.lines[0].quantity:" in message


def test_unexpected_field_is_named(connector: CustomConnector) -> None:
    with pytest.raises(PayloadError, match=r"data.nickname: Extra inputs are not permitted"):
        parse(connector, "customer.upserted", customer_data(nickname="ada"))


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [(None, "timestamp"), ("yesterday", "timestamp"), ("2026-11-01T12:30:00", "time zone")],
)
def test_envelope_timestamp_must_be_iso_with_offset(
    connector: CustomConnector, timestamp: Any, expected: str
) -> None:
    with pytest.raises(PayloadError, match=f"invalid envelope: .*{expected}"):
        parse(connector, "order.created", order_data(), timestamp=timestamp)


def test_data_must_be_an_object(connector: CustomConnector) -> None:
    with pytest.raises(PayloadError, match="invalid envelope: data: "):
        parse(connector, "order.created", ["not", "an", "object"])


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00", b'{"a": NaN}'])
def test_invalid_json_is_400(connector: CustomConnector, body: bytes) -> None:
    with pytest.raises(PayloadError, match="not valid JSON") as info:
        connector.parse_webhook(headers_for(body), body)
    assert info.value.status_code == 400


def test_non_object_body_is_400(connector: CustomConnector) -> None:
    body = b"[1, 2]"
    with pytest.raises(PayloadError, match="must be a JSON object") as info:
        connector.parse_webhook(headers_for(body), body)
    assert info.value.status_code == 400


# --- hostile input (found by fuzzing with validly signed bodies) ---------------------------


def line(**overrides: Any) -> dict[str, Any]:
    return {**order_data()["lines"][0], **overrides}


@pytest.mark.parametrize(
    ("data", "named"),
    [
        # an empty external_id became the NetSuite external id "portal-": every such order
        # overwrote the same sales order
        (order_data(external_id=""), "data.external_id: must not be empty"),
        (order_data(external_id="  "), "data.external_id: must not be empty"),
        (order_data(external_id="9" * 201), "data.external_id: String should have at most 200"),
        (
            order_data(lines=[line(quantity="-1000")]),
            "data.lines[0].quantity: must be between 0 and 1000000000",
        ),
        (
            order_data(lines=[line(quantity="1e30")]),
            "data.lines[0].quantity: must be between 0 and 1000000000",
        ),
        (
            order_data(lines=[line(unit_price=usd("-5"))]),
            "data.lines[0].unit_price: must not be negative",
        ),
        (
            order_data(lines=[line(unit_price={"amount": "500", "currency": "JPY"})]),
            "data.lines[0].unit_price.currency: JPY is not the order currency USD",
        ),
        (
            order_data(totals={**order_data()["totals"], "total": usd("1e30")}),
            "data.totals.total.amount: must be greater than -1000000000000 and less than",
        ),
        (order_data(note="a\u0000b"), "data.note: must not contain NUL"),
        (order_data(lines=[line(sku="")]), "data.lines[0].sku: must not be empty"),
        (order_data(exchange_rate="NaN"), "data.exchange_rate: must be a finite number"),
        (order_data(exchange_rate="0"), "data.exchange_rate: must be greater than 0"),
        (order_data(created_at="9999-12-31T23:59:59-05:00"), "data.created_at: must lie"),
    ],
)
def test_hostile_orders_are_422_naming_the_field(
    connector: CustomConnector, data: dict[str, Any], named: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(connector, "order.created", data)
    assert caught.value.status_code == 422
    assert named in str(caught.value)


def test_surrogates_in_a_string_are_422(connector: CustomConnector) -> None:
    body = body_of("order.created", order_data(note="x")).replace(
        b'"note": "x"', b'"note": "\\ud800"'
    )
    with pytest.raises(PayloadError) as caught:
        connector.parse_webhook(headers_for(body), body)
    assert caught.value.status_code == 422
    assert "data.note: " in str(caught.value)
    str(caught.value).encode("utf-8")  # the message itself is valid UTF-8


def test_order_cancelled_must_carry_a_cancelled_order(connector: CustomConnector) -> None:
    with pytest.raises(PayloadError, match=r"an order\.cancelled event carries a cancelled order"):
        parse(connector, "order.cancelled", order_data())
    [event] = parse(connector, "order.cancelled", order_data(status="cancelled")).events
    assert event.type == "order.cancelled"


def test_an_order_key_too_long_for_our_keys_is_422(connector: CustomConnector) -> None:
    with pytest.raises(PayloadError, match=r"data\.order_key: .* too long"):
        parse(connector, "return.requested", return_data(order_key="9" * 250))


def test_an_envelope_time_out_of_range_is_422(connector: CustomConnector) -> None:
    with pytest.raises(PayloadError, match="timestamp: must lie between"):
        parse(connector, "order.created", order_data(), timestamp="9999-12-31T23:59:59-05:00")


@pytest.mark.parametrize(
    ("msg_id", "message"),
    [("m" * 1025, "webhook-id header is 1025 characters"), ("msg_é", "printable ASCII")],
)
def test_hostile_message_ids_are_400(connector: CustomConnector, msg_id: str, message: str) -> None:
    body = body_of("order.created", order_data())
    with pytest.raises(PayloadError, match=message) as caught:
        connector.parse_webhook(headers_for(body, msg_id=msg_id), body)
    assert caught.value.status_code == 400


def test_deeply_nested_json_is_400_not_a_recursion_error(connector: CustomConnector) -> None:
    body = b'{"type": "order.created", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(PayloadError, match="not valid JSON") as caught:
        connector.parse_webhook(headers_for(body), body)
    assert caught.value.status_code == 400


def test_an_overlong_unknown_type_is_named_briefly(connector: CustomConnector) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(connector, "x" * 100_000, order_data())
    assert len(str(caught.value)) < 1000
