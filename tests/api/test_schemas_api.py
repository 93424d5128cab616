"""Canonical event schemas: every type, and one by name."""

from __future__ import annotations

from kernel.canonical.events import EVENT_TYPES
from tests.api.conftest import Gateway


async def test_lists_every_event_type_with_its_schema(gw: Gateway) -> None:
    body = await gw.ok("/schemas")
    assert body["next_cursor"] is None
    by_type = {i["event_type"]: i for i in body["items"]}
    assert set(by_type) == set(EVENT_TYPES)
    price = by_type["price.changed"]
    assert price["entity"] == "price" and price["flow"] == "products"
    assert price["description"] == "prices of an item changed"
    assert "sku" in price["schema"]["properties"] and "sku" in price["schema"]["required"]


async def test_one_schema_and_unknown_is_404(gw: Gateway) -> None:
    order = await gw.ok("/schemas/order.created")
    assert order["event_type"] == "order.created" and order["flow"] == "orders"
    assert "lines" in order["schema"]["properties"]
    missing = await gw.get("/schemas/order.exploded")
    assert missing.status_code == 404
    message = missing.json()["error"]["message"]
    assert "order.exploded" in message and "order.created" in message
    assert "price.changed" in message
