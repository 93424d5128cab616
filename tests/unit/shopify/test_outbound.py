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
from kernel.canonical.product import Price, Product, SalePrice
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


async def test_availability_looks_up_the_sku_then_sets_the_level(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    # Shopify's search is loose: a longer SKU comes back too and must be ignored.
    mock_variants(
        httpx_mock, variant_node("TSHIRT-RED-M-XL", 99, 98, 97), variant_node("TSHIRT-RED-M")
    )
    httpx_mock.add_response(method="POST", url=f"{API}/inventory_levels/set.json", json={})
    result = await shop.deliver(availability("7.9"), DeliveryContext())
    lookup, write = httpx_mock.get_requests()
    assert lookup.headers["X-Shopify-Access-Token"] == TOKEN
    assert body(lookup)["variables"]["query"] == 'sku:"TSHIRT-RED-M"'
    assert body(write) == {"location_id": 555, "inventory_item_id": 33, "available": 7}
    assert {(link.entity_type, link.our_key, link.remote_id) for link in result.links} == {
        ("product", PRODUCT_KEY, "11"),
        ("inventory_item", PRODUCT_KEY, "33"),
        ("shopify_product", PRODUCT_KEY, "22"),
    }
    assert [f.kind for f in result.findings] == ["fractional_stock"]


async def test_linked_sku_needs_no_lookup_and_event_location_wins(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=f"{API}/inventory_levels/set.json", json={})
    await shop.deliver(availability("-3", location="777"), linked())
    (write,) = httpx_mock.get_requests()
    assert body(write) == {"location_id": 777, "inventory_item_id": 33, "available": 0}


async def test_unknown_sku_is_permanent_and_says_what_to_do(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    mock_variants(httpx_mock)
    with pytest.raises(PermanentError, match="does not exist in the Shopify store") as caught:
        await shop.deliver(availability(), DeliveryContext())
    assert "replay" in caught.value.message


async def test_stale_link_gets_one_fresh_lookup(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        method="PUT", url=f"{API}/variants/11.json", status_code=404, json={"errors": "Not Found"}
    )
    mock_variants(httpx_mock, variant_node("TSHIRT-RED-M", variant=44, item=45, product=46))
    httpx_mock.add_response(method="PUT", url=f"{API}/variants/44.json", json={})
    price = Price(
        source=ERP, sku="TSHIRT-RED-M", currency="USD", base=Decimal("19.99"), effective_at=NOW
    )
    result = await shop.deliver(make_event("price.changed", price, NOW), linked())
    assert ("product", PRODUCT_KEY, "44") in {
        (link.entity_type, link.our_key, link.remote_id) for link in result.links
    }


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


@pytest.mark.parametrize("delta", [None, "-3"])
async def test_absolute_or_no_delta_sets_the_level(
    shop: ShopifyConnector, httpx_mock: HTTPXMock, delta: str | None
) -> None:
    httpx_mock.add_response(method="POST", url=f"{API}/inventory_levels/set.json", json={})
    absolute = {"absolute": True} if delta is not None else {}
    result = await shop.deliver(availability("12"), delta_ctx(delta, **absolute))
    (write,) = httpx_mock.get_requests()
    assert write.url == f"{API}/inventory_levels/set.json"
    assert body(write) == {"location_id": 555, "inventory_item_id": 33, "available": 12}
    assert result.summary.startswith("set TSHIRT-RED-M available=12 at location 555")


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


@pytest.mark.parametrize(
    ("sale", "expected"),
    [
        (None, {"id": 11, "price": "19.99", "compare_at_price": None}),
        (
            SalePrice(price=Decimal("14.50")),
            {"id": 11, "price": "14.50", "compare_at_price": "19.99"},
        ),
    ],
)
async def test_price_with_and_without_a_sale(
    shop: ShopifyConnector, httpx_mock: HTTPXMock, sale: SalePrice | None, expected: dict[str, Any]
) -> None:
    httpx_mock.add_response(method="PUT", url=f"{API}/variants/11.json", json={})
    price = Price(
        source=ERP,
        sku="TSHIRT-RED-M",
        currency="USD",
        base=Decimal("19.99"),
        sale=sale,
        effective_at=NOW,
    )
    await shop.deliver(make_event("price.changed", price, NOW), linked())
    (request,) = httpx_mock.get_requests()
    assert body(request) == {"variant": expected}


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


async def test_new_product_is_created_with_its_variant(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    mock_variants(httpx_mock)
    created = {"product": {"id": 22, "variants": [{"id": 11, "inventory_item_id": 33}]}}
    httpx_mock.add_response(
        method="POST", url=f"{API}/products.json", json=created, status_code=201
    )
    result = await shop.deliver(
        product(options={"size": "M"}, weight=Decimal("0.2"), weight_unit="KG"), DeliveryContext()
    )
    _lookup, create = httpx_mock.get_requests()
    sent = body(create)["product"]
    assert sent["title"] == "T-shirt red M" and sent["status"] == "active"
    assert sent["options"] == [{"name": "size"}]
    assert sent["variants"] == [
        {
            "sku": "TSHIRT-RED-M",
            "weight": "0.2",
            "weight_unit": "kg",
            "inventory_management": "shopify",
            "option1": "M",
        }
    ]
    assert ("shopify_product", PRODUCT_KEY, "22") in {
        (link.entity_type, link.our_key, link.remote_id) for link in result.links
    }


async def test_known_product_is_updated_without_touching_other_variants(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="PUT", url=f"{API}/products/22.json", json={})
    httpx_mock.add_response(method="PUT", url=f"{API}/variants/11.json", json={})
    await shop.deliver(product(barcode="4006381333931", status="draft"), linked())
    update, variant = httpx_mock.get_requests()
    assert body(update) == {"product": {"id": 22, "title": "T-shirt red M", "status": "draft"}}
    assert "variants" not in body(update)["product"]
    assert body(variant) == {
        "variant": {"id": 11, "sku": "TSHIRT-RED-M", "barcode": "4006381333931"}
    }


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


async def test_one_fulfillment_per_package_with_tracking_and_notify(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(method="GET", url=ORDER_URL, json=ORDER)
    httpx_mock.add_response(
        method="GET",
        url=f"{API}/orders/{ORDER_ID}/fulfillment_orders.json",
        json=FULFILLMENT_ORDERS,
    )
    for fid in (1, 2):
        httpx_mock.add_response(
            method="POST", url=f"{API}/fulfillments.json", json={"fulfillment": {"id": fid}}
        )
    async with httpx.AsyncClient() as http:
        shop = connect(ShopifyConnector, connection(carrier_names={"ups_ground": "UPS"}), http)
        event = shipment(package("1Z1", ("A", 2)), package("1Z2", ("A", 1), ("B", 2)))
        result = await shop.deliver(event, DeliveryContext(directives={"notify_customer": True}))
    _order, _fos, first, second = httpx_mock.get_requests()
    assert body(first) == {
        "fulfillment": {
            "line_items_by_fulfillment_order": [
                {
                    "fulfillment_order_id": 900,
                    "fulfillment_order_line_items": [{"id": 901, "quantity": 2}],
                }
            ],
            "notify_customer": True,
            "tracking_info": {"company": "UPS", "number": "1Z1", "url": "https://ups.example/1Z1"},
        }
    }
    assert body(second)["fulfillment"]["line_items_by_fulfillment_order"][0][
        "fulfillment_order_line_items"
    ] == [{"id": 901, "quantity": 1}, {"id": 902, "quantity": 2}]
    assert [(link.entity_type, link.our_key, link.remote_id) for link in result.links] == [
        ("fulfillment", "erp:shipment:IF-1#0", "1"),
        ("fulfillment", "erp:shipment:IF-1#1", "2"),
    ]


async def test_retried_shipment_creates_no_second_fulfillment(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    # The first attempt's POST went through but its answer was lost: no link was saved,
    # yet the order already carries a fulfillment with the package's tracking number.
    order = json.loads(json.dumps(ORDER))
    order["order"]["fulfillments"] = [
        {"id": 77, "status": "success", "tracking_number": "1Z1", "tracking_numbers": ["1Z1"]}
    ]
    httpx_mock.add_response(method="GET", url=ORDER_URL, json=order)
    result = await shop.deliver(shipment(package("1Z1", ("A", 2))), DeliveryContext())
    assert [r.method for r in httpx_mock.get_requests()] == ["GET"]  # no POST
    assert [link.remote_id for link in result.links] == ["77"]


async def test_linked_package_is_skipped(shop: ShopifyConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", url=ORDER_URL, json=ORDER)
    ctx = DeliveryContext(links={("fulfillment", "erp:shipment:IF-1#0"): "55"})
    result = await shop.deliver(shipment(package("1Z1", ("A", 2))), ctx)
    assert len(httpx_mock.get_requests()) == 1
    assert "0 fulfillment(s) created, 1 already there" in result.summary


async def test_updated_tracking_number_is_sent_for_a_known_package(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    order = json.loads(json.dumps(ORDER))
    order["order"]["fulfillments"] = [{"id": 55, "status": "success", "tracking_number": "OLD"}]
    httpx_mock.add_response(method="GET", url=ORDER_URL, json=order)
    httpx_mock.add_response(
        method="POST", url=f"{API}/fulfillments/55/update_tracking.json", json={}
    )
    ctx = DeliveryContext(links={("fulfillment", "erp:shipment:IF-1#0"): "55"})
    await shop.deliver(shipment(package("NEW", ("A", 2)), kind="shipment.updated"), ctx)
    update = httpx_mock.get_requests()[-1]
    assert body(update)["fulfillment"]["tracking_info"]["number"] == "NEW"


async def test_sku_not_on_the_order_is_permanent(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="GET", url=ORDER_URL, json=ORDER)
    httpx_mock.add_response(
        method="GET",
        url=f"{API}/orders/{ORDER_ID}/fulfillment_orders.json",
        json=FULFILLMENT_ORDERS,
    )
    with pytest.raises(PermanentError, match=r"'Z' .* is not on Shopify order #1001"):
        await shop.deliver(shipment(package("1Z9", ("Z", 1))), DeliveryContext())


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


async def test_credit_memo_becomes_a_refund(shop: ShopifyConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", url=REFUNDS_URL, json={"refunds": []})
    httpx_mock.add_response(
        method="GET", url=ORDER_URL, json={"order": {**ORDER["order"], "currency": "USD"}}
    )
    httpx_mock.add_response(
        method="POST",
        url=f"{API}/orders/{ORDER_ID}/refunds/calculate.json",
        json={
            "refund": {
                "transactions": [
                    {
                        "parent_id": 5,
                        "gateway": "shopify_payments",
                        "kind": "suggested_refund",
                        "amount": "30.00",
                        "maximum_refundable": "100.00",
                    }
                ]
            }
        },
    )
    httpx_mock.add_response(method="POST", url=REFUNDS_URL, json={"refund": {"id": 321}})
    result = await shop.deliver(memo(), DeliveryContext())
    *_, calculate, create = httpx_mock.get_requests()
    lines = [{"line_item_id": 701, "quantity": 1, "restock_type": "return", "location_id": 555}]
    assert body(calculate) == {"refund": {"refund_line_items": lines}}
    assert body(create)["refund"] == {
        "note": "credit memo CM-1",
        "notify": False,
        "currency": "USD",
        "refund_line_items": lines,
        "transactions": [
            {"parent_id": 5, "amount": "30.00", "kind": "refund", "gateway": "shopify_payments"}
        ],
    }
    assert [(link.entity_type, link.remote_id) for link in result.links] == [("refund", "321")]


@pytest.mark.parametrize(
    "existing",
    [
        # the store refunded first; the memo is the ERP's booking of it
        {
            "id": 400,
            "note": "damaged",
            "transactions": [{"kind": "refund", "status": "success", "amount": "30.00"}],
        },
        # our own earlier attempt whose answer was lost (amount differs: still ours)
        {
            "id": 401,
            "note": "credit memo CM-1",
            "transactions": [{"kind": "refund", "status": "success", "amount": "29.00"}],
        },
    ],
)
async def test_retried_or_already_refunded_memo_makes_no_refund(
    shop: ShopifyConnector, httpx_mock: HTTPXMock, existing: dict[str, Any]
) -> None:
    httpx_mock.add_response(method="GET", url=REFUNDS_URL, json={"refunds": [existing]})
    result = await shop.deliver(memo(), DeliveryContext())
    assert [r.method for r in httpx_mock.get_requests()] == ["GET"]
    assert [f.kind for f in result.findings] == ["refund_exists"]
    assert result.links[0].remote_id == str(existing["id"])


async def test_refund_of_another_memo_with_the_same_amount_does_not_count(
    shop: ShopifyConnector, httpx_mock: HTTPXMock
) -> None:
    other = {
        "id": 402,
        "note": "credit memo CM-0",
        "transactions": [{"kind": "refund", "status": "success", "amount": "30.00"}],
    }
    httpx_mock.add_response(method="GET", url=REFUNDS_URL, json={"refunds": [other]})
    httpx_mock.add_response(
        method="GET", url=ORDER_URL, json={"order": {**ORDER["order"], "currency": "USD"}}
    )
    httpx_mock.add_response(
        method="POST",
        url=f"{API}/orders/{ORDER_ID}/refunds/calculate.json",
        json={"refund": {"transactions": [{"parent_id": 5, "maximum_refundable": "10.00"}]}},
    )
    with pytest.raises(PermanentError, match=r"can refund at most 10\.00"):
        await shop.deliver(memo(restock=False), DeliveryContext())


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
