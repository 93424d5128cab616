"""Gateway → shop with httpx_mock: envelope, signature, ids, error mapping, stock reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest
from pytest_httpx import HTTPXMock

from app.config import DeliveryPolicy
from connectors._kit.retry_after import retry_after_seconds
from connectors.custom import signing
from connectors.custom.connector import CustomConnector, delivery_id
from kernel.canonical.events import make_event
from kernel.errors import PermanentError, RateLimitedError, TransientError
from kernel.types import DeliveryContext, RemoteLink
from tests.support.connectors import connect
from tests.unit.custom.conftest import (
    OTHER_SECRET,
    PUSH_URL,
    SECRET,
    STOCK_URL,
    WHEN,
    availability_event,
    make_config,
    order_data,
    shipment_event,
)
from tests.unit.custom.test_inbound import parse

NOW = 1_800_000_000


@pytest.fixture
def connector(http: httpx.AsyncClient) -> CustomConnector:
    c = connect(CustomConnector, make_config(), http)
    c.clock = lambda: NOW
    return c


async def test_posts_a_signed_envelope_with_directives(
    connector: CustomConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=PUSH_URL, json={"id": "S-1"})
    event = shipment_event()
    result = await connector.deliver(event, DeliveryContext(directives={"notify_customer": True}))

    request = httpx_mock.get_request()
    assert request is not None
    envelope = json.loads(request.content)
    assert envelope == {
        "type": "shipment.created",
        "timestamp": "2026-11-01T12:30:00+00:00",
        "data": event.payload_json(),
        "directives": {"notify_customer": True},
    }
    assert envelope["data"]["packages"][0]["lines"][0]["quantity"] == "2"  # Decimal as text
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-timestamp"] == str(NOW)
    assert request.headers["webhook-id"] == delivery_id(event)
    assert request.headers["webhook-id"].startswith("msg_")
    # the shop verifies with the same secret and gets the id back
    msg_id = signing.verify(SECRET, request.headers, request.content, now=NOW)
    assert msg_id == delivery_id(event)
    assert result.links == [RemoteLink("shipment", "erp:shipment:IF-7", "S-1")]
    assert "shop accepted shipment.created" in result.summary and "S-1" in result.summary


async def test_no_directives_no_key(connector: CustomConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=PUSH_URL, status_code=204)
    result = await connector.deliver(shipment_event(), DeliveryContext())
    request = httpx_mock.get_request()
    assert request is not None
    assert "directives" not in json.loads(request.content)
    assert result.links == []  # no JSON id, nothing to link


async def test_push_secret_and_push_url_options(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    config = make_config(
        credentials={"webhook_secret": SECRET, "push_secret": OTHER_SECRET},
        push_url="https://hooks.example.com/in",
    )
    connector = connect(CustomConnector, config, http)
    httpx_mock.add_response(method="POST", url="https://hooks.example.com/in", json={"id": 5})
    result = await connector.deliver(shipment_event(), DeliveryContext())
    request = httpx_mock.get_request()
    assert request is not None
    signing.verify(OTHER_SECRET, request.headers, request.content)
    assert result.links[0].remote_id == "5"


async def test_retry_carries_the_same_id_and_a_fresh_timestamp(
    connector: CustomConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=PUSH_URL, status_code=503)
    httpx_mock.add_response(method="POST", url=PUSH_URL, json={"id": "S-1"})
    event = shipment_event()
    with pytest.raises(TransientError):
        await connector.deliver(event, DeliveryContext())
    connector.clock = lambda: NOW + 600  # the retry comes ten minutes later
    await connector.deliver(event, DeliveryContext())
    first, second = httpx_mock.get_requests()
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.content == second.content
    assert second.headers["webhook-timestamp"] == str(NOW + 600)
    signing.verify(SECRET, second.headers, second.content, now=NOW + 600)


def test_delivery_id_is_deterministic_and_tracks_the_content() -> None:
    event = shipment_event()
    assert delivery_id(event) == delivery_id(shipment_event())
    assert delivery_id(event) != delivery_id(shipment_event(status="delivered"))
    later = make_event(event.type, event.payload, WHEN + timedelta(seconds=1))
    assert delivery_id(event) != delivery_id(later)


async def test_409_is_delivered(connector: CustomConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=PUSH_URL, status_code=409, json={"id": "S-1"})
    result = await connector.deliver(shipment_event(), DeliveryContext())
    assert "409 duplicate" in result.summary
    assert result.links[0].remote_id == "S-1"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "7"}, 7.0), ({}, 1.0), ({"Retry-After": "garbage"}, 1.0)],
)
async def test_429_is_rate_limited(
    connector: CustomConnector, httpx_mock: HTTPXMock, headers: dict[str, str], expected: float
) -> None:
    httpx_mock.add_response(method="POST", url=PUSH_URL, status_code=429, headers=headers)
    with pytest.raises(RateLimitedError) as info:
        await connector.deliver(shipment_event(), DeliveryContext())
    assert info.value.retry_after == expected


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now)
    assert retry_after_seconds(
        format_datetime(now + timedelta(seconds=30), usegmt=True), now=now
    ) == pytest.approx(30)
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), now=now) == 0


@pytest.mark.parametrize("status", [408, 500, 502, 503])
async def test_408_and_5xx_are_transient(
    connector: CustomConnector, httpx_mock: HTTPXMock, status: int
) -> None:
    httpx_mock.add_response(method="POST", url=PUSH_URL, status_code=status, text="boom")
    with pytest.raises(TransientError, match=f"HTTP {status}: boom"):
        await connector.deliver(shipment_event(), DeliveryContext())


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.RemoteProtocolError("x")],
)
async def test_network_failures_are_transient(
    connector: CustomConnector, httpx_mock: HTTPXMock, exc: Exception
) -> None:
    httpx_mock.add_exception(exc, method="POST", url=PUSH_URL)
    with pytest.raises(TransientError, match="shop"):
        await connector.deliver(shipment_event(), DeliveryContext())


async def test_other_4xx_is_permanent_with_the_shops_text(
    connector: CustomConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        method="POST", url=PUSH_URL, status_code=422, json={"error": "unknown order #1001"}
    )
    with pytest.raises(PermanentError, match="HTTP 422: unknown order #1001") as info:
        await connector.deliver(shipment_event(), DeliveryContext())
    assert info.value.detail["status"] == 422


async def test_401_tells_which_secret_to_fix(
    connector: CustomConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=PUSH_URL, status_code=401, text="bad sig")
    with pytest.raises(PermanentError, match="push_secret"):
        await connector.deliver(shipment_event(), DeliveryContext())


async def test_refuses_flows_it_does_not_take(connector: CustomConnector) -> None:
    [order] = parse(connector, "order.created", order_data()).events
    with pytest.raises(PermanentError, match=r"does not take order\.created"):
        await connector.deliver(order, DeliveryContext())


async def test_uses_the_connection_timeout(http: httpx.AsyncClient, httpx_mock: HTTPXMock) -> None:
    config = make_config().model_copy(
        update={"delivery": DeliveryPolicy(request_timeout_seconds=3)}
    )
    connector = connect(CustomConnector, config, http)
    httpx_mock.add_response(method="POST", url=PUSH_URL)
    await connector.deliver(availability_event("4", WHEN), DeliveryContext())
    request = httpx_mock.get_request()
    assert request is not None
    assert request.extensions["timeout"]["read"] == 3


# --- stock --------------------------------------------------------------------------------


async def test_fetch_availability(connector: CustomConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{STOCK_URL}?sku=A&sku=B",
        json={
            "items": [
                {"sku": "A", "location": None, "available": "12"},
                {"sku": "A", "location": "berlin", "available": "0.5"},
                {"sku": "B", "location": None, "available": 3},
                {"sku": "B", "location": "paris", "available": 2.25},  # exact as a number too
                {"sku": "ZZ", "location": None, "available": "9"},  # not asked for
            ]
        },
    )
    stock = await connector.fetch_availability(["A", "B", "A"])
    assert stock == {
        ("A", None): Decimal("12"),
        ("A", "berlin"): Decimal("0.5"),
        ("B", None): Decimal("3"),
        ("B", "paris"): Decimal("2.25"),
    }
    request = httpx_mock.get_request()
    assert request is not None
    assert request.content == b""
    signing.verify(SECRET, request.headers, b"", now=NOW)


async def test_fetch_availability_of_nothing_asks_nothing(connector: CustomConnector) -> None:
    assert await connector.fetch_availability([]) == {}


async def test_fetch_availability_in_chunks(
    connector: CustomConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="GET", json={"items": []}, is_reusable=True)
    await connector.fetch_availability([f"S{i}" for i in range(250)])
    counts = [len(r.url.params.get_list("sku")) for r in httpx_mock.get_requests()]
    assert counts == [100, 100, 50]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"stock": []}, 'lacks "items"'),
        ({"items": [{"location": None, "available": "1"}]}, r"items\[0\] needs a string sku"),
        ({"items": [{"sku": "A", "available": True}]}, r"items\[0\].available .*decimal string"),
        ({"items": [{"sku": "A", "available": None}]}, r"items\[0\].available .*decimal string"),
        ({"items": [{"sku": "A", "available": "lots"}]}, "'lots' is not a number"),
        ({"items": [{"sku": "A", "location": 7, "available": "1"}]}, "location must be"),
    ],
)
async def test_bad_stock_answers_are_permanent(
    connector: CustomConnector, httpx_mock: HTTPXMock, answer: object, message: str
) -> None:
    httpx_mock.add_response(method="GET", json=answer)
    with pytest.raises(PermanentError, match=message):
        await connector.fetch_availability(["A"])


async def test_stock_errors_map_like_deliveries(
    connector: CustomConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="GET", status_code=429, headers={"Retry-After": "2"})
    with pytest.raises(RateLimitedError):
        await connector.fetch_availability(["A"])
