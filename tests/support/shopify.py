"""Shopify webhooks for tests: payloads from the real sample, signed like Shopify signs them."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shopify_orders_create.json"


@cache
def _sample() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())  # type: ignore[no-any-return]


def order_payload(n: int, skus: tuple[str, ...] = ("SKU-RED-M", "SKU-BLUE-L")) -> dict[str, Any]:
    """The real sample order with a unique id/number and our SKUs on its lines."""
    order = copy.deepcopy(_sample())
    order["id"] = 5_000_000_000_000 + n
    order["order_number"] = 10_000 + n
    order["name"] = f"#{10_000 + n}"
    lines = order["line_items"]
    order["line_items"] = [
        dict(lines[i % len(lines)], sku=sku, id=9_000_000 + n * 10 + i)
        for i, sku in enumerate(skus)
    ]
    return order


def signed(
    body: bytes, secret: str, topic: str = "orders/create", webhook_id: str | None = None
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": "shop.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-11-26T12:00:00Z",
    }
