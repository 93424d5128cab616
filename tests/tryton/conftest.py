"""Fixtures for the Tryton connector tests: one real trytond per test session.

The server serves a copy of the cached, seeded database (``server.py``); tests share it and
keep out of each other's way with unique order and customer ids and SKUs of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.config import ConnectionConfig, DeliveryPolicy
from connectors.tryton.client import TrytonClient
from connectors.tryton.connector import TrytonConnector
from connectors.tryton.options import TrytonCredentials
from kernel.canonical.common import Address, Money
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import Order, OrderCustomer, OrderLine, OrderTotals, ShippingLine
from kernel.types import DeliveryContext
from tests.support.connectors import connect
from tests.support.trytond import shared_server
from tests.tryton import server as srv


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tryton: runs against a real Tryton server (trytond)")


@pytest.fixture(scope="session")
def tryton(request: pytest.FixtureRequest) -> srv.TrytonServer:
    # one trytond for the whole test session, shared with the conformance suite
    return shared_server(request)


def connection(
    server: srv.TrytonServer, *, password: str | None = None, **options: Any
) -> ConnectionConfig:
    values: dict[str, Any] = {
        "database": server.database,
        "shipping_product_code": srv.SHIPPING_SKU,
        "discount_product_code": srv.DISCOUNT_SKU,
        "poll_overlap_seconds": 0,
    }
    values.update(options)
    return ConnectionConfig(
        id="erp",
        type="tryton",
        base_url=server.url,
        credentials={"username": server.username, "password": password or server.password},
        options=values,
        delivery=DeliveryPolicy(request_timeout_seconds=30),
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
def make_connector(tryton: srv.TrytonServer, http: httpx.AsyncClient) -> Any:
    def make(**options: Any) -> TrytonConnector:
        return connect(TrytonConnector, connection(tryton, **options), http)

    return make


@pytest.fixture
def connector(make_connector: Any) -> TrytonConnector:
    return make_connector()


@pytest.fixture
def rpc(tryton: srv.TrytonServer, http: httpx.AsyncClient) -> TrytonClient:
    """A JSON-RPC session of the test itself, to arrange and inspect Tryton's records."""
    creds = TrytonCredentials(username=tryton.username, password=tryton.password)
    return TrytonClient(http, tryton.url, tryton.database, creds, timeout_seconds=30)


# --- canonical data ----------------------------------------------------------------------


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def usd(value: str) -> Money:
    return Money(amount=Decimal(value), currency="USD")


def address(**overrides: Any) -> Address:
    values: dict[str, Any] = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country_code": "GB",
    }
    values.update(overrides)
    return Address(**values)


def make_order(
    external_id: str | None = None,
    *,
    lines: list[tuple[str, str, str]] | None = None,
    shipping: str | None = "4.90",
    customer_id: str | None = None,
    **overrides: Any,
) -> Order:
    """An order of ``lines`` (sku, quantity, unit price), with shipping unless None."""
    external_id = external_id or unique()
    lines = lines or [("TSHIRT-RED-M", "3", "19.99"), ("MUG-BLUE", "2", "7.125")]
    order_lines = [
        OrderLine(
            line_id=f"L{i}",
            sku=sku,
            title=f"Item {sku}",
            quantity=Decimal(qty),
            unit_price=usd(price),
        )
        for i, (sku, qty, price) in enumerate(lines, start=1)
    ]
    subtotal = sum((Decimal(q) * Decimal(p) for _, q, p in lines), Decimal(0))
    ship = Decimal(shipping or "0")
    values: dict[str, Any] = {
        "source": "shop",
        "external_id": external_id,
        "number": f"#{external_id}",
        "created_at": datetime(2026, 11, 1, 12, 30, tzinfo=UTC),
        "currency": "USD",
        "customer": OrderCustomer(
            external_id=customer_id or unique("c"),
            email=f"{unique('ada')}@example.com",
            first_name="Ada",
            last_name="Lovelace",
            phone="+44 20 7946 0000",
        ),
        "shipping_address": address(),
        "billing_address": address(line1="1 Billing Road"),
        "lines": order_lines,
        "shipping_lines": [ShippingLine(title="Standard", price=usd(str(ship)))]
        if shipping
        else [],
        "totals": OrderTotals(
            subtotal=usd(str(subtotal)),
            discounts=usd("0"),
            shipping=usd(str(ship)),
            tax=usd("0"),
            total=usd(str(subtotal + ship)),
        ),
        "note": "leave at the door",
    }
    values.update(overrides)
    return Order(**values)


def event_for(order: Order, event_type: str = "order.created") -> CanonicalEvent:
    return CanonicalEvent(
        type=event_type, entity_key=order.entity_key, occurred_at=order.created_at, payload=order
    )


def context(**directives: Any) -> DeliveryContext:
    return DeliveryContext(directives=dict(directives))
