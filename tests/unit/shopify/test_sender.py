"""WebhookSender: deliveries Shopify would send, signed so the connector accepts them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors.shopify.inbound import dedupe_key, verify_hmac
from connectors.shopify.webhooks import parse_webhook
from kernel.errors import SignatureError
from simulators.shopify.samples import make_order
from simulators.shopify.simulator import WebhookSender
from tests.unit.shopify.conftest import SECRET, SOURCE

URL = "http://gateway.test/webhooks/shop-eu"
SHOPIFY_HEADERS = {
    "content-type",
    "x-shopify-topic",
    "x-shopify-hmac-sha256",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-shopify-triggered-at",
}


class FakeGateway:
    """Verifies and dedupes like the real endpoint: 202 new, 200 duplicate, 401 unsigned."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.seen: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = request.content
        try:
            verify_hmac(body, request.headers.get("x-shopify-hmac-sha256"), SECRET)
        except SignatureError as exc:
            return httpx.Response(401, json={"detail": str(exc)})
        key = dedupe_key(request.headers, body)
        duplicate = key in self.seen
        self.seen.add(key)
        return httpx.Response(200 if duplicate else 202, json={"duplicate": duplicate})


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
async def sender(gateway: FakeGateway) -> AsyncIterator[WebhookSender]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(gateway)) as client:
        yield WebhookSender(URL, SECRET, shop_domain="demo.myshopify.com", client=client)


async def test_delivery_has_shopifys_headers_and_a_valid_signature(
    sender: WebhookSender, gateway: FakeGateway
) -> None:
    response, delivery = await sender.send_order(make_order(1))
    assert response.status_code == 202
    (request,) = gateway.requests
    assert request.url == URL and request.method == "POST"
    assert set(request.headers.keys()) >= SHOPIFY_HEADERS
    assert request.headers["x-shopify-topic"] == "orders/create"
    assert request.headers["x-shopify-shop-domain"] == "demo.myshopify.com"
    assert request.headers["content-type"] == "application/json"
    datetime.fromisoformat(request.headers["x-shopify-triggered-at"])
    verify_hmac(request.content, request.headers["x-shopify-hmac-sha256"], SECRET)
    assert request.content == delivery.body
    assert delivery.webhook_id == request.headers["x-shopify-webhook-id"]


async def test_sent_order_parses_into_the_same_order(
    sender: WebhookSender, gateway: FakeGateway
) -> None:
    order = make_order(3, skus=["TSHIRT-RED-M"])
    await sender.send_order(order)
    request = gateway.requests[0]
    (event,) = parse_webhook(request.headers, request.content, SOURCE).events
    assert event.type == "order.created"
    assert event.payload.external_id == str(order["id"])
    assert json.loads(request.content)["id"] == order["id"]  # 64-bit id intact on the wire


async def test_resend_is_the_same_delivery_and_is_a_duplicate(
    sender: WebhookSender, gateway: FakeGateway
) -> None:
    first, delivery = await sender.send_order(make_order(1))
    again = await sender.resend(delivery)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"duplicate": True}
    one, two = gateway.requests
    assert one.content == two.content
    assert dict(one.headers) == dict(two.headers)


async def test_each_new_delivery_gets_new_ids(sender: WebhookSender) -> None:
    _, a = await sender.send_order(make_order(1))
    _, b = await sender.send_order(make_order(1))  # the same order sent again as a new delivery
    assert a.webhook_id != b.webhook_id and a.event_id != b.event_id


async def test_bad_signature_is_refused(sender: WebhookSender, gateway: FakeGateway) -> None:
    response, delivery = await sender.send_order(make_order(1), bad_signature=True)
    assert response.status_code == 401
    with pytest.raises(SignatureError):
        verify_hmac(delivery.body, delivery.headers["X-Shopify-Hmac-Sha256"], SECRET)


async def test_topic_and_shared_event_id(sender: WebhookSender, gateway: FakeGateway) -> None:
    order = make_order(2, cancelled=True)
    await sender.send("orders/cancelled", order, event_id="ev-1")
    await sender.send("orders/updated", order, event_id="ev-1")
    topics = [r.headers["x-shopify-topic"] for r in gateway.requests]
    assert topics == ["orders/cancelled", "orders/updated"]
    assert {r.headers["x-shopify-event-id"] for r in gateway.requests} == {"ev-1"}


async def test_raw_bytes_are_sent_untouched(sender: WebhookSender, gateway: FakeGateway) -> None:
    body = b'{"id": 1, "note": "exactly these bytes"}'
    await sender.send("orders/updated", body)
    assert gateway.requests[0].content == body
    verify_hmac(body, gateway.requests[0].headers["x-shopify-hmac-sha256"], SECRET)


async def test_sender_without_a_client_opens_its_own(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, status_code=202, json={"duplicate": False})
    response, _ = await WebhookSender(URL, SECRET).send_order(make_order(1))
    assert response.status_code == 202
    async with WebhookSender(URL, SECRET) as sender:
        httpx_mock.add_response(url=URL, status_code=202, json={"duplicate": False})
        assert (await sender.send_order(make_order(2)))[0].status_code == 202
