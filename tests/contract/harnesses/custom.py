"""Custom shop (Standard Webhooks, canonical model): the webhooks are the documented examples
of ``docs/custom-connector.md`` ("What your shop sends"), signed as the document says; the
shop simulator receives the pushes in process.

Faults: 429 and 503 are the simulator's own (``rate_limit``, ``outage``); an auth failure is
a push signed with a secret the shop does not know (its 401). The simulator's
``accept_then_fail`` answers 500, not a timeout, and it refuses only malformed envelopes, so
``FaultTransport`` loses the answer of the push (commit, then time out) and answers a push
with the shop's documented error body ``{"error": …}`` and 422.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.custom import signing
from kernel.canonical.common import Money
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import StockAvailability
from kernel.canonical.product import Product
from kernel.canonical.returns import CreditMemo
from kernel.canonical.shipment import Package, Shipment, ShipmentLine
from kernel.types import DeliveryContext
from simulators.custom.simulator import ShopSimulator
from tests.contract.harness import (
    RETRY_AFTER_SECONDS,
    Delivery,
    Fault,
    FixtureWebhook,
    Harness,
    OutboundSample,
    Rejection,
    Remote,
    asgi_remote,
    body_has,
    register,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "custom-connector.md"
SECRET = "whsec_" + base64.b64encode(b"contract-shop-signing-key-32byte").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"a-key-the-shop-has-never-seen!!!").decode()
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
_JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.S)


def documented_envelopes() -> list[dict[str, Any]]:
    """The envelopes the document shows a shop sending, as written there."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## What your shop sends", 1)[1].split("\n## ", 1)[0]
    envelopes = [json.loads(block) for block in _JSON_BLOCK.findall(section)]
    if len(envelopes) < 5:
        raise AssertionError(f"{DOC.name} shows {len(envelopes)} shop envelopes; expected 5+")
    return envelopes


def _sim(remote: Remote) -> ShopSimulator:
    sim: ShopSimulator = remote.system
    return sim


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@register
class CustomHarness(Harness):
    type_name = "custom"
    connection_id = "myshop"
    base_url = "https://shop.example.com"
    auth_hint = r"push_secret"

    def credentials(self) -> dict[str, str]:
        return {"webhook_secret": SECRET}

    def wrong_credentials(self) -> dict[str, str]:
        return {"webhook_secret": SECRET, "push_secret": OTHER_SECRET}

    # --- inbound ---------------------------------------------------------------------
    def webhooks(self) -> list[FixtureWebhook]:
        envelopes = documented_envelopes()
        order = next(e for e in envelopes if e["type"] == "order.created")
        updated = {**order, "type": "order.updated"}
        cancelled = {
            "type": "order.cancelled",
            "timestamp": "2026-11-01T13:00:00Z",
            "data": {
                **order["data"],
                "status": "cancelled",
                "cancelled_at": "2026-11-01T13:00:00Z",
            },
        }
        guest = {
            **order,
            "data": {**order["data"], "customer": {"email": "guest@example.com", "is_guest": True}},
        }
        out = []
        for name, envelope in [
            *((e["type"], e) for e in envelopes),
            ("order.updated", updated),
            ("order.cancelled", cancelled),
            ("order.created (guest)", guest),
        ]:
            body = json.dumps(envelope).encode()
            out.append(FixtureWebhook(name, body, self._headers(body, SECRET)))
        return out

    @staticmethod
    def _headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
        headers = signing.sign_headers(secret, f"msg_{uuid.uuid4().hex}", body, timestamp=timestamp)
        return {**headers, "content-type": "application/json"}

    def resign(
        self, webhook: FixtureWebhook, body: bytes, *, secret: str | None = None
    ) -> dict[str, str]:
        return self._headers(body, secret or SECRET)

    def wrong_secret(self) -> str:
        return OTHER_SECRET

    def stale(self, webhook: FixtureWebhook) -> FixtureWebhook:
        then = int(time.time()) - 3600 - 60  # past the largest tolerance a connection may set
        headers = self._headers(webhook.body, SECRET, timestamp=then)
        return FixtureWebhook(webhook.name, webhook.body, headers, webhook.expect_events)

    # --- the remote ------------------------------------------------------------------
    @asynccontextmanager
    async def serve(self, fixtures: Mapping[str, Any]) -> AsyncIterator[Remote]:
        sim = ShopSimulator(SECRET)
        async for remote in asgi_remote(self, sim.app, sim):
            yield remote

    def outbound(self) -> list[OutboundSample]:
        def sample(flow: str, make: Callable[[], CanonicalEvent]) -> OutboundSample:
            async def prepare(remote: Remote) -> Delivery:
                return self._delivery(remote, make())

            return OutboundSample(flow, prepare)

        return [
            sample("inventory", _availability),
            sample("products", _product),
            sample("shipments", _shipment),
            sample("returns", _credit_memo),
            sample("customers", _customer),
        ]

    @staticmethod
    def _delivery(remote: Remote, event: CanonicalEvent) -> Delivery:
        async def count() -> int:
            return sum(
                1
                for r in _sim(remote).events(event.type)
                if r.envelope.get("data") == event.payload_json()
            )

        return Delivery(
            event,
            DeliveryContext(directives={"notify_customer": False}),
            count,
            body_has("POST", "/gateway/events"),
        )

    async def inject(self, remote: Remote, fault: Fault, delivery: Delivery | None) -> None:
        sim = _sim(remote)
        if fault is Fault.RATE_LIMIT:
            sim.rate_limit(1, RETRY_AFTER_SECONDS)
        elif fault is Fault.SERVER_ERROR:
            sim.outage(1)
        elif fault is Fault.COMMIT_THEN_TIMEOUT and delivery is not None:
            remote.faults.commit_then_timeout(delivery.writes)
        else:
            raise AssertionError(f"cannot inject {fault} here")

    async def reject(self, remote: Remote, sample: OutboundSample, delivery: Delivery) -> Rejection:
        message = f"{sample.flow}: data.sku is not in this shop's catalogue"
        remote.faults.answer(422, match=delivery.writes, json_body={"error": message})
        return Rejection(delivery.event, delivery.ctx, message)


def _availability() -> CanonicalEvent:
    stock = StockAvailability(
        source="erp", sku=_unique("CT-STOCK"), available=Decimal(8), status="in_stock", as_of=NOW
    )
    return make_event("inventory.availability_changed", stock, NOW)


def _product() -> CanonicalEvent:
    product = Product(source="erp", sku=_unique("CT-PRODUCT"), title="Contract", updated_at=NOW)
    return make_event("product.upserted", product, NOW)


def _shipment() -> CanonicalEvent:
    shipment = Shipment(
        source="erp",
        external_id=_unique("IF"),
        order_key="myshop:order:1001",
        shipped_at=NOW,
        packages=[
            Package(
                tracking_number=_unique("1Z"),
                carrier="UPS",
                lines=[ShipmentLine(sku="TSHIRT-RED-M", quantity=Decimal(2), order_line_id="1")],
            )
        ],
    )
    return make_event("shipment.created", shipment, NOW)


def _credit_memo() -> CanonicalEvent:
    memo = CreditMemo(
        source="erp",
        external_id=_unique("CM"),
        order_key="myshop:order:1001",
        amount=Money(amount=Decimal("19.99"), currency="USD"),
        created_at=NOW,
    )
    return make_event("credit_memo.created", memo, NOW)


def _customer() -> CanonicalEvent:
    customer = Customer(
        source="erp",
        external_id=_unique("C"),
        email=f"{_unique('ada')}@example.com",
        first_name="Ada",
        updated_at=NOW,
    )
    return make_event("customer.upserted", customer, NOW)
