"""NetSuite: user-event webhooks built from the documented record contract
(``tests/fixtures/netsuite_user_event_records.json``, ``records.py``); the REST record and
SuiteQL simulator in process.

Faults are the simulator's own: ``rate_limit`` (429 CONCURRENCY_LIMIT_EXCEEDED with
Retry-After), ``outage`` (503), ``commit_then_timeout`` on the delivery's record type (the
connection's request timeout is short so the stall becomes a timeout); an auth failure is a
wrong token secret (401 INVALID_LOGIN). A sales order with an item NetSuite does not have is
refused by the simulator itself (400 INVALID_KEY_OR_REF); the simulator validates no other
record, so for customers and returns ``FaultTransport`` answers the write with NetSuite's
error envelope (``wire.error_body``).

The simulator's clock moves one second at each stamp, so no two rows share NetSuite's
whole-second ``lastmodifieddate``: the connector ends a run rewound to the start of its last
row's second, so the resumed run may read that row again (identical), and nothing older.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.netsuite import inbound, wire
from connectors.netsuite.auth import TbaCredentials
from kernel.canonical.common import Address, Money
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.order import Order, OrderCustomer, OrderLine, OrderTotals
from kernel.canonical.returns import Return, ReturnLine
from kernel.types import DeliveryContext
from simulators.netsuite.simulator import NetSuiteSimulator
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
    register,
)

RECORDS = Path(__file__).resolve().parents[2] / "fixtures" / "netsuite_user_event_records.json"
CREDENTIALS = {
    "account_id": "1234567",
    "consumer_key": "ck-contract",
    "consumer_secret": "cs-contract-secret",
    "token_id": "tk-contract",
    "token_secret": "ts-contract-secret",
}
WEBHOOK_SECRET = "ns-contract-webhook-secret"
SKU_ITEMS = {"TSHIRT-RED-M": "1042", "MUG-BLUE": "959"}
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
# eventType the script sends for each record (itemfulfillment both: created and updated)
EVENT_TYPES: tuple[tuple[str, str], ...] = (
    ("inventoryitem", "edit"),
    ("customer", "create"),
    ("itemfulfillment", "create"),
    ("itemfulfillment", "edit"),
    ("creditmemo", "create"),
    ("returnauthorization", "edit"),
)
SOURCE = "shop"


def _ticking(start: datetime) -> Callable[[], datetime]:
    stamps = itertools.count()
    return lambda: start + timedelta(seconds=next(stamps))


def _sim(remote: Remote) -> NetSuiteSimulator:
    sim: NetSuiteSimulator = remote.system
    return sim


def _hex() -> str:
    return uuid.uuid4().hex[:12]


def _usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def order_event(external_id: str | None = None) -> CanonicalEvent:
    external_id = external_id or _hex()
    address = Address(
        first_name="Ada",
        last_name="Lovelace",
        line1="12 St James's Square",
        city="London",
        postal_code="SW1Y 4JH",
        country_code="GB",
    )
    order = Order(
        source=SOURCE,
        external_id=external_id,
        number=f"#{external_id}",
        created_at=NOW,
        currency="USD",
        customer=OrderCustomer(
            external_id=f"c{external_id}",
            email=f"ada-{external_id}@example.com",
            first_name="Ada",
            last_name="Lovelace",
        ),
        shipping_address=address,
        billing_address=address,
        lines=[
            OrderLine(
                line_id="1",
                sku="TSHIRT-RED-M",
                title="T-shirt red M",
                quantity=Decimal(2),
                unit_price=_usd("19.99"),
            ),
        ],
        totals=OrderTotals(
            subtotal=_usd("39.98"),
            discounts=_usd("0"),
            shipping=_usd("0"),
            tax=_usd("0"),
            total=_usd("39.98"),
        ),
    )
    return make_event("order.created", order, NOW)


def sku_context(items: Mapping[str, str] = SKU_ITEMS) -> DeliveryContext:
    return DeliveryContext(mappings={"sku": dict(items)})


@register
class NetSuiteHarness(Harness):
    type_name = "netsuite"
    connection_id = "erp"
    base_url = "https://1234567.suitetalk.api.netsuite.com"
    auth_hint = r"credentials"
    request_timeout_seconds = 1.0  # the simulator's commit-then-timeout stalls for 30 s
    # a run ends rewound to the start of its last row's second (NetSuite stamps whole seconds)
    poll_repeats = True
    volatile_fields = frozenset({"as_of"})  # stock is a snapshot, stamped when it was read

    def options(self) -> dict[str, Any]:
        return {"subsidiary_id": "1", "location_id": "1", "order_sources": [SOURCE]}

    def credentials(self) -> dict[str, str]:
        return {**CREDENTIALS, "webhook_secret": WEBHOOK_SECRET}

    def wrong_credentials(self) -> dict[str, str]:
        return {**self.credentials(), "token_secret": "ts-revoked-token-secret"}

    # --- inbound ---------------------------------------------------------------------
    def webhooks(self) -> list[FixtureWebhook]:
        records = json.loads(RECORDS.read_text())
        out = []
        for record_type, event_type in EVENT_TYPES:
            record = records[record_type]
            body = wire.dumps(
                {
                    "eventId": f"{record_type}-{record['id']}-{event_type}-{_hex()}",
                    "eventType": event_type,
                    "recordType": record_type,
                    "id": record["id"],
                    "lastModifiedDate": "2026-11-20T09:30:00Z",
                    "record": record,
                }
            )
            headers = inbound.signed_headers(body, WEBHOOK_SECRET)
            out.append(FixtureWebhook(f"{record_type}.{event_type}", body, headers))
        return out

    def resign(
        self, webhook: FixtureWebhook, body: bytes, *, secret: str | None = None
    ) -> dict[str, str]:
        return inbound.signed_headers(body, secret or WEBHOOK_SECRET)

    def wrong_secret(self) -> str:
        return "ns-another-account-secret"

    def stale(self, webhook: FixtureWebhook) -> FixtureWebhook:
        # past the largest tolerance a connection may set (3600 s), signed correctly
        then = int(time.time()) - int(inbound.MAX_TOLERANCE_SECONDS) - 60
        headers = inbound.signed_headers(webhook.body, WEBHOOK_SECRET, timestamp=then)
        return FixtureWebhook(webhook.name, webhook.body, headers, webhook.expect_events)

    # --- the remote ------------------------------------------------------------------
    @asynccontextmanager
    async def serve(self, fixtures: Mapping[str, Any]) -> AsyncIterator[Remote]:
        items = [{"id": item, "itemId": sku} for sku, item in SKU_ITEMS.items()]
        sim = NetSuiteSimulator(TbaCredentials.from_mapping(CREDENTIALS), items=items)
        sim.now = _ticking(datetime.now(UTC).replace(microsecond=0))
        async for remote in asgi_remote(self, sim.app, sim):
            yield remote

    def outbound(self) -> list[OutboundSample]:
        return [
            OutboundSample("orders", self._order),
            OutboundSample("customers", self._customer),
            OutboundSample("returns", self._return),
        ]

    @staticmethod
    def _counter(remote: Remote, record_type: str) -> Callable[[], Any]:
        async def count() -> int:
            return len(_sim(remote).records(record_type))

        return count

    async def _order(self, remote: Remote) -> Delivery:
        return Delivery(
            order_event(),
            sku_context(),
            self._counter(remote, "salesOrder"),
            lambda r: r.method == "PUT" and "/salesOrder/eid:" in r.url.path,
            tag="salesOrder",
        )

    async def _customer(self, remote: Remote) -> Delivery:
        ident = _hex()
        customer = Customer(
            source=SOURCE,
            external_id=ident,
            email=f"grace-{ident}@example.com",
            first_name="Grace",
            last_name="Hopper",
            updated_at=NOW,
        )
        return Delivery(
            make_event("customer.upserted", customer, NOW),
            DeliveryContext(),
            self._counter(remote, "customer"),
            lambda r: r.method == "PUT" and "/customer/eid:" in r.url.path,
            tag="customer",
        )

    async def _return(self, remote: Remote) -> Delivery:
        order = order_event()
        await remote.connector().deliver(order, sku_context())  # the order it returns from
        ret = Return(
            source=SOURCE,
            external_id=f"R{_hex()}",
            order_key=order.entity_key,
            lines=[ReturnLine(sku="TSHIRT-RED-M", quantity=Decimal(1), reason="too small")],
            requested_at=NOW,
        )
        return Delivery(
            make_event("return.requested", ret, NOW),
            sku_context(),
            self._counter(remote, "returnAuthorization"),
            # the RMA is made by transforming the order (the path's record is salesOrder)
            lambda r: r.method == "POST" and "/!transform/returnAuthorization" in r.url.path,
            tag="salesOrder",
        )

    async def inject(self, remote: Remote, fault: Fault, delivery: Delivery | None) -> None:
        sim = _sim(remote)
        if fault is Fault.RATE_LIMIT:
            sim.rate_limit(1, RETRY_AFTER_SECONDS)
        elif fault is Fault.SERVER_ERROR:
            sim.outage(1)
        elif fault is Fault.COMMIT_THEN_TIMEOUT and delivery is not None:
            sim.commit_then_timeout(1, delay_seconds=30.0, record=delivery.tag)
        else:
            raise AssertionError(f"cannot inject {fault} here")

    async def reject(self, remote: Remote, sample: OutboundSample, delivery: Delivery) -> Rejection:
        if sample.flow == "orders":  # the simulator validates sales orders itself
            return Rejection(
                delivery.event,
                sku_context({"TSHIRT-RED-M": "99999"}),
                "Invalid item reference key 99999.",
            )
        code, detail, path = {
            "customers": ("INVALID_FLD_VALUE", "Please enter a valid email address.", "email"),
            "returns": (
                "USER_ERROR",
                "You cannot return more items than were fulfilled on the sales order.",
                "item",
            ),
        }[sample.flow]
        remote.faults.answer(
            400,
            match=delivery.writes,
            json_body=wire.error_body(400, code, detail, path=path),
            headers={"Content-Type": wire.ERROR_CONTENT_TYPE},
        )
        return Rejection(delivery.event, delivery.ctx, detail)

    # --- polling ---------------------------------------------------------------------
    def streams(self) -> list[StreamSample]:
        return [
            StreamSample("inventory", self._stock_change),
            StreamSample("products", self._price_change),
            StreamSample("customers", self._new_customer),
            StreamSample("shipments", self._fulfilment),
            StreamSample("credit_memos", self._credit_memo),
            StreamSample("returns", self._rma_approved),
        ]

    _levels = iter(range(10_000, 1_000_000))

    async def _stock_change(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        on_hand = next(self._levels)
        _sim(remote).erp.set_stock("1042", "1", {"on_hand": on_hand})
        return lambda e: (
            e.type == "inventory.level_changed"
            and getattr(e.payload, "sku", None) == "TSHIRT-RED-M"
            and getattr(e.payload, "on_hand", None) == on_hand
        )

    async def _price_change(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        price = Decimal(next(self._levels)) / 100
        _sim(remote).erp.set_price("1042", {"basePrice": str(price)})
        return lambda e: (
            e.type in ("price.changed", "product.upserted")
            and getattr(e.payload, "sku", None) == "TSHIRT-RED-M"
        )

    async def _new_customer(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        email = f"walk-in-{_hex()}@example.com"
        _sim(remote).seed(
            customers=[{"externalId": f"pos-{_hex()}", "lastName": "Walk-in", "email": email}]
        )
        return lambda e: e.type == "customer.upserted" and getattr(e.payload, "email", "") == email

    async def _order_in_netsuite(self, remote: Remote) -> CanonicalEvent:
        order = order_event()
        await remote.connector().deliver(order, sku_context())
        return order

    async def _fulfilment(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        order = await self._order_in_netsuite(remote)
        eid = f"{SOURCE}-{order.payload.external_id}"  # type: ignore[union-attr]
        tracking = f"1Z{_hex()}"
        _sim(remote).erp.fulfil(f"eid:{eid}", {"packages": [{"tracking": tracking}]})
        return lambda e: (
            e.type.startswith("shipment.")
            and getattr(e.payload, "order_key", None) == order.entity_key
        )

    async def _credit_memo(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        order = await self._order_in_netsuite(remote)
        eid = f"{SOURCE}-{order.payload.external_id}"  # type: ignore[union-attr]
        _sim(remote).erp.credit_memo(
            {
                "order": f"eid:{eid}",
                "amount": "19.99",
                "lines": [{"item": "1042", "quantity": 1, "amount": "19.99"}],
            }
        )
        return lambda e: (
            e.type == "credit_memo.created"
            and getattr(e.payload, "order_key", None) == order.entity_key
        )

    async def _rma_approved(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        order = await self._order_in_netsuite(remote)
        eid = f"{SOURCE}-{order.payload.external_id}"  # type: ignore[union-attr]
        sim = _sim(remote)
        rma = sim.returns.transform("salesOrder", f"eid:{eid}", "returnAuthorization", {}, set())
        sim.returns.set_status(rma.id, "B")  # approved: Pending Receipt
        return lambda e: (
            e.type == "return.updated"
            and getattr(e.payload, "order_key", None) == order.entity_key
            and getattr(e.payload, "status", None) == "authorized"
        )
