"""Fixtures for the Shopify connector tests: the real sample payload, a connection, signing."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import ConnectionConfig
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.inbound import sign
from tests.support.connectors import connect

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "shopify_orders_create.json"
SECRET = "shpss_unit_test_secret"
SOURCE = "shop-eu"


@cache
def _fixture_bytes() -> bytes:
    return FIXTURE.read_bytes()


def fixture_bytes() -> bytes:
    """The real orders/create body, byte for byte as Shopify published it."""
    return _fixture_bytes()


def fixture_order() -> dict[str, Any]:
    return copy.deepcopy(json.loads(_fixture_bytes()))


def headers_for(
    body: bytes, topic: str = "orders/create", *, secret: str = SECRET, **extra: str
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        **extra,
    }


def make_connection(**credentials: str | None) -> ConnectionConfig:
    creds = {"webhook_secret": SECRET, "access_token": "shpat_x", **credentials}
    return ConnectionConfig(
        id=SOURCE,
        type="shopify",
        base_url="https://shop-eu.myshopify.com",
        credentials={k: v for k, v in creds.items() if v is not None},
    )


@pytest.fixture
async def connector() -> ShopifyConnector:
    async with httpx.AsyncClient() as http:
        return connect(ShopifyConnector, make_connection(), http)
