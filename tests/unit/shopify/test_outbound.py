"""Outbound calls against a mocked Shopify: request shapes, links, idempotency, errors."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from app.config import ConnectionConfig
from connectors.shopify.connector import ShopifyConnector
from kernel.canonical.common import Address, Money
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import StockAvailability
from kernel.canonical.product import Price, Product
from kernel.canonical.returns import CreditMemo, MoneyLine, ReturnLine
from kernel.canonical.shipment import Package, Shipment, ShipmentLine
from kernel.errors import PermanentError, RateLimitedError, TransientError
from kernel.types import DeliveryContext
from tests.support.connectors import connect
from tests.unit.shopify.conftest import SECRET

API = "https://shop-eu.myshopify.com/admin/api/2026-01"
GRAPHQL = f"{API}/graphql.json"
TOKEN = "shpat_outbound"
NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)
ERP = "erp"
ORDER_ID = "6000000000000000001"
ORDER_KEY = f"shop-eu:order:{ORDER_ID}"
PRODUCT_KEY = "erp:product:TSHIRT-RED-M"


def connection(**options: Any) -> ConnectionConfig:
    return ConnectionConfig(
        id="shop-eu",
        type="shopify",
        base_url="https://shop-eu.myshopify.com",
        credentials={"webhook_secret": SECRET, "access_token": TOKEN},
        options={"location_id": 555, **options},
    )


@pytest.fixture
async def shop() -> AsyncIterator[ShopifyConnector]:
    async with httpx.AsyncClient() as http:
        yield connect(ShopifyConnector, connection(), http)


def variant_node(sku: str, variant: int = 11, item: int = 33, product: int = 22) -> dict[str, Any]:
    return {
        "legacyResourceId": str(variant),
        "sku": sku,
        "price": "10.00",
        "compareAtPrice": None,
        "product": {"legacyResourceId": str(product)},
        "inventoryItem": {"legacyResourceId": str(item)},
    }


def mock_variants(httpx_mock: HTTPXMock, *nodes: dict[str, Any]) -> None:
    httpx_mock.add_response(
        method="POST",
        url=GRAPHQL,
        json={"data": {"productVariants": {"nodes": list(nodes)}}},
    )


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def availability(available: str = "7", location: str | None = None) -> CanonicalEvent:
    values: dict[str, Any] = {
        "source": ERP,
        "sku": "TSHIRT-RED-M",
        "location": location,
        "available": Decimal(available),
        "status": "in_stock",
        "as_of": NOW,
    }
    # The canonical model refuses a negative availability; the connector still clamps one
    # that reaches it some other way (built without validation here to prove it).
    stock = (
        StockAvailability(**values)
        if Decimal(available) >= 0
        else StockAvailability.model_construct(**values)
    )
    return make_event("inventory.availability_changed", stock, NOW)


def linked() -> DeliveryContext:
    return DeliveryContext(
        links={
            ("product", PRODUCT_KEY): "11",
            ("inventory_item", PRODUCT_KEY): "33",
            ("shopify_product", PRODUCT_KEY): "22",
        }
    )


# --- inventory ------------------------------------------------------------------------------


async def test_unknown_sku_is_permanent_and_says_what_to_do(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    mock_variants(httpx_mock)
    with pytest.raises(PermanentError, match="does not exist in the Shopify store") as caught:
        await shop.deliver(availability(), DeliveryContext())
    assert "replay" in caught.value.message


# --- inventory deltas (inventoryAdjustQuantities @idempotent) --------------------------------

DELIVERY_KEY = "dlv-42:attempt-content-7"


def delta_ctx(delta: str | None, **directives: Any) -> DeliveryContext:
    ctx = linked()
    ctx.directives = {"idempotency_key": DELIVERY_KEY, **directives}
    if delta is not None:
        ctx.directives["delta"] = delta
    return ctx


def adjusted(after: int | None = 4, *errors: dict[str, Any]) -> dict[str, Any]:
    group = None
    if not errors:
        changes = [{"name": "available", "delta": -3, "quantityAfterChange": after}]
        group = {"id": "gid://shopify/InventoryAdjustmentGroup/1", "changes": changes}
    return {
        "data": {
            "inventoryAdjustQuantities": {
                "inventoryAdjustmentGroup": group,
                "userErrors": list(errors),
            }
        }
    }


async def test_delta_is_sent_as_an_idempotent_adjustment(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=GRAPHQL, json=adjusted(4))
    result = await shop.deliver(availability("12"), delta_ctx("-3"))
    (write,) = httpx_mock.get_requests()  # linked: no lookup, and no set.json
    sent = body(write)
    # the directive sits on the mutation field, its key from a variable
    assert "inventoryAdjustQuantities(input: $input) @idempotent(key: $key)" in sent["query"]
    assert sent["variables"] == {
        "input": {
            "reason": "correction",
            "name": "available",
            "referenceDocumentUri": "gid://erp-gateway/Delivery/dlv-42%3Aattempt-content-7",
            "changes": [
                {
                    "inventoryItemId": "gid://shopify/InventoryItem/33",
                    "locationId": "gid://shopify/Location/555",
                    "delta": -3,
                }
            ],
        },
        "key": DELIVERY_KEY,
    }
    assert result.summary.startswith("adjusted TSHIRT-RED-M by -3 at location 555 (now 4)")
    assert result.findings == []
    assert ("inventory_item", PRODUCT_KEY, "33") in {
        (link.entity_type, link.our_key, link.remote_id) for link in result.links
    }


@pytest.mark.parametrize("delta", ["0", "-0", "0.00"])
async def test_zero_delta_makes_no_call(
    shop: ShopifyConnector, httpx_mock: HTTPXMock, delta: str
) -> None:
    result = await shop.deliver(availability("12"), delta_ctx(delta))
    assert httpx_mock.get_requests() == []
    assert "unchanged" in result.summary
    assert result.findings == []


@pytest.mark.parametrize(("delta", "sent"), [("2.5", 2), ("-2.5", -3), ("-0.25", -1)])
async def test_fractional_delta_rounds_toward_minus_infinity_with_a_finding(
    shop: ShopifyConnector, httpx_mock: HTTPXMock, delta: str, sent: int
) -> None:
    httpx_mock.add_response(method="POST", url=GRAPHQL, json=adjusted(9))
    result = await shop.deliver(availability("12"), delta_ctx(delta))
    (write,) = httpx_mock.get_requests()
    assert body(write)["variables"]["input"]["changes"][0]["delta"] == sent
    (finding,) = result.findings
    assert finding.kind == "fractional_stock"
    assert finding.data == {"sku": "TSHIRT-RED-M", "delta": delta}
    assert f"by {sent} " in result.summary


async def test_fraction_below_one_unit_makes_no_call_but_is_reported(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    result = await shop.deliver(availability("12"), delta_ctx("0.5"))
    assert httpx_mock.get_requests() == []
    assert "unchanged" in result.summary
    assert [f.kind for f in result.findings] == ["fractional_stock"]


async def test_negative_level_after_the_change_is_reported(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=GRAPHQL, json=adjusted(-2))
    result = await shop.deliver(availability("0"), delta_ctx("-3"))
    (finding,) = result.findings
    assert finding.kind == "negative_stock" and finding.data["available"] == -2


async def test_user_errors_are_permanent_with_their_messages(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    error = {
        "field": ["input", "changes", "0", "locationId"],
        "message": "The specified location could not be found.",
        "code": "INVALID_LOCATION",
    }
    httpx_mock.add_response(method="POST", url=GRAPHQL, json=adjusted(None, error))
    with pytest.raises(PermanentError, match="specified location could not be found") as caught:
        await shop.deliver(availability("12"), delta_ctx("-3"))
    assert not isinstance(caught.value, TransientError)
    assert "INVALID_LOCATION" in caught.value.message


async def test_try_again_user_error_is_transient(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    error = {"field": None, "message": "This request is currently in progress, please try again."}
    busy = adjusted(None, {**error, "code": "IDEMPOTENCY_CONCURRENT_REQUEST"})
    httpx_mock.add_response(method="POST", url=GRAPHQL, json=busy)
    with pytest.raises(TransientError, match="in progress"):
        await shop.deliver(availability("12"), delta_ctx("-3"))


async def test_throttled_adjustment_is_rate_limited(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}
    httpx_mock.add_response(method="POST", url=GRAPHQL, json=throttled)
    with pytest.raises(RateLimitedError):
        await shop.deliver(availability("12"), delta_ctx("-3"))


async def test_stale_item_link_gets_one_lookup_and_the_same_key(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    gone = {"field": None, "message": "The specified inventory item could not be found."}
    httpx_mock.add_response(
        method="POST", url=GRAPHQL, json=adjusted(None, {**gone, "code": "INVALID_INVENTORY_ITEM"})
    )
    mock_variants(httpx_mock, variant_node("TSHIRT-RED-M", variant=44, item=45, product=46))
    httpx_mock.add_response(method="POST", url=GRAPHQL, json=adjusted(4))
    result = await shop.deliver(availability("12"), delta_ctx("-3"))
    first, _lookup, second = (body(r) for r in httpx_mock.get_requests())
    assert first["variables"]["key"] == second["variables"]["key"] == DELIVERY_KEY
    changes = second["variables"]["input"]["changes"]
    assert changes[0]["inventoryItemId"] == "gid://shopify/InventoryItem/45"
    assert ("inventory_item", PRODUCT_KEY, "45") in {
        (link.entity_type, link.our_key, link.remote_id) for link in result.links
    }


@pytest.mark.parametrize(
    ("directives", "message"),
    [
        ({"delta": "-3", "idempotency_key": ""}, "without an idempotency_key"),
        ({"delta": "-3"}, "without an idempotency_key"),
        ({"delta": "lots", "idempotency_key": "k"}, "not a decimal"),
        ({"delta": 2.5, "idempotency_key": "k"}, "not a decimal"),
        ({"delta": "NaN", "idempotency_key": "k"}, "not a decimal"),
    ],
)
async def test_bad_delta_directives_are_permanent_and_send_nothing(
    shop: ShopifyConnector, httpx_mock: HTTPXMock, directives: dict[str, Any], message: str
) -> None:
    ctx = linked()
    ctx.directives = directives
    with pytest.raises(PermanentError, match=message):
        await shop.deliver(availability("12"), ctx)
    assert httpx_mock.get_requests() == []


# --- prices ---------------------------------------------------------------------------------


async def test_price_in_another_currency_is_reported_not_written(httpx_mock: HTTPXMock) -> None:
    async with httpx.AsyncClient() as http:
        shop = connect(ShopifyConnector, connection(currency="USD"), http)
        price = Price(source=ERP, sku="X", currency="EUR", base=Decimal(1), effective_at=NOW)
        result = await shop.deliver(make_event("price.changed", price, NOW), DeliveryContext())
    assert [f.kind for f in result.findings] == ["currency_mismatch"]
    assert httpx_mock.get_requests() == []


# --- products -------------------------------------------------------------------------------


def product(**fields: Any) -> CanonicalEvent:
    item = Product(source=ERP, sku="TSHIRT-RED-M", title="T-shirt red M", updated_at=NOW, **fields)
    return make_event("product.upserted", item, NOW)


# --- customers ------------------------------------------------------------------------------


def customer_event(**fields: Any) -> CanonicalEvent:
    customer = Customer(
        source=ERP,
        external_id="C-1",
        email="ada@example.com",
        first_name="Ada",
        updated_at=NOW,
        **fields,
    )
    return make_event("customer.upserted", customer, NOW)


async def test_customer_found_by_email_is_updated(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        method="GET",
        url=re.compile(re.escape(f"{API}/customers/search.json") + r"\?.*"),
        json={"customers": [{"id": 8, "email": "ADA@example.com"}]},
    )
    httpx_mock.add_response(method="PUT", url=f"{API}/customers/8.json", json={})
    result = await shop.deliver(customer_event(), DeliveryContext())
    search, update = httpx_mock.get_requests()
    assert search.url.params["query"] == 'email:"ada@example.com"'
    assert body(update)["customer"]["id"] == 8
    assert [(link.entity_type, link.remote_id) for link in result.links] == [("customer", "8")]


async def test_linked_customer_is_updated_directly(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="PUT", url=f"{API}/customers/9.json", json={})
    ctx = DeliveryContext(links={("customer", "erp:customer:C-1"): "9"})
    await shop.deliver(customer_event(), ctx)
    assert len(httpx_mock.get_requests()) == 1


async def test_unknown_customer_is_created_with_addresses_group_and_consent(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        method="GET",
        url=re.compile(re.escape(f"{API}/customers/search.json") + r"\?.*"),
        json={"customers": []},
    )
    httpx_mock.add_response(
        method="POST", url=f"{API}/customers.json", json={"customer": {"id": 10}}, status_code=201
    )
    event = customer_event(
        addresses=[Address(line1="1 Main St", city="Paris", country_code="FR")],
        default_shipping=0,
        group="wholesale",
        accepts_marketing=True,
        tax_exempt=True,
    )
    await shop.deliver(event, DeliveryContext())
    _search, create = httpx_mock.get_requests()
    sent = body(create)["customer"]
    assert sent["addresses"] == [
        {"address1": "1 Main St", "city": "Paris", "country_code": "FR", "default": True}
    ]
    assert sent["tags"] == "group:wholesale" and sent["tax_exempt"] is True
    assert sent["email_marketing_consent"]["state"] == "subscribed"


# --- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "payload", "error", "text"),
    [
        (429, {"errors": "Exceeded"}, RateLimitedError, "rate limit"),
        (503, {"errors": "Service Unavailable"}, TransientError, "503"),
        (401, {"errors": "[API] Invalid API key"}, PermanentError, "access_token"),
        (403, {"errors": "scope"}, PermanentError, "scopes"),
        (404, {"errors": "Not Found"}, PermanentError, "not found"),
        (422, {"errors": {"price": ["is not a number"]}}, PermanentError, "price is not a number"),
    ],
)
async def test_http_errors_become_typed_errors(
    shop: ShopifyConnector,
    httpx_mock: HTTPXMock,
    status: int,
    payload: Any,
    error: type[Exception],
    text: str,
) -> None:
    httpx_mock.add_response(
        method="PUT",
        url=f"{API}/customers/9.json",
        status_code=status,
        json=payload,
        headers={"Retry-After": "1.5", "X-Shopify-Shop-Api-Call-Limit": "40/40"},
    )
    if status == 404:  # a stale link: the connector looks again by e-mail before giving up
        httpx_mock.add_response(
            method="GET",
            url=re.compile(re.escape(f"{API}/customers/search.json") + r"\?.*"),
            status_code=404,
            json=payload,
        )
    ctx = DeliveryContext(links={("customer", "erp:customer:C-1"): "9"})
    with pytest.raises(error) as caught:
        await shop.deliver(customer_event(), ctx)
    assert text in str(caught.value)
    if isinstance(caught.value, RateLimitedError):
        assert caught.value.retry_after == 1.5


async def test_timeout_is_transient(shop: ShopifyConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), method="POST", url=GRAPHQL)
    with pytest.raises(TransientError, match="timed out"):
        await shop.deliver(availability(), DeliveryContext())


async def test_graphql_throttle_is_rate_limited(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        method="POST",
        url=GRAPHQL,
        json={"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]},
    )
    with pytest.raises(RateLimitedError):
        await shop.deliver(availability(), DeliveryContext())


async def test_missing_access_token_is_refused_at_start() -> None:
    config = connection()
    config.credentials.pop("access_token")
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError, match=r"access_token\s+Field required"):
            connect(ShopifyConnector, config, http)


async def test_event_it_cannot_take_is_permanent(shop: ShopifyConnector) -> None:
    price = Price(source=ERP, sku="X", currency="EUR", base=Decimal(1), effective_at=NOW)
    event = make_event("price.changed", price, NOW).model_copy(update={"type": "order.created"})
    with pytest.raises(PermanentError, match=r"cannot receive order\.created"):
        await shop.deliver(event, DeliveryContext())


# --- shipments ------------------------------------------------------------------------------

ORDER = {
    "order": {
        "id": int(ORDER_ID),
        "name": "#1001",
        "line_items": [
            {"id": 701, "sku": "A", "quantity": 3},
            {"id": 702, "sku": "B", "quantity": 2},
        ],
        "fulfillments": [],
    }
}
FULFILLMENT_ORDERS = {
    "fulfillment_orders": [
        {
            "id": 900,
            "status": "open",
            "line_items": [
                {"id": 901, "line_item_id": 701, "quantity": 3, "fulfillable_quantity": 3},
                {"id": 902, "line_item_id": 702, "quantity": 2, "fulfillable_quantity": 2},
            ],
        }
    ]
}
ORDER_URL = re.compile(re.escape(f"{API}/orders/{ORDER_ID}.json") + r"\?.*")


def shipment(*packages: Package, kind: str = "shipment.created") -> CanonicalEvent:
    item = Shipment(source=ERP, external_id="IF-1", order_key=ORDER_KEY, packages=list(packages))
    return make_event(kind, item, NOW)


def package(number: str, *lines: tuple[str, int]) -> Package:
    return Package(
        tracking_number=number,
        carrier="ups_ground",
        tracking_url=f"https://ups.example/{number}",
        lines=[ShipmentLine(sku=sku, quantity=Decimal(q)) for sku, q in lines],
    )


async def test_order_of_another_store_is_permanent(shop: ShopifyConnector) -> None:
    item = Shipment(source=ERP, external_id="IF-2", order_key="shop-us:order:1", packages=[])
    with pytest.raises(PermanentError, match="did not come from Shopify connection 'shop-eu'"):
        await shop.deliver(make_event("shipment.created", item, NOW), DeliveryContext())


# --- credit memos ---------------------------------------------------------------------------


def memo(amount: str = "30.00", restock: bool = True) -> CanonicalEvent:
    item = CreditMemo(
        source=ERP,
        external_id="CM-1",
        order_key=ORDER_KEY,
        amount=Money(amount=Decimal(amount), currency="USD"),
        lines=[
            MoneyLine(
                sku="A", quantity=Decimal(1), amount=Money(amount=Decimal("30.00"), currency="USD")
            )
        ],
        restock=[
            ReturnLine(
                sku="A", quantity=Decimal(1), disposition="restock" if restock else "damaged"
            )
        ],
        created_at=NOW,
    )
    return make_event("credit_memo.created", item, NOW)


REFUNDS_URL = f"{API}/orders/{ORDER_ID}/refunds.json"


async def test_linked_memo_makes_no_call(shop: ShopifyConnector, httpx_mock: HTTPXMock) -> None:
    ctx = DeliveryContext(links={("refund", "erp:credit_memo:CM-1"): "321"})
    result = await shop.deliver(memo(), ctx)
    assert httpx_mock.get_requests() == [] and result.links[0].remote_id == "321"


# --- availability read-back -----------------------------------------------------------------


async def test_fetch_availability_maps_levels_back_to_skus(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    mock_variants(httpx_mock, variant_node("A", 1, 31), variant_node("B", 2, 32))
    httpx_mock.add_response(
        method="GET",
        url=re.compile(re.escape(f"{API}/inventory_levels.json") + r"\?.*"),
        json={
            "inventory_levels": [
                {"inventory_item_id": 31, "location_id": 555, "available": 4},
                {"inventory_item_id": 32, "location_id": 555, "available": None},
            ]
        },
    )
    levels = await shop.fetch_availability(["A", "B", "UNKNOWN"])
    assert levels == {("A", "555"): Decimal(4), ("B", "555"): Decimal(0)}
    read = httpx_mock.get_requests()[-1]
    assert read.url.params["inventory_item_ids"] == "31,32"
    assert read.url.params["location_ids"] == "555"
