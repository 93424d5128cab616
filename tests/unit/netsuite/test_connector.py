"""The connector's requests for a realistic order, checked on the wire."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpx import HTTPXMock

from connectors.netsuite import wire
from connectors.netsuite.connector import (
    NetSuiteConnector,
    customer_external_id,
    external_id,
    order_external_id,
)
from kernel.canonical.order import OrderCustomer, OrderLine
from kernel.errors import NeedsMappingError, PermanentError
from kernel.types import MappingNeed, RemoteLink
from tests.support.connectors import connect
from tests.unit.netsuite.conftest import (
    RECORDS,
    context,
    discounted,
    event_for,
    make_connection,
    realistic_order,
    usd,
)

CUSTOMER_URL = f"{RECORDS}/customer/eid:shop-eu-77"
ORDER_URL = f"{RECORDS}/salesOrder/eid:shop-eu-1001"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


SUITEQL = re.compile(r".*/services/rest/query/v1/suiteql\?.*")


def mock_currencies(httpx_mock: HTTPXMock) -> None:
    """``SELECT id, symbol FROM currency`` as NetSuite answers it (every value text)."""
    httpx_mock.add_response(
        method="POST",
        url=SUITEQL,
        json={
            "items": [
                {"links": [], "id": "1", "symbol": "USD"},
                {"links": [], "id": "4", "symbol": "EUR"},
            ],
            "hasMore": False,
        },
    )


def mock_order_read(httpx_mock: HTTPXMock, order_id: str, tax_total: str | None = None) -> None:
    """The sales order read back by id for its ``taxTotal``."""
    body: dict[str, Any] = {"id": order_id}
    if tax_total is not None:
        body["taxTotal"] = tax_total
    httpx_mock.add_response(method="GET", url=f"{RECORDS}/salesOrder/{order_id}", json=body)


def mock_netsuite(httpx_mock: HTTPXMock, customer_id: str = "501", order_id: str = "9001") -> None:
    mock_currencies(httpx_mock)
    httpx_mock.add_response(method="PUT", url=CUSTOMER_URL, status_code=204)
    httpx_mock.add_response(method="GET", url=CUSTOMER_URL, json={"id": customer_id})
    httpx_mock.add_response(method="PUT", url=f"{ORDER_URL}?replace=item", status_code=204)
    httpx_mock.add_response(method="GET", url=ORDER_URL, json={"id": order_id})
    mock_order_read(httpx_mock, order_id)


def sent_json(httpx_mock: HTTPXMock, method: str, url: str) -> Any:
    request = httpx_mock.get_request(method=method, url=url)
    assert request is not None
    return wire.loads(request.content)


async def test_order_becomes_customer_and_sales_order_upserts(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    mock_netsuite(httpx_mock)
    connector = connect(
        NetSuiteConnector,
        make_connection(subsidiary_id=1, location_id="7", payment_gateway_field="custbody_gw"),
        http,
    )
    order = realistic_order()

    result = await connector.deliver(event_for(order), context())

    customer = sent_json(httpx_mock, "PUT", CUSTOMER_URL)
    assert customer == {
        "externalId": "shop-eu-77",
        "isPerson": True,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.com",
        "subsidiary": {"id": "1"},
    }
    sales_order = sent_json(httpx_mock, "PUT", f"{ORDER_URL}?replace=item")
    assert sales_order == {
        "externalId": "shop-eu-1001",
        "entity": {"id": "501"},
        "otherRefNum": "#1001",
        "tranDate": "2026-11-01",
        "currency": {"id": "1"},
        "memo": "shop-eu order #1001; payment: shopify_payments; note: leave at the door",
        "item": {
            "items": [
                {
                    "item": {"id": "1042"},
                    "quantity": 3,
                    "rate": Decimal("19.99"),
                    "description": "T-shirt red M",
                },
                {
                    "item": {"id": "959"},
                    "quantity": 2,
                    "rate": Decimal("7.125"),
                    "description": "Blue mug",
                },
            ]
        },
        "subsidiary": {"id": "1"},
        "location": {"id": "7"},
        "shippingAddress": {
            "addressee": "Ada Lovelace",
            "addr1": "12 St James's Square",
            "city": "London",
            "state": "England",
            "zip": "SW1Y 4JH",
            "country": {"id": "GB"},
            "addrPhone": "+44 20 7946 0000",
        },
        "billingAddress": sales_order["billingAddress"],
        "shippingCost": Decimal("4.90"),
        "custbody_gw": "shopify_payments",
    }
    assert result.links == [
        RemoteLink("customer", "shop-eu:customer:77", "501"),
        RemoteLink("order", "shop-eu:order:1001", "9001"),
    ]
    assert result.summary == "salesOrder 9001 (eid shop-eu-1001)"


async def test_location_headers_spare_the_read_backs(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    mock_currencies(httpx_mock)
    mock_order_read(httpx_mock, "9002")
    httpx_mock.add_response(
        method="PUT",
        url=CUSTOMER_URL,
        status_code=204,
        headers={"Location": f"{RECORDS}/customer/502"},
    )
    httpx_mock.add_response(
        method="PUT",
        url=f"{ORDER_URL}?replace=item",
        status_code=204,
        headers={"Location": f"{RECORDS}/salesOrder/9002"},
    )
    connector = connect(NetSuiteConnector, make_connection(), http)

    result = await connector.deliver(event_for(realistic_order()), context())

    # no read-back of an id; the currency list, and the order read once for its taxTotal
    assert [(r.method, r.url.path.rsplit("/", 1)[-1]) for r in httpx_mock.get_requests()] == [
        ("POST", "suiteql"),
        ("PUT", "eid:shop-eu-77"),
        ("PUT", "eid:shop-eu-1001"),
        ("GET", "9002"),
    ]
    assert sent_json(httpx_mock, "PUT", f"{ORDER_URL}?replace=item")["entity"] == {"id": "502"}
    assert [link.remote_id for link in result.links] == ["502", "9002"]


async def test_money_and_quantities_reach_netsuite_digit_for_digit(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    mock_netsuite(httpx_mock)
    order = realistic_order()
    order.lines[0].unit_price = usd("123456789012.345678")  # float would send ...012.34568
    order.lines[1].unit_price = usd("19.90")  # float would send 19.9
    order.lines[1].quantity = Decimal("2.500000")  # float would send 2.5

    await connect(NetSuiteConnector, make_connection(), http).deliver(event_for(order), context())

    request = httpx_mock.get_request(method="PUT", url=f"{ORDER_URL}?replace=item")
    assert request is not None
    raw = request.content.decode()
    assert '"rate":123456789012.345678' in raw
    assert '"quantity":2.500000,"rate":19.90' in raw
    assert '"shippingCost":4.90' in raw


async def test_discount_goes_to_the_configured_discount_item(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    mock_netsuite(httpx_mock)
    connector = connect(NetSuiteConnector, make_connection(discount_item_id="88"), http)
    await connector.deliver(event_for(discounted(realistic_order(), "5.00")), context())
    body = sent_json(httpx_mock, "PUT", f"{ORDER_URL}?replace=item")
    assert body["discountItem"] == {"id": "88"}
    assert body["discountRate"] == Decimal("-5.00")


async def test_discount_without_discount_item_stops_before_any_write(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    connector = connect(NetSuiteConnector, make_connection(), http)
    with pytest.raises(PermanentError, match="discount_item_id"):
        await connector.deliver(event_for(discounted(realistic_order())), context())
    assert httpx_mock.get_requests() == []


async def test_exchange_rate_only_when_asked_for(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    order = realistic_order(presentment_currency="EUR", exchange_rate=Decimal("1.0842000001"))
    mock_netsuite(httpx_mock)
    await connect(NetSuiteConnector, make_connection(), http).deliver(event_for(order), context())
    assert "exchangeRate" not in sent_json(httpx_mock, "PUT", f"{ORDER_URL}?replace=item")

    httpx_mock.reset()
    mock_netsuite(httpx_mock)
    connector = connect(NetSuiteConnector, make_connection(send_exchange_rate=True), http)
    await connector.deliver(event_for(order), context())
    body = sent_json(httpx_mock, "PUT", f"{ORDER_URL}?replace=item")
    assert body["exchangeRate"] == Decimal("1.0842000001")


async def test_guest_is_keyed_by_normalized_email(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    guest = OrderCustomer(email="  Grace.Hopper@Example.COM ", is_guest=True)
    order = realistic_order(customer=guest)
    eid = customer_external_id(order)
    assert eid == customer_external_id(
        realistic_order(customer=OrderCustomer(email="grace.hopper@example.com"))
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]+", eid)

    url = f"{RECORDS}/customer/eid:{eid}"
    mock_currencies(httpx_mock)
    mock_order_read(httpx_mock, "9001")
    httpx_mock.add_response(method="PUT", url=url, status_code=204)
    httpx_mock.add_response(method="GET", url=url, json={"id": "502"})
    httpx_mock.add_response(method="PUT", url=f"{ORDER_URL}?replace=item", status_code=204)
    httpx_mock.add_response(method="GET", url=ORDER_URL, json={"id": "9001"})
    result = await connect(NetSuiteConnector, make_connection(), http).deliver(
        event_for(order), context()
    )
    assert result.links[0] == RemoteLink(
        "customer", "shop-eu:customer:guest:grace.hopper@example.com", "502"
    )
    assert sent_json(httpx_mock, "PUT", url)["lastName"] == "Lovelace"  # from the address


async def test_line_without_sku_parks_on_its_item_naming_the_mapping(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    """Issue 10 item 9: a gift wrap line without a SKU used to kill the order (dead, "has no
    SKU"); now it waits for the non-inventory item of its kind, and nothing is written."""
    order = realistic_order()
    order.lines.append(
        OrderLine(
            line_id="L3", sku=None, title="Gift wrap", quantity=Decimal(1), unit_price=usd("2.00")
        )
    )
    connector = connect(NetSuiteConnector, make_connection(), http)
    assert MappingNeed("non_sku_item", "default") in connector.required_mappings(event_for(order))
    with pytest.raises(NeedsMappingError) as caught:
        await connector.deliver(event_for(order), context())
    assert caught.value.missing == [MappingNeed("non_sku_item", "default")]
    assert "PUT /api/v1/mappings/non_sku_item/" in str(caught.value)
    assert httpx_mock.get_requests() == []


async def test_unmapped_sku_parks_instead_of_failing(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    connector = connect(NetSuiteConnector, make_connection(), http)
    with pytest.raises(NeedsMappingError) as caught:
        await connector.deliver(event_for(realistic_order()), context({"TSHIRT-RED-M": "1042"}))
    assert caught.value.missing == [MappingNeed("sku", "MUG-BLUE")]
    assert httpx_mock.get_requests() == []


def test_required_mappings_are_the_skus_and_a_cancel_needs_none(http: httpx.AsyncClient) -> None:
    connector = connect(NetSuiteConnector, make_connection(), http)
    order = realistic_order()
    order.lines.append(order.lines[0].model_copy(update={"line_id": "L9"}))
    assert connector.required_mappings(event_for(order)) == [
        MappingNeed("sku", "TSHIRT-RED-M"),
        MappingNeed("sku", "MUG-BLUE"),
    ]
    assert connector.required_mappings(event_for(order, "order.cancelled")) == []


def test_missing_credentials_fail_at_start_with_the_names(http: httpx.AsyncClient) -> None:
    config = make_connection()
    del config.credentials["token_secret"]
    with pytest.raises(ValueError, match=r"token_secret\s+Field required"):
        connect(NetSuiteConnector, config, http)


def test_external_ids_are_deterministic_and_netsuite_safe() -> None:
    assert external_id("shop-eu-1001") == "shop-eu-1001"  # clean values are kept
    assert order_external_id(realistic_order(external_id="gid://shopify/Order/1")) == external_id(
        "shop-eu-gid://shopify/Order/1"
    )
    # replaced characters do not merge different values
    assert external_id("a.b") != external_id("a_b") != external_id("a@b")


@given(st.text(min_size=1, max_size=300))
def test_any_external_id_is_allowed_by_netsuite(raw: str) -> None:
    eid = external_id(raw)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,100}", eid)
    assert external_id(raw) == eid
