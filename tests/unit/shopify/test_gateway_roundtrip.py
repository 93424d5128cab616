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


async def test_malformed_body_is_400_saying_why(sender: WebhookSender) -> None:
    response, _ = await sender.send("orders/create", b'{"id": 1,')
    assert response.status_code == 400
    assert "body is not valid JSON" in response.text


async def test_missing_line_items_is_422_naming_the_field(sender: WebhookSender) -> None:
    order = make_order(1)
    del order["line_items"]
    response, _ = await sender.send("orders/create", order)
    assert response.status_code == 422
    assert "line_items: Field required" in response.text


async def test_other_topics_are_acknowledged_without_events(sender: WebhookSender) -> None:
    body = json.dumps({"shop_id": 954889, "shop_domain": "shop.myshopify.com"}).encode()
    response, _ = await sender.send("shop/redact", body)
    assert response.status_code == 202
    assert response.json()["event_ids"] == []
