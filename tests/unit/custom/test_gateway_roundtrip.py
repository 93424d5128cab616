"""The ShopSender against the real gateway endpoint: what a shop developer sees."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.config import parse_config
from simulators.custom.simulator import ShopSender
from tests.conftest import make_settings, running_app
from tests.unit.custom.conftest import SECRET, order_data, refund_data

CONFIG = f"""
connections:
  - id: myshop
    type: custom
    base_url: https://shop.example.com
    credentials: {{webhook_secret: "{SECRET}"}}
routes: []
"""
# No routes: these tests are about what the shop sees at the door. (A route would start
# background deliveries whose retries can outlive the app and lock SQLite for the next test.)


@pytest.fixture
async def sender(clean_db: str) -> AsyncIterator[ShopSender]:
    config = parse_config(CONFIG, "custom-test-config")
    async with running_app(make_settings(clean_db), config) as (_, client):
        yield ShopSender("http://gateway/webhooks/myshop", SECRET, client=client)


async def test_order_is_accepted_once_and_a_resend_is_a_duplicate(sender: ShopSender) -> None:
    first = await sender.send("order.created", order_data(), webhook_id="msg_order_1001_v1")
    assert first.status_code == 202, first.text
    assert first.json()["duplicate"] is False and len(first.json()["event_ids"]) == 1
    again = await sender.send("order.created", order_data(), webhook_id="msg_order_1001_v1")
    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}


async def test_stale_signature_is_401_saying_why(sender: ShopSender) -> None:
    response = await sender.send("order.created", order_data(), signed_at=1_000_000_000)
    assert response.status_code == 401
    assert "tolerance" in response.text


async def test_bad_payload_is_422_naming_the_field(sender: ShopSender) -> None:
    order = order_data()
    del order["totals"]
    response = await sender.send("order.created", order)
    assert response.status_code == 422
    assert "data.totals: Field required" in response.text


async def test_foreign_order_key_is_422(sender: ShopSender) -> None:
    response = await sender.send("refund.created", refund_data(order_key="shop:order:1"))
    assert response.status_code == 422
    assert "not one of this shop's orders" in response.text
