"""Shopify: webhooks from Shopify's documented samples; the Admin API simulator in process.

Faults: 429 and 503 are the simulator's own (``/_sim/faults``: ``rate_limit``, ``outage``);
an auth failure is a wrong access token (the simulator's 401 with Shopify's body). The
simulator has no commit-then-timeout, so ``FaultTransport`` loses the answer of the write;
refusals of the GraphQL writes (stock, products, fulfillments, refunds) are answered with
``userErrors`` in Shopify's documented shape; customers go through REST, and a customer with
neither name, phone nor e-mail is refused by the simulator itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.shopify.inbound import sign
from kernel.canonical.common import Money
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import StockAvailability
from kernel.canonical.product import Product
from kernel.canonical.returns import CreditMemo, MoneyLine
from kernel.canonical.shipment import Package, Shipment, ShipmentLine
from kernel.types import DeliveryContext
from simulators.shopify.samples import make_order
from simulators.shopify.simulator import ShopifySimulator, create_app
from simulators.shopify.store import DEFAULT_LOCATION_ID
from tests.contract.harness import (
    RETRY_AFTER_SECONDS,
    Delivery,
    Fault,
    FixtureWebhook,
    Harness,
    OutboundSample,
    Rejection,
    Remote,
    StreamSample,
    asgi_remote,
    body_has,
    register,
)

# Shopify's documented samples, verbatim: tests/fixtures (orders, customers, refunds, returns)
# and ../payloads (copies from the shared payloads; sources in its SOURCES.md)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
SECRET = "shpss_contract_webhook_secret"
TOKEN = "shpat_contract_token"
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
# topic → the documented sample it carries; False: stored and acknowledged, no events
WEBHOOKS: tuple[tuple[str, Path, bool], ...] = (
    ("orders/create", FIXTURES / "shopify_orders_create.json", True),
    ("orders/updated", FIXTURES / "shopify_orders_create.json", True),
    ("orders/cancelled", FIXTURES / "shopify_orders_create.json", True),
    ("customers/create", FIXTURES / "shopify_customers_create.json", True),
    ("customers/update", FIXTURES / "shopify_customers_create.json", True),
    ("customers/redact", FIXTURES / "shopify_customers_redact.json", True),
    ("refunds/create", FIXTURES / "shopify_refunds_create.json", True),
    ("returns/request", FIXTURES / "shopify_returns_request.json", True),
    ("products/update", PAYLOADS / "shopify_products_update.json", False),
    ("customers/data_request", PAYLOADS / "shopify_customers_data_request.json", False),
    ("shop/redact", PAYLOADS / "shopify_shop_redact.json", False),
)


def _sim(remote: Remote) -> ShopifySimulator:
    sim: ShopifySimulator = remote.system
    return sim


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@register
class ShopifyHarness(Harness):
    type_name = "shopify"
    connection_id = "shop-eu"
    base_url = "https://contract-shop.myshopify.com"
    auth_hint = r"access_token"
    no_timestamp_reason = (
        "Shopify signs only the body (X-Shopify-Hmac-Sha256); no signed timestamp to age"
    )
    # the backfill re-reads backfill_overlap_seconds before the newest change it read
    poll_repeats = True

    def options(self) -> dict[str, Any]:
        return {"location_id": str(DEFAULT_LOCATION_ID), "currency": "USD"}

    def credentials(self) -> dict[str, str]:
        return {"webhook_secret": SECRET, "access_token": TOKEN}

    def wrong_credentials(self) -> dict[str, str]:
        return {"webhook_secret": SECRET, "access_token": "shpat_revoked_token"}

    # --- inbound ---------------------------------------------------------------------
    def webhooks(self) -> list[FixtureWebhook]:
        out = []
        for topic, path, events in WEBHOOKS:
            body = path.read_bytes()
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": sign(body, SECRET),
                "X-Shopify-Shop-Domain": "contract-shop.myshopify.com",
                "X-Shopify-API-Version": "2026-01",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": str(uuid.uuid4()),
                "X-Shopify-Triggered-At": "2026-11-20T09:30:00.000Z",
            }
            out.append(FixtureWebhook(topic, body, headers, events))
        return out

    def resign(
        self, webhook: FixtureWebhook, body: bytes, *, secret: str | None = None
    ) -> dict[str, str]:
        return {**webhook.headers, "X-Shopify-Hmac-Sha256": sign(body, secret or SECRET)}

    def wrong_secret(self) -> str:
        return "shpss_some_other_app_secret"

    # --- the remote ------------------------------------------------------------------
    @asynccontextmanager
    async def serve(self, fixtures: Mapping[str, Any]) -> AsyncIterator[Remote]:
        app = create_app(access_token=TOKEN, bucket_size=100_000)
        async for remote in asgi_remote(self, app, app.state.simulator):
            yield remote

    def outbound(self) -> list[OutboundSample]:
        return [
            OutboundSample("inventory", self._stock),
            OutboundSample("products", self._product),
            OutboundSample("shipments", self._shipment),
            OutboundSample("returns", self._credit_memo),
            OutboundSample("customers", self._customer),
        ]

    async def _stock(self, remote: Remote) -> Delivery:
        store = _sim(remote).store
        sku = _unique("CT-STOCK")
        store.seed({"sku": sku, "price": "10.00", "available": 10})
        stock = StockAvailability(
            source="erp", sku=sku, available=Decimal(8), status="in_stock", as_of=NOW
        )
        ctx = DeliveryContext(directives={"delta": "-2", "idempotency_key": _unique("dlv")})

        async def count() -> int:  # how many times the change of -2 was applied
            return (10 - store.available(sku)) // 2

        return Delivery(
            make_event("inventory.availability_changed", stock, NOW),
            ctx,
            count,
            body_has("POST", "graphql.json", "inventoryAdjustQuantities"),
        )

    async def _product(self, remote: Remote) -> Delivery:
        store = _sim(remote).store
        sku = _unique("CT-PRODUCT")
        product = Product(source="erp", sku=sku, title="Contract product", updated_at=NOW)

        async def count() -> int:
            return sum(1 for v in store.variants() if v.get("sku") == sku)

        return Delivery(
            make_event("product.upserted", product, NOW),
            DeliveryContext(),
            count,
            body_has("POST", "graphql.json", "productSet"),
        )

    def _order(self, remote: Remote) -> dict[str, Any]:
        sku = _unique("CT-LINE")
        _sim(remote).store.seed({"sku": sku, "price": "25.00", "available": 5})
        return _sim(remote).new_order(skus=[sku], quantities=[2])

    async def _shipment(self, remote: Remote) -> Delivery:
        order = self._order(remote)
        line = order["line_items"][0]
        shipment = Shipment(
            source="erp",
            external_id=_unique("IF"),
            order_key=f"{self.connection_id}:order:{order['id']}",
            order_number=order["name"],
            shipped_at=NOW,
            packages=[
                Package(
                    tracking_number=_unique("1Z"),
                    carrier="UPS",
                    lines=[ShipmentLine(sku=line["sku"], quantity=Decimal(line["quantity"]))],
                )
            ],
        )

        async def count() -> int:
            return len(_sim(remote).orders[int(order["id"])].get("fulfillments") or [])

        return Delivery(
            make_event("shipment.created", shipment, NOW),
            DeliveryContext(directives={"notify_customer": False}),
            count,
            body_has("POST", "graphql.json", "fulfillmentCreate"),
        )

    async def _credit_memo(self, remote: Remote) -> Delivery:
        order = self._order(remote)
        line = order["line_items"][0]
        amount = Money(amount=Decimal(line["price"]), currency=order["currency"])
        memo = CreditMemo(
            source="erp",
            external_id=_unique("CM"),
            order_key=f"{self.connection_id}:order:{order['id']}",
            amount=amount,
            lines=[MoneyLine(sku=line["sku"], quantity=Decimal(1), amount=amount)],
            created_at=NOW,
        )

        async def count() -> int:
            return len(_sim(remote).orders[int(order["id"])].get("refunds") or [])

        return Delivery(
            make_event("credit_memo.created", memo, NOW),
            DeliveryContext(),
            count,
            body_has("POST", "graphql.json", "refundCreate"),
        )

    async def _customer(self, remote: Remote) -> Delivery:
        store = _sim(remote).store
        email = f"{_unique('ada')}@example.com"
        customer = Customer(
            source="erp",
            external_id=_unique("C"),
            email=email,
            first_name="Ada",
            last_name="Lovelace",
            updated_at=NOW,
        )

        async def count() -> int:
            return len(store.search_customers(f'email:"{email}"'))

        return Delivery(
            make_event("customer.upserted", customer, NOW),
            DeliveryContext(),
            count,
            body_has("POST", "customers.json"),
        )

    # --- the backfill poll --------------------------------------------------------------
    def streams(self) -> list[StreamSample]:
        return [StreamSample("orders", self._new_order), StreamSample("customers", self._signup)]

    async def _new_order(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        """A shopper's order placed now (its webhook is not what the poll reads)."""
        sim = _sim(remote)
        n = 9_000 + len(sim.orders)
        order = sim.add_order(make_order(n, created_at=datetime.now(UTC).replace(microsecond=0)))
        key = f"{self.connection_id}:order:{order['id']}"
        return lambda e: e.entity_key == key

    async def _signup(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        email = f"{_unique('signup')}@example.com"
        _sim(remote).store.create_customer({"email": email, "first_name": "Ada"})
        return lambda e: e.type == "customer.upserted" and getattr(e.payload, "email", "") == email

    async def inject(self, remote: Remote, fault: Fault, delivery: Delivery | None) -> None:
        faults = _sim(remote).faults
        if fault is Fault.RATE_LIMIT:
            faults.rate_limit_remaining, faults.rate_limit_retry_after = 1, RETRY_AFTER_SECONDS
        elif fault is Fault.SERVER_ERROR:
            faults.outage_remaining = 1
        elif fault is Fault.COMMIT_THEN_TIMEOUT and delivery is not None:
            remote.faults.commit_then_timeout(delivery.writes)
        else:
            raise AssertionError(f"cannot inject {fault} here")

    async def reject(self, remote: Remote, sample: OutboundSample, delivery: Delivery) -> Rejection:
        if sample.flow == "customers":
            # the store itself refuses a customer it cannot identify
            customer = Customer(
                source="erp", external_id=_unique("C"), first_name="Ada", updated_at=NOW
            )
            return Rejection(
                make_event("customer.upserted", customer, NOW),
                DeliveryContext(),
                "A customer must have a name, phone number or email address",
            )
        if sample.flow == "inventory":
            message = "The quantity can't be lower than -1,000,000,000."
            remote.faults.answer(
                200,
                match=delivery.writes,
                json_body={
                    "data": {
                        "inventoryAdjustQuantities": {
                            "inventoryAdjustmentGroup": None,
                            "userErrors": [
                                {
                                    "field": ["input", "changes", "0", "delta"],
                                    "message": message,
                                    "code": "INVALID_QUANTITY_TOO_LOW",
                                }
                            ],
                        }
                    }
                },
            )
            return Rejection(delivery.event, delivery.ctx, message)
        # GraphQL mutations answer HTTP 200 with userErrors [{field: [path], message, code?}]
        # (shopify.dev/docs/api/admin-graphql/2026-01/objects/UserError, …/ProductSetUserError)
        mutation, error = {
            "products": (
                "productSet",
                {
                    "field": ["input", "title"],
                    "message": "Title can't be blank",
                    "code": "INVALID_PRODUCT",
                },
            ),
            "shipments": (
                "fulfillmentCreate",
                {
                    "field": ["fulfillment", "lineItemsByFulfillmentOrder"],
                    "message": "Invalid fulfillment order line item quantity requested.",
                },
            ),
            "returns": (
                "refundCreate",
                {
                    "field": ["transactions", "0", "amount"],
                    "message": "Refund amount must be at most 0.00",
                },
            ),
        }[sample.flow]
        remote.faults.answer(
            200, match=delivery.writes, json_body={"data": {mutation: {"userErrors": [error]}}}
        )
        return Rejection(delivery.event, delivery.ctx, str(error["message"]))
