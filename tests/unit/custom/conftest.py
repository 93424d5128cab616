"""Fixtures for the custom connector: a connection, canonical payloads as a shop writes them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.config import ConnectionConfig
from connectors.custom.connector import CustomConnector
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import StockAvailability
from kernel.canonical.shipment import Package, Shipment, ShipmentLine
from tests.support.connectors import connect

BASE_URL = "https://shop.example.com"
PUSH_URL = f"{BASE_URL}/gateway/events"
STOCK_URL = f"{BASE_URL}/gateway/stock"
SECRET = "whsec_" + base64.b64encode(b"shop-secret-key-0123456789abcdef").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-key-for-the-push-side!!").decode()
WHEN = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)


def make_config(
    *,
    credentials: dict[str, str] | None = None,
    base_url: str = BASE_URL,
    **options: Any,
) -> ConnectionConfig:
    return ConnectionConfig(
        id="myshop",
        type="custom",
        base_url=base_url,
        credentials={"webhook_secret": SECRET} if credentials is None else credentials,
        options=options,
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def connector(http: httpx.AsyncClient) -> CustomConnector:
    return connect(CustomConnector, make_config(), http)


# --- payloads as a shop sends them (JSON: amounts as strings) -----------------------------


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


def order_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": "myshop",
        "external_id": "1001",
        "number": "#1001",
        "created_at": "2026-11-01T12:30:00Z",
        "currency": "USD",
        "customer": {"external_id": "77", "email": "ada@example.com"},
        "lines": [
            {
                "line_id": "1",
                "sku": "TSHIRT-RED-M",
                "title": "T-shirt red M",
                "quantity": "2",
                "unit_price": usd("19.99"),
            }
        ],
        "totals": {
            "subtotal": usd("39.98"),
            "discounts": usd("0"),
            "shipping": usd("4.90"),
            "tax": usd("0"),
            "total": usd("44.88"),
        },
    }
    data.update(overrides)
    return data


def customer_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": "myshop",
        "external_id": "77",
        "email": "ada@example.com",
        "first_name": "Ada",
        "updated_at": "2026-11-01T12:00:00Z",
    }
    data.update(overrides)
    return data


def erasure_data() -> dict[str, Any]:
    return {
        "source": "myshop",
        "customer_external_id": "77",
        "requested_at": "2026-11-02T08:00:00Z",
    }


def return_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": "myshop",
        "external_id": "R-5",
        "order_key": "1001",
        "lines": [{"sku": "TSHIRT-RED-M", "quantity": "1", "reason": "too small"}],
        "requested_at": "2026-11-05T09:00:00Z",
    }
    data.update(overrides)
    return data


def refund_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": "myshop",
        "external_id": "RF-9",
        "order_key": "myshop:order:1001",
        "return_key": "R-5",
        "amount": usd("19.99"),
        "created_at": "2026-11-06T10:00:00Z",
    }
    data.update(overrides)
    return data


# --- events the gateway pushes -----------------------------------------------------------


def shipment_event(**overrides: Any) -> CanonicalEvent:
    values: dict[str, Any] = {
        "source": "erp",
        "external_id": "IF-7",
        "order_key": "myshop:order:1001",
        "order_number": "#1001",
        "shipped_at": WHEN,
        "packages": [
            Package(
                tracking_number="1Z999",
                carrier="UPS",
                lines=[ShipmentLine(sku="TSHIRT-RED-M", quantity=Decimal(2), order_line_id="1")],
            )
        ],
    }
    values.update(overrides)
    return make_event("shipment.created", Shipment(**values), WHEN)


def availability_event(
    available: str, as_of: datetime, *, sku: str = "TSHIRT-RED-M", location: str | None = None
) -> CanonicalEvent:
    level = StockAvailability(
        source="erp",
        sku=sku,
        location=location,
        available=Decimal(available),
        status="in_stock" if Decimal(available) > 0 else "out_of_stock",
        as_of=as_of,
    )
    return make_event("inventory.availability_changed", level, as_of)
