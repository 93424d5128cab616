"""The sender against the real gateway endpoint: the answers Shopify and operators see."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from simulators.shopify.samples import make_order
from simulators.shopify.simulator import WebhookSender
from tests.conftest import SHOP_SECRET, make_config, make_settings, running_app


@pytest.fixture
async def sender(clean_db: str) -> AsyncIterator[WebhookSender]:
    async with running_app(make_settings(clean_db), make_config()) as (_, client):
        yield WebhookSender("http://gateway/webhooks/shop", SHOP_SECRET, client=client)


async def test_order_is_accepted_once_and_a_resend_is_a_duplicate(sender: WebhookSender) -> None:
    first, delivery = await sender.send_order(make_order(1, skus=["SKU-RED-M"]))
    assert first.status_code == 202, first.text
    assert first.json()["duplicate"] is False and len(first.json()["event_ids"]) == 1
    again = await sender.resend(delivery)
    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}


async def test_bad_signature_is_401(sender: WebhookSender) -> None:
    response, _ = await sender.send_order(make_order(1), bad_signature=True)
    assert response.status_code == 401


async def test_a_signed_body_that_is_not_json_is_kept_in_quarantine_saying_why(
    sender: WebhookSender,
) -> None:
    response, delivery = await sender.send("orders/create", b'{"id": 1,')
    # 200, not 400: Shopify retries a 4xx and then deletes the subscription
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["quarantined"] is True and answer["event_ids"] == []
    assert "body is not valid JSON" in answer["reason"]
    again = await sender.resend(delivery)  # Shopify's retry: the same stored row
    assert again.status_code == 200
    assert again.json() == {**answer, "duplicate": True}


async def test_a_signed_order_without_line_items_is_kept_in_quarantine_naming_the_field(
    sender: WebhookSender,
) -> None:
    order = make_order(1)
    del order["line_items"]
    response, _ = await sender.send("orders/create", order)
    assert response.status_code == 200
    assert response.json()["quarantined"] is True
    assert "line_items: Field required" in response.json()["reason"]


async def test_a_delivery_without_a_topic_is_refused_not_kept(sender: WebhookSender) -> None:
    delivery = sender.build("orders/create", make_order(1))
    del delivery.headers["X-Shopify-Topic"]  # headers are not signed: not Shopify's doing
    response = await sender.deliver(delivery)
    assert response.status_code == 400
    assert "X-Shopify-Topic" in response.text


async def test_other_topics_are_acknowledged_without_events(sender: WebhookSender) -> None:
    body = json.dumps({"shop_id": 954889, "shop_domain": "shop.myshopify.com"}).encode()
    response, _ = await sender.send("shop/redact", body)
    assert response.status_code == 202
    assert response.json()["event_ids"] == []
