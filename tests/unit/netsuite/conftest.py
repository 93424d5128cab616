"""Fixtures for the NetSuite connector tests: credentials, a realistic order, the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.config import ConnectionConfig, DeliveryPolicy
from connectors.netsuite.auth import TbaCredentials
from connectors.netsuite.connector import NetSuiteConnector
from kernel.canonical.common import Address, Money
from kernel.canonical.events import CanonicalEvent
from kernel.canonical.order import (
    Discount,
    Order,
    OrderCustomer,
    OrderLine,
    OrderTotals,
    Payment,
    ShippingLine,
)
from kernel.types import DeliveryContext
from simulators.netsuite.simulator import NetSuiteSimulator
from tests.support.connectors import connect

BASE_URL = "https://1234567.suitetalk.api.netsuite.com"
RECORDS = f"{BASE_URL}/services/rest/record/v1"
CREDS = {
    "account_id": "1234567",
    "consumer_key": "ck-test-key",
    "consumer_secret": "cs-very-secret",
    "token_id": "tk-test-token",
    "token_secret": "ts-very-secret",
}
SKU_MAP = {"TSHIRT-RED-M": "1042", "MUG-BLUE": "959"}


def usd(value: str) -> Money:
    return Money(amount=Decimal(value), currency="USD")


def make_connection(
    *, base_url: str = BASE_URL, timeout: float | None = None, **options: Any
) -> ConnectionConfig:
    delivery = DeliveryPolicy(request_timeout_seconds=timeout) if timeout else None
    return ConnectionConfig(
        id="erp",
        type="netsuite",
        base_url=base_url,
        credentials=dict(CREDS),
        options=options,
        delivery=delivery,
    )


def realistic_order(**overrides: Any) -> Order:
    """A Shopify-like order: two lines (one priced below the cent), shipping, payment, note."""
    address = Address(
        first_name="Ada",
        last_name="Lovelace",
        line1="12 St James's Square",
        city="London",
        region="England",
        postal_code="SW1Y 4JH",
        country_code="GB",
        phone="+44 20 7946 0000",
    )
    values: dict[str, Any] = {
        "source": "shop-eu",
        "external_id": "1001",
        "number": "#1001",
        "created_at": datetime(2026, 11, 1, 12, 30, tzinfo=UTC),
        "currency": "USD",
        "customer": OrderCustomer(
            external_id="77", email="ada@example.com", first_name="Ada", last_name="Lovelace"
        ),
        "shipping_address": address,
        "billing_address": address,
        "lines": [
            OrderLine(
                line_id="L1",
                sku="TSHIRT-RED-M",
                title="T-shirt red M",
                quantity=Decimal("3"),
                unit_price=usd("19.99"),
            ),
            OrderLine(
                line_id="L2",
                sku="MUG-BLUE",
                title="Blue mug",
                quantity=Decimal("2"),
                unit_price=usd("7.125"),
            ),
        ],
        "shipping_lines": [ShippingLine(title="Standard", price=usd("4.90"))],
        "payments": [Payment(gateway="shopify_payments", status="paid")],
        "totals": OrderTotals(
            subtotal=usd("74.22"),
            discounts=usd("0"),
            shipping=usd("4.90"),
            tax=usd("0"),
            total=usd("79.12"),
        ),
        "note": "leave at the door",
    }
    values.update(overrides)
    return Order(**values)


def discounted(order: Order, amount: str = "5.00") -> Order:
    return order.model_copy(
        update={
            "discounts": [Discount(code="WELCOME", amount=usd(amount))],
            "totals": order.totals.model_copy(update={"discounts": usd(amount)}),
        }
    )


def event_for(order: Order, event_type: str = "order.created") -> CanonicalEvent:
    return CanonicalEvent(
        type=event_type,
        entity_key=order.entity_key,
        occurred_at=order.created_at,
        payload=order,
    )


def context(mapping: dict[str, str] | None = None) -> DeliveryContext:
    return DeliveryContext(mappings={"sku": dict(SKU_MAP if mapping is None else mapping)})


@pytest.fixture
def tba() -> TbaCredentials:
    return TbaCredentials.from_mapping(CREDS)


@pytest.fixture
def sim(tba: TbaCredentials) -> NetSuiteSimulator:
    return NetSuiteSimulator(tba, items=("1042", "959"))


@pytest.fixture
async def sim_http(sim: NetSuiteSimulator) -> AsyncIterator[httpx.AsyncClient]:
    """The shared-client stand-in, wired to the simulator in process."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app)) as client:
        yield client


@pytest.fixture
def sim_connector(sim_http: httpx.AsyncClient) -> NetSuiteConnector:
    return connect(NetSuiteConnector, make_connection(), sim_http)
