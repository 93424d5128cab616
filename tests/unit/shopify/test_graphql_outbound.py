"""Issue 10 item 11: the Shopify connector writes through the GraphQL Admin API, against the
simulator's GraphQL endpoint (graphql-core over a subset of Shopify's documented schema).

Each test names what broke on the REST path: a product per variant (no grouping, 100 at most
per product through REST), a refund with no idempotency key, a blind absolute stock write
that undoes a sale, a fixed 1 s wait on THROTTLED, userErrors without their field.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.config import ConnectionConfig
from app.delivery.outcomes import classify
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.refunds import refund_key
from kernel.canonical.common import Money
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import StockAvailability
from kernel.canonical.product import Price, Product
from kernel.canonical.returns import CreditMemo, MoneyLine
from kernel.errors import PermanentError, RateLimitedError
from kernel.types import DeliveryContext
from simulators.shopify.simulator import ShopifySimulator, create_app
from simulators.shopify.store import DEFAULT_LOCATION_ID
from tests.support.connectors import connect
from tests.unit.shopify.conftest import SECRET

TOKEN = "shpat_graphql"
SHOP = "shop-eu"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
LOCATION = str(DEFAULT_LOCATION_ID)
Hook = Callable[[httpx.Request], Awaitable[None]]


class Tap(httpx.AsyncBaseTransport):
    """The simulator's transport, with a hook before each request and a way to lose the
    answer of the next matching one (the write is applied, the caller sees a timeout)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.before: Hook | None = None
        self.lose: Callable[[httpx.Request], bool] | None = None
        self.bodies: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("graphql.json"):
            self.bodies.append(json.loads(request.content))
        if self.before is not None:
            await self.before(request)
        response = await self.inner.handle_async_request(request)
        if self.lose is not None and self.lose(request):
            self.lose = None
            await response.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


@dataclass
class Shop:
    connector: ShopifyConnector
    sim: ShopifySimulator
    tap: Tap


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    app = create_app(access_token=TOKEN, bucket_size=100_000)
    tap = Tap(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=tap) as http:
        conn = ConnectionConfig(
            id=SHOP,
            type="shopify",
            base_url="https://shop-eu.myshopify.com",
            credentials={"webhook_secret": SECRET, "access_token": TOKEN},
            options={"location_id": LOCATION},
        )
        yield Shop(connect(ShopifyConnector, conn, http), app.state.simulator, tap)


def mutation_of(body: dict[str, Any]) -> str:
    return body["query"].split("(", 1)[0].split()[-1]


# --- products ----------------------------------------------------------------------------------


def variant_event(parent: str, size: int) -> CanonicalEvent:
    product = Product(
        source="erp",
        sku=f"{parent}-{size:03d}",
        title=f"Tee size {size}",
        parent_sku=parent,
        options={"Size": f"S{size:03d}"},
        updated_at=NOW,
    )
    return make_event("product.upserted", product, NOW)


async def test_a_product_with_150_variants_is_one_product(shop: Shop) -> None:
    # REST made one product per SKU (parent_sku ignored) and takes at most 100 variants
    shop.sim.store.graphql_restore_rate = 100_000.0  # a burst of 450 calls, not a rate test
    links = []
    for size in range(150):
        result = await shop.connector.deliver(variant_event("TEE", size), DeliveryContext())
        links.append({(link.entity_type, link.remote_id) for link in result.links})
    store = shop.sim.store
    assert len(store.products) == 1
    (product,) = store.products.values()
    assert product["handle"] == "tee"
    assert len(product["variants"]) == 150
    assert {v["sku"] for v in product["variants"]} == {f"TEE-{n:03d}" for n in range(150)}
    assert all(("shopify_product", str(product["id"])) in found for found in links)
    mutations = [mutation_of(b) for b in shop.tap.bodies if b["query"].lstrip().startswith("mut")]
    assert mutations.count("ProductSet") == 1
    assert mutations.count("VariantsBulkCreate") == 149


async def test_a_variant_whose_create_answer_was_lost_is_not_created_twice(shop: Shop) -> None:
    await shop.connector.deliver(variant_event("POLO", 1), DeliveryContext())
    shop.tap.lose = lambda r: b"productVariantsBulkCreate" in r.content
    with pytest.raises(Exception, match="timed out"):
        await shop.connector.deliver(variant_event("POLO", 2), DeliveryContext())
    shop.connector.admin.variants.clear()  # another worker: nothing cached
    result = await shop.connector.deliver(variant_event("POLO", 2), DeliveryContext())
    (product,) = shop.sim.store.products.values()
    assert [v["sku"] for v in product["variants"]] == ["POLO-001", "POLO-002"]
    assert ("product", str(product["variants"][1]["id"])) in {
        (link.entity_type, link.remote_id) for link in result.links
    }


# --- refunds -----------------------------------------------------------------------------------


def memo_for(order: dict[str, Any]) -> CanonicalEvent:
    line = order["line_items"][0]
    amount = Money(amount=Decimal(line["price"]), currency=order["currency"])
    memo = CreditMemo(
        source="erp",
        external_id="CM-77",
        order_key=f"{SHOP}:order:{order['id']}",
        amount=amount,
        lines=[MoneyLine(sku=line["sku"], quantity=Decimal(1), amount=amount)],
        created_at=NOW,
    )
    return make_event("credit_memo.created", memo, NOW)


async def test_a_refund_retried_after_a_timeout_is_not_created_twice(shop: Shop) -> None:
    shop.sim.store.seed({"sku": "MUG", "price": "12.00", "available": 5})
    order = shop.sim.new_order(skus=["MUG"], quantities=[2])
    event = memo_for(order)
    shop.tap.lose = lambda r: b"refundCreate" in r.content
    with pytest.raises(Exception, match="timed out"):
        await shop.connector.deliver(event, DeliveryContext())
    result = await shop.connector.deliver(event, DeliveryContext())
    assert len(shop.sim.orders[int(order["id"])]["refunds"]) == 1
    assert [link.entity_type for link in result.links] == ["refund"]
    # the write carried Shopify's @idempotent key, derived from the memo: the same request
    # sent again (a retry racing the first) is answered with the first refund
    (first,) = [b for b in shop.tap.bodies if "refundCreate" in b["query"]]
    assert "@idempotent(key: $key)" in first["query"]
    assert first["variables"]["key"] == refund_key(event.payload_as(CreditMemo))
    again = await shop.connector.admin.graphql(first["query"], first["variables"], what="again")
    assert again["refundCreate"]["userErrors"] == []
    assert len(shop.sim.orders[int(order["id"])]["refunds"]) == 1


# --- stock -------------------------------------------------------------------------------------


def correction(sku: str, available: int) -> tuple[CanonicalEvent, DeliveryContext]:
    stock = StockAvailability(
        source="erp", sku=sku, available=Decimal(available), status="in_stock", as_of=NOW
    )
    ctx = DeliveryContext(directives={"absolute": True, "idempotency_key": "dlv-correction-1"})
    return make_event("inventory.availability_changed", stock, NOW), ctx


def is_stock_write(request: httpx.Request) -> bool:
    return request.url.path.endswith("inventory_levels/set.json") or (
        b"inventorySetQuantities" in request.content
    )


async def test_a_stock_correction_racing_a_sale_does_not_undo_it(shop: Shop) -> None:
    store = shop.sim.store
    store.seed({"sku": "LAMP", "price": "40.00", "available": 10})
    sold: list[int] = []

    async def shopper_buys_one(request: httpx.Request) -> None:
        if is_stock_write(request) and not sold:  # between our read and our write
            item = store.variant_by_sku("LAMP")["inventory_item_id"]  # type: ignore[index]
            store.adjust(item, DEFAULT_LOCATION_ID, -1)
            sold.append(1)

    shop.tap.before = shopper_buys_one
    event, ctx = correction("LAMP", 7)
    result = await shop.connector.deliver(event, ctx)
    # the ERP's 7 did not know of the sale: the store keeps it (6), a blind set made it 7
    assert store.available("LAMP") == 6
    assert [f.kind for f in result.findings] == ["stock_sale_kept"]
    sets = [b for b in shop.tap.bodies if "inventorySetQuantities" in b["query"]]
    assert [b["variables"]["input"]["quantities"][0]["changeFromQuantity"] for b in sets] == [
        10,
        9,
    ]


async def test_a_correction_retried_after_its_answer_was_lost_does_not_set_twice(
    shop: Shop,
) -> None:
    store = shop.sim.store
    store.seed({"sku": "DESK", "price": "90.00", "available": 3})
    event, ctx = correction("DESK", 8)
    shop.tap.lose = is_stock_write
    with pytest.raises(Exception, match="timed out"):
        await shop.connector.deliver(event, ctx)
    item = store.variant_by_sku("DESK")["inventory_item_id"]  # type: ignore[index]
    store.adjust(item, DEFAULT_LOCATION_ID, -2)  # two sold after our write went through
    result = await shop.connector.deliver(event, ctx)
    assert store.available("DESK") == 6  # 8 set once, the 2 sales kept
    assert "earlier attempt" in result.summary


# --- errors ------------------------------------------------------------------------------------


def linked_price() -> tuple[CanonicalEvent, DeliveryContext]:
    price = Price(source="erp", sku="CAP", currency="USD", base=Decimal("9.50"), effective_at=NOW)
    return make_event("price.changed", price, NOW), DeliveryContext()


async def test_throttled_waits_for_the_bucket_without_burning_an_attempt(shop: Shop) -> None:
    shop.sim.store.seed({"sku": "CAP", "price": "8.00", "available": 1})
    await shop.connector.admin.find_variants(["CAP"])
    shop.sim.store.throttle_next = 1  # the price mutation (cost 10) finds 5 points left
    event, ctx = linked_price()
    with pytest.raises(RateLimitedError) as caught:
        await shop.connector.deliver(event, ctx)
    # (requestedQueryCost 10 - currentlyAvailable 5) / restoreRate 100
    assert caught.value.retry_after == pytest.approx(0.05)
    assert classify(caught.value) == ("rate_limited", False)  # not an attempt
    await asyncio.sleep(caught.value.retry_after + 0.02)  # the bucket has restored enough
    await shop.connector.deliver(event, ctx)
    assert shop.sim.store.variant_by_sku("CAP")["price"] == "9.50"  # type: ignore[index]


async def test_user_errors_are_permanent_and_keep_their_field(shop: Shop) -> None:
    async def refuse(request: httpx.Request) -> None:
        if b"productVariantsBulkUpdate" in request.content:
            raise _Answer(
                {
                    "data": {
                        "productVariantsBulkUpdate": {
                            "productVariants": None,
                            "userErrors": [
                                {
                                    "field": ["variants", "0", "price"],
                                    "message": "Price must be less than 1000000000000000000",
                                    "code": "INVALID_INPUT",
                                }
                            ],
                        }
                    }
                }
            )

    shop.sim.store.seed({"sku": "CAP", "price": "8.00", "available": 1})
    shop.tap.before = refuse
    event, ctx = linked_price()
    with pytest.raises(PermanentError) as caught:
        try:
            await shop.connector.deliver(event, ctx)
        except _Answer as answer:  # the tap answers in Shopify's shape (HTTP 200)
            raise AssertionError("unreachable") from answer
    assert "variants.0.price: Price must be less than" in caught.value.message
    assert "(INVALID_INPUT)" in caught.value.message
    assert caught.value.detail[0]["field"] == ["variants", "0", "price"]
    assert classify(caught.value) == ("permanent", True)


class _Answer(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("answer")
        self.body = body


@pytest.fixture(autouse=True)
def _answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook may answer in the remote's place by raising _Answer."""
    original = Tap.handle_async_request

    async def handle(self: Tap, request: httpx.Request) -> httpx.Response:
        try:
            return await original(self, request)
        except _Answer as answer:
            return httpx.Response(200, json=answer.body, request=request)

    monkeypatch.setattr(Tap, "handle_async_request", handle)
