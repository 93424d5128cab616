"""The connector against the simulated store: the business scenarios end to end in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.config import ConnectionConfig
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.inbound import verify_hmac
from connectors.shopify.webhooks import parse_webhook
from kernel.canonical.common import Money
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import StockAvailability
from kernel.canonical.product import Price, Product, SalePrice
from kernel.canonical.returns import CreditMemo, MoneyLine, ReturnLine
from kernel.canonical.shipment import Package, Shipment, ShipmentLine
from kernel.errors import PermanentError, RateLimitedError
from kernel.types import DeliveryContext, DeliveryResult
from simulators.shopify.simulator import create_app
from simulators.shopify.store import DEFAULT_LOCATION_ID
from tests.support.connectors import connect
from tests.unit.shopify.conftest import SECRET

TOKEN = "shpat_store_sim"
SHOP = "shop-eu"
ERP = "erp"
NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)
LOCATION = str(DEFAULT_LOCATION_ID)


class Gateway:
    """Stands in for the gateway's webhook endpoint: checks the signature, parses."""

    def __init__(self) -> None:
        self.events: list[CanonicalEvent] = []
        self.topics: list[str] = []
        self.failures = 0  # answer this many next webhooks with a 503
        self.seen: list[tuple[str, bytes]] = []  # (webhook id, body) of every request

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.headers["x-shopify-webhook-id"], request.content))
        if self.failures:
            self.failures -= 1
            return httpx.Response(503)
        verify_hmac(request.content, request.headers.get("x-shopify-hmac-sha256"), SECRET)
        parsed = parse_webhook(request.headers, request.content, SHOP)
        self.topics.append(parsed.topic)
        self.events.extend(parsed.events)
        return httpx.Response(202, json={"event_ids": [], "duplicate": False})


@dataclass
class World:
    shop: ShopifyConnector
    control: httpx.AsyncClient
    gateway: Gateway

    async def seed(self, **skus: int) -> None:
        products = [{"sku": s, "price": "10.00", "available": n} for s, n in skus.items()]
        response = await self.control.post("/_sim/products", json={"products": products})
        assert response.status_code == 201, response.text

    async def state(self) -> dict[str, Any]:
        return (await self.control.get("/_sim/state")).json()

    async def checkout(self, **lines: int) -> httpx.Response:
        items = [{"sku": s, "quantity": q} for s, q in lines.items()]
        return await self.control.post("/_sim/checkout", json={"line_items": items})


def connection(token: str = TOKEN) -> ConnectionConfig:
    return ConnectionConfig(
        id=SHOP,
        type="shopify",
        base_url="https://shop-eu.myshopify.com",
        credentials={"webhook_secret": SECRET, "access_token": token},
        options={"location_id": LOCATION},
    )


@pytest.fixture
async def world() -> AsyncIterator[World]:
    gateway = Gateway()
    async with httpx.AsyncClient(transport=httpx.MockTransport(gateway)) as hooks:
        app = create_app(access_token=TOKEN, webhook_client=hooks, bucket_size=1000)
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport) as api,
            httpx.AsyncClient(transport=transport, base_url="http://sim") as control,
        ):
            target = {"url": "http://gateway/webhooks/shop-eu", "secret": SECRET}
            assert (await control.post("/_sim/webhooks", json=target)).status_code == 200
            yield World(connect(ShopifyConnector, connection(), api), control, gateway)


def availability(sku: str, available: int) -> CanonicalEvent:
    stock = StockAvailability(
        source=ERP, sku=sku, available=Decimal(available), status="in_stock", as_of=NOW
    )
    return make_event("inventory.availability_changed", stock, NOW)


async def deliver(world: World, event: CanonicalEvent, **links: str) -> DeliveryResult:
    ctx = DeliveryContext(directives={"notify_customer": True})
    for key, remote in links.items():
        entity, _, our = key.partition("|")
        ctx.links[(entity, our)] = remote
    return await world.shop.deliver(event, ctx)


# --- inventory and checkout ------------------------------------------------------------------


async def test_inventory_set_then_read_back(world: World) -> None:
    await world.seed(A=0, B=3)
    await deliver(world, availability("A", 5))
    levels = await world.shop.fetch_availability(["A", "B", "NOPE"])
    assert levels == {("A", LOCATION): Decimal(5), ("B", LOCATION): Decimal(3)}
    assert (await world.state())["inventory"]["A"] == {LOCATION: 5}


async def test_unknown_sku_in_the_store_is_permanent(world: World) -> None:
    await world.seed(AB=1)  # the search matches AB for "A"; the connector must not
    with pytest.raises(PermanentError, match="'A' does not exist"):
        await deliver(world, availability("A", 5))


async def test_checkout_is_refused_when_the_store_has_none(world: World) -> None:
    await world.seed(A=0)
    refused = await world.checkout(A=1)
    assert refused.status_code == 409
    assert refused.json()["reason"] == "out of stock"
    await deliver(world, availability("A", 2))
    assert (await world.checkout(A=2)).status_code == 201
    assert (await world.checkout(A=1)).status_code == 409
    state = await world.state()
    assert state["checkouts"]["A"] == {"accepted": 1, "refused": 2}
    assert state["inventory"]["A"] == {LOCATION: 0}
    assert state["oversells"] == 0
    # the accepted checkout reached the gateway as a signed orders/create
    (order,) = [e for e in world.gateway.events if e.type == "order.created"]
    assert order.payload.lines[0].sku == "A"


async def test_a_failed_webhook_is_re_sent_unchanged_as_shopify_does(world: World) -> None:
    sim = world.control._transport.app.state.simulator  # type: ignore[attr-defined]
    sim.webhook_retry_delays = (0.01, 0.01, 0.01)
    await world.seed(A=5)
    world.gateway.failures = 2
    answer = await world.checkout(A=1)
    assert answer.status_code == 201
    (first,) = answer.json()["webhooks"]
    assert first["status"] == 503  # the checkout's own attempt failed
    for _ in range(100):
        if world.gateway.events:
            break
        await asyncio.sleep(0.01)
    # three attempts of one delivery: the same webhook id and the same bytes each time
    assert len(world.gateway.seen) == 3
    assert {wid for wid, _ in world.gateway.seen} == {first["webhook_id"]}
    assert len({body for _, body in world.gateway.seen}) == 1
    assert [e.type for e in world.gateway.events] == ["order.created"]
    stats = (await world.control.get("/_sim/stats")).json()["counts"]
    assert stats["webhook orders/create retry 503"] == 1
    assert stats["webhook orders/create retry 202"] == 1


async def test_without_a_retry_schedule_a_failed_webhook_is_final(world: World) -> None:
    await world.seed(A=5)
    world.gateway.failures = 1
    assert (await world.checkout(A=1)).status_code == 201
    sim = world.control._transport.app.state.simulator  # type: ignore[attr-defined]
    assert not sim._retries  # nothing left to re-send it
    assert len(world.gateway.seen) == 1 and world.gateway.events == []


# --- stock deltas: idempotent, commuting with the store's own sales -------------------------


async def push(
    world: World, event: CanonicalEvent, *, links: dict[str, str] | None = None, **directives: Any
) -> DeliveryResult:
    """One delivery of ``event`` with the core's stock directives."""
    ctx = DeliveryContext(directives=directives)
    for key, remote in (links or {}).items():
        entity, _, our = key.partition("|")
        ctx.links[(entity, our)] = remote
    return await world.shop.deliver(event, ctx)


async def test_retried_delta_with_the_same_key_applies_once(world: World) -> None:
    await world.seed(A=10)
    event = availability("A", 8)
    first = await push(world, event, delta="-2", idempotency_key="dlv-1")
    again = await push(world, event, delta="-2", idempotency_key="dlv-1")  # answer was lost
    assert first.summary.startswith(f"adjusted A by -2 at location {LOCATION} (now 8)")
    # Shopify answers the replay with the first result (quantity after included)
    assert again.summary.split(" [")[0] == first.summary.split(" [")[0]
    state = await world.state()
    assert state["inventory"]["A"] == {LOCATION: 8}
    assert state["adjustments"] == {"applied": 1, "replayed": 1}
    # a later change of the same size is another delivery: another key, applied
    await push(world, event, delta="-2", idempotency_key="dlv-2")
    state = await world.state()
    assert state["inventory"]["A"] == {LOCATION: 6}
    assert state["adjustments"] == {"applied": 2, "replayed": 1}


async def test_checkout_between_two_pushes_is_not_undone(world: World) -> None:
    await world.seed(A=10)
    # The ERP loses 2 units: the core computes delta -2 (absolute would be 10 - 2 = 8) ...
    event = availability("A", 8)
    # ... and a shopper buys 3 before that push lands.
    assert (await world.checkout(A=3)).status_code == 201
    assert (await world.state())["inventory"]["A"] == {LOCATION: 7}
    await push(world, event, delta="-2", idempotency_key="dlv-1")
    state = await world.state()
    assert state["inventory"]["A"] == {LOCATION: 5}  # not 8: the sale stays counted
    assert state["oversells"] == 0
    # the store now sells at most 5
    assert (await world.checkout(A=6)).status_code == 409
    assert (await world.checkout(A=5)).status_code == 201


async def test_absolute_directive_sets_the_level_even_with_a_delta(world: World) -> None:
    await world.seed(A=10)
    assert (await world.checkout(A=3)).status_code == 201
    result = await push(world, availability("A", 4), delta="-2", absolute=True, idempotency_key="k")
    assert result.summary.startswith("set A available=4")
    state = await world.state()
    assert state["inventory"]["A"] == {LOCATION: 4}
    assert state["adjustments"] == {"applied": 0, "replayed": 0}


async def test_delta_below_zero_is_not_clamped_and_is_reported(world: World) -> None:
    await world.seed(A=1)
    result = await push(world, availability("A", 0), delta="-3", idempotency_key="dlv-1")
    state = await world.state()
    assert state["inventory"]["A"] == {LOCATION: -2}
    assert [f.kind for f in result.findings] == ["negative_stock"]
    assert (await world.checkout(A=1)).status_code == 409


async def test_delta_at_a_location_without_a_level_starts_from_zero(world: World) -> None:
    await world.seed(A=10)
    stock = StockAvailability(
        source=ERP, sku="A", location="777", available=Decimal(4), status="in_stock", as_of=NOW
    )
    event = make_event("inventory.availability_changed", stock, NOW)
    await push(world, event, delta="4", idempotency_key="dlv-1")
    assert (await world.state())["inventory"]["A"] == {LOCATION: 10, "777": 4}


async def test_same_key_with_another_change_is_refused(world: World) -> None:
    await world.seed(A=10)
    await push(world, availability("A", 8), delta="-2", idempotency_key="dlv-1")
    with pytest.raises(PermanentError, match="IDEMPOTENCY_KEY_PARAMETER_MISMATCH"):
        await push(world, availability("A", 7), delta="-3", idempotency_key="dlv-1")
    assert (await world.state())["inventory"]["A"] == {LOCATION: 8}


async def test_stale_item_link_is_looked_up_again_and_applied_once(world: World) -> None:
    await world.seed(A=10)
    key = f"{ERP}:product:A"
    stale = {f"product|{key}": "1", f"inventory_item|{key}": "2", f"shopify_product|{key}": "3"}
    result = await push(world, availability("A", 8), links=stale, delta="-2", idempotency_key="d")
    assert (await world.state())["inventory"]["A"] == {LOCATION: 8}
    assert (await world.state())["adjustments"] == {"applied": 1, "replayed": 0}
    assert ("inventory_item", key, "2") not in {
        (link.entity_type, link.our_key, link.remote_id) for link in result.links
    }


async def test_simulator_refuses_the_directive_on_the_operation(world: World) -> None:
    await world.seed(A=10)
    misplaced = (
        'mutation M($input: InventoryAdjustQuantitiesInput!) @idempotent(key: "k") '
        "{ inventoryAdjustQuantities(input: $input) { userErrors { message } } }"
    )
    with pytest.raises(PermanentError, match=r"(?i)may not be used on mutation"):
        await world.shop.admin.graphql(misplaced, {"input": {}}, what="adjustment")
    assert (await world.state())["adjustments"] == {"applied": 0, "replayed": 0}


# --- shipments ------------------------------------------------------------------------------


def three_packages(order_key: str) -> CanonicalEvent:
    def pkg(number: str, *lines: tuple[str, int]) -> Package:
        return Package(
            tracking_number=number,
            carrier="UPS",
            lines=[ShipmentLine(sku=s, quantity=Decimal(q)) for s, q in lines],
        )

    shipment = Shipment(
        source=ERP,
        external_id="IF-7",
        order_key=order_key,
        packages=[pkg("1Z001", ("A", 2)), pkg("1Z002", ("A", 1), ("B", 1)), pkg("1Z003", ("B", 1))],
    )
    return make_event("shipment.created", shipment, NOW)


async def test_five_items_in_three_packages_make_three_fulfillments_once(world: World) -> None:
    await world.seed(A=10, B=10)
    order = (await world.checkout(A=3, B=2)).json()["order"]
    event = three_packages(f"{SHOP}:order:{order['id']}")
    result = await deliver(world, event)
    fulfillments = (await world.state())["fulfillments"][str(order["id"])]
    assert [f["tracking_number"] for f in fulfillments] == ["1Z001", "1Z002", "1Z003"]
    assert all(f["notify_customer"] is True for f in fulfillments)
    assert [[(li["sku"], li["quantity"]) for li in f["line_items"]] for f in fulfillments] == [
        [("A", 2)],
        [("A", 1), ("B", 1)],
        [("B", 1)],
    ]
    assert len(result.links) == 3
    # a retry whose links were never saved (answer lost) creates nothing new
    await deliver(world, event)
    assert len((await world.state())["fulfillments"][str(order["id"])]) == 3
    stored = (await world.control.get("/_sim/orders")).json()["orders"][0]
    assert stored["fulfillment_status"] == "fulfilled"


# --- refunds --------------------------------------------------------------------------------


def credit_memo(order_id: int, amount: str) -> CanonicalEvent:
    memo = CreditMemo(
        source=ERP,
        external_id="CM-9",
        order_key=f"{SHOP}:order:{order_id}",
        amount=Money(amount=Decimal(amount), currency="USD"),
        lines=[
            MoneyLine(
                sku="A", quantity=Decimal(1), amount=Money(amount=Decimal(amount), currency="USD")
            )
        ],
        restock=[ReturnLine(sku="A", quantity=Decimal(1), disposition="restock")],
        created_at=NOW,
    )
    return make_event("credit_memo.created", memo, NOW)


async def test_credit_memo_refunds_once_and_restocks(world: World) -> None:
    await world.seed(A=5)
    order = (await world.checkout(A=2)).json()["order"]
    await deliver(world, credit_memo(order["id"], "10.00"))
    again = await deliver(world, credit_memo(order["id"], "10.00"))  # retry, no link
    state = await world.state()
    (refund,) = state["refunds"][str(order["id"])]
    assert refund["amount"] == "10.00" and refund["note"] == "credit memo CM-9"
    assert refund["lines"] == [{"sku": "A", "quantity": 1, "restock_type": "return"}]
    assert state["inventory"]["A"] == {LOCATION: 4}  # 5 - 2 sold + 1 back
    assert [f.kind for f in again.findings] == ["refund_exists"]


async def test_store_refund_webhook_then_erp_memo_makes_no_second_refund(world: World) -> None:
    await world.seed(A=5)
    order = (await world.checkout(A=1)).json()["order"]
    sent = await world.control.post(
        "/_sim/send/refund", json={"order_id": order["id"], "line_items": [{"sku": "A"}]}
    )
    assert sent.status_code == 200, sent.text
    (event,) = [e for e in world.gateway.events if e.type == "refund.created"]
    assert event.payload.amount.amount == Decimal("10.00")
    assert event.payload.order_key == f"{SHOP}:order:{order['id']}"
    result = await deliver(world, credit_memo(order["id"], "10.00"))
    assert [f.kind for f in result.findings] == ["refund_exists"]
    assert len((await world.state())["refunds"][str(order["id"])]) == 1


# --- products, prices, customers ------------------------------------------------------------


async def test_product_created_then_priced_on_sale(world: World) -> None:
    product = Product(source=ERP, sku="NEW-1", title="New thing", updated_at=NOW)
    await deliver(world, make_event("product.upserted", product, NOW))
    renamed = product.model_copy(update={"title": "Renamed"})
    await deliver(world, make_event("product.upserted", renamed, NOW))
    price = Price(
        source=ERP,
        sku="NEW-1",
        currency="USD",
        base=Decimal("20.00"),
        sale=SalePrice(price=Decimal("15.00")),
        effective_at=NOW,
    )
    await deliver(world, make_event("price.changed", price, NOW))
    state = await world.state()
    assert state["prices"] == {"NEW-1": {"price": "15.00", "compare_at_price": "20.00"}}


async def test_customer_upsert_creates_once_then_updates(world: World) -> None:
    customer = Customer(
        source=ERP, external_id="C-1", email="ada@example.com", first_name="Ada", updated_at=NOW
    )
    first = await deliver(world, make_event("customer.upserted", customer, NOW))
    renamed = customer.model_copy(update={"first_name": "Augusta"})
    second = await deliver(world, make_event("customer.upserted", renamed, NOW))
    (stored,) = (await world.state())["customers"]
    assert stored["first_name"] == "Augusta"
    assert first.links[0].remote_id == second.links[0].remote_id == str(stored["id"])


# --- webhooks the store sends ---------------------------------------------------------------


async def test_store_sends_customer_redact_and_return_webhooks(world: World) -> None:
    await world.seed(A=5)
    order = (await world.checkout(A=1)).json()["order"]
    made = await world.control.post(
        "/_sim/send/customer", json={"email": "bo@example.com", "tags": "group:vip"}
    )
    customer_id = made.json()["customer"]["id"]
    await world.control.post("/_sim/send/customers_redact", json={"customer_id": customer_id})
    await world.control.post(
        "/_sim/send/return",
        json={"order_id": order["id"], "line_items": [{"sku": "A", "reason": "defective"}]},
    )
    kinds = [e.type for e in world.gateway.events]
    assert kinds == [
        "order.created",
        "customer.upserted",
        "customer.erase_requested",
        "return.requested",
    ]
    upserted, erase, ret = world.gateway.events[1:]
    assert upserted.payload.group == "vip"
    assert erase.payload.customer_external_id == str(customer_id)
    assert ret.payload.lines[0].sku == "A" and ret.payload.lines[0].reason == "defective"


# --- API errors through the simulator --------------------------------------------------------


async def test_wrong_token_is_permanent(world: World) -> None:
    shop = connect(ShopifyConnector, connection("shpat_wrong"), world.shop.http)
    with pytest.raises(PermanentError, match="access_token"):
        await shop.deliver(availability("A", 1), DeliveryContext())


async def test_throttled_call_is_rate_limited(world: World) -> None:
    await world.control.post("/_sim/faults", json={"rate_limit": {"count": 1, "retry_after": 2}})
    with pytest.raises(RateLimitedError) as caught:
        await deliver(world, availability("A", 1))
    assert caught.value.retry_after == 2.0


async def test_checkout_needs_known_skus_and_whole_quantities(world: World) -> None:
    await world.seed(A=5)
    assert (await world.checkout(NOPE=1)).status_code == 422
    bad = await world.control.post(
        "/_sim/checkout", json={"line_items": [{"sku": "A", "quantity": 0}]}
    )
    assert bad.status_code == 422 and "whole number" in bad.json()["detail"]
    assert (await world.state())["inventory"]["A"] == {LOCATION: 5}
