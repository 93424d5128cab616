"""Tryton: the real trytond of the test session (``tryton_server``), no simulator; it sends no
webhooks (everything from it is polled).

Faults: an auth failure is a login trytond refuses; a sale Tryton
refuses (a quantity its unit cannot hold) is refused by Tryton itself (``UserError``). A real
server cannot be told to throttle or fail, so ``FaultTransport`` (around the network
transport) answers 429 with ``Retry-After`` and 503 as a proxy in front of trytond would, and
loses the answer of the create that writes the sale or party (commit, then time out).
Customers have no natural refusal either: the create is answered with Tryton's JSON-RPC
``UserError`` (``[name, [message, description, domain]]``).

Changes for the poll streams are made as a person would in Tryton: stock received, a sale's
shipment shipped, its invoice credited, a party created.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from connectors.tryton.client import TrytonClient
from connectors.tryton.options import TrytonCredentials
from connectors.tryton.wire import Number
from kernel.canonical.common import Address, Money
from kernel.canonical.customer import Customer
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.order import Order, OrderCustomer, OrderLine, OrderTotals
from kernel.types import DeliveryContext
from tests.contract.harness import (
    RETRY_AFTER_SECONDS,
    Delivery,
    Fault,
    FaultTransport,
    Harness,
    OutboundSample,
    Rejection,
    Remote,
    StreamSample,
    body_has,
    register,
)
from tests.tryton import server as srv

SOURCE = "shop"
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def _hex() -> str:
    return uuid.uuid4().hex[:12]


def _usd(amount: Decimal) -> Money:
    return Money(amount=amount, currency="USD")


def _rpc(remote: Remote) -> TrytonClient:
    rpc: TrytonClient = remote.system
    return rpc


def order_event(
    sku: str = "SKU-RED-M", quantity: str = "1", price: str = "19.99"
) -> CanonicalEvent:
    ident = _hex()
    total = Decimal(quantity) * Decimal(price)
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
        external_id=ident,
        number=f"#{ident}",
        created_at=NOW,
        currency="USD",
        customer=OrderCustomer(
            external_id=f"c{ident}",
            email=f"ada-{ident}@example.com",
            first_name="Ada",
            last_name="Lovelace",
        ),
        shipping_address=address,
        billing_address=address,
        lines=[
            OrderLine(
                line_id="1",
                sku=sku,
                title=f"Item {sku}",
                quantity=Decimal(quantity),
                unit_price=_usd(Decimal(price)),
            )
        ],
        totals=OrderTotals(
            subtotal=_usd(total),
            discounts=_usd(Decimal(0)),
            shipping=_usd(Decimal(0)),
            tax=_usd(Decimal(0)),
            total=_usd(total),
        ),
    )
    return make_event("order.created", order, NOW)


class _SharedSession(TrytonClient):
    """The suite's own JSON-RPC session to arrange and inspect records: one login for the
    whole test session (a trytond login hashes the password, a fifth of a second each)."""

    _sessions: ClassVar[dict[str, str]] = {}

    async def _login(self) -> str:
        if self.url not in self._sessions:
            self._sessions[self.url] = await super()._login()
        return self._sessions[self.url]


def rpc_method(name: str) -> Callable[[httpx.Request], bool]:
    return body_has("POST", "/rpc/", f'"{name}"')


@register
class TrytonHarness(Harness):
    type_name = "tryton"
    connection_id = "erp"
    fixtures = ("tryton_server",)
    auth_hint = r"credentials"
    poll_page_size = 200

    def __init__(self) -> None:
        self.server: srv.TrytonServer | None = None

    @property
    def base_url(self) -> str:  # type: ignore[override]
        return self.server.url if self.server else "http://127.0.0.1:8000"

    def options(self) -> dict[str, Any]:
        return {
            "database": srv.DATABASE,
            "shipping_product_code": srv.SHIPPING_SKU,
            "discount_product_code": srv.DISCOUNT_SKU,
            # exact resume: no window read again (the suite's changes are committed one
            # after the other, never by a long transaction), so any repeat is a failure
            "poll_overlap_seconds": 0,
        }

    def credentials(self) -> dict[str, str]:
        return {"username": srv.USERNAME, "password": srv.PASSWORD}

    def wrong_credentials(self) -> dict[str, str]:
        # a login nobody has, new each time: trytond delays every login of a name by up to
        # 2**(its failed attempts) s, so failing the real user's would slow the session down
        return {"username": f"intruder-{_hex()}", "password": "not-the-password"}

    # --- the remote ------------------------------------------------------------------
    @asynccontextmanager
    async def serve(self, fixtures: Mapping[str, Any]) -> AsyncIterator[Remote]:
        self.server = fixtures["tryton_server"]
        assert self.server is not None
        faults = FaultTransport(httpx.AsyncHTTPTransport())
        async with (
            httpx.AsyncClient(transport=faults, timeout=30) as http,
            httpx.AsyncClient(timeout=30) as own,
        ):
            creds = TrytonCredentials.model_validate(self.credentials())
            rpc = _SharedSession(own, self.server.url, srv.DATABASE, creds, timeout_seconds=30)
            yield Remote(self, http, faults, rpc)

    def outbound(self) -> list[OutboundSample]:
        return [OutboundSample("orders", self._order), OutboundSample("customers", self._customer)]

    async def _order(self, remote: Remote) -> Delivery:
        event = order_event()
        reference = f"{SOURCE}-{event.payload.external_id}"  # type: ignore[union-attr]

        async def count() -> int:
            return len(await _rpc(remote).search("sale.sale", [("reference", "=", reference)]))

        return Delivery(event, DeliveryContext(), count, rpc_method("model.sale.sale.create"))

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
        code = f"{SOURCE}-{ident}"

        async def count() -> int:
            return len(await _rpc(remote).search("party.party", [("code", "=", code)]))

        return Delivery(
            make_event("customer.upserted", customer, NOW),
            DeliveryContext(),
            count,
            rpc_method("model.party.party.create"),
        )

    async def inject(self, remote: Remote, fault: Fault, delivery: Delivery | None) -> None:
        if fault is Fault.RATE_LIMIT:
            remote.faults.answer(
                429, text="Too Many Requests", headers={"Retry-After": f"{RETRY_AFTER_SECONDS:g}"}
            )
        elif fault is Fault.SERVER_ERROR:
            remote.faults.answer(503, text="<html><body>503 Service Unavailable</body></html>")
        elif fault is Fault.COMMIT_THEN_TIMEOUT and delivery is not None:
            remote.faults.commit_then_timeout(delivery.writes)
        else:
            raise AssertionError(f"cannot inject {fault} here")

    async def reject(self, remote: Remote, sample: OutboundSample, delivery: Delivery) -> Rejection:
        if sample.flow == "orders":  # Tryton itself: a unit sells in whole numbers
            event = order_event(quantity="1.5")
            return Rejection(event, DeliveryContext(), "exceeds the limit")
        message = 'The e-mail address "grace@" for party "Grace Hopper" is not valid.'
        remote.faults.answer(
            200,
            match=delivery.writes,
            json_body={"id": 1, "error": ["UserError", [message, "", None]]},
        )
        return Rejection(delivery.event, delivery.ctx, message)

    # --- polling ---------------------------------------------------------------------
    def streams(self) -> list[StreamSample]:
        return [
            StreamSample("inventory", self._receive_stock),
            StreamSample("shipments", self._ship),
            StreamSample("credit_notes", self._credit),
            StreamSample("customers", self._new_party),
        ]

    async def _new_party(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        email = f"walk-in-{_hex()}@example.com"
        await _rpc(remote).create(
            "party.party",
            [
                {
                    "name": "Walk-in Customer",
                    "contact_mechanisms": [["create", [{"type": "email", "value": email}]]],
                }
            ],
        )
        return lambda e: e.type == "customer.upserted" and getattr(e.payload, "email", "") == email

    async def _receive_stock(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        rpc, sku = _rpc(remote), "TSHIRT-RED-M"
        (product,) = await rpc.search_read("product.product", [("code", "=", sku)], ["default_uom"])
        (supplier,) = await rpc.search("stock.location", [("code", "=", "SUP")])
        (warehouse,) = await rpc.search_read(
            "stock.location", [("code", "=", "WH")], ["storage_location"]
        )
        (company,) = await rpc.search("company.company", [])
        (usd,) = await rpc.search("currency.currency", [("code", "=", "USD")])
        (move,) = await rpc.create(
            "stock.move",
            [
                {
                    "product": product["id"],
                    "unit": product["default_uom"],
                    "quantity": Number(Decimal(1)),
                    "from_location": supplier,
                    "to_location": warehouse["storage_location"],
                    "company": company,
                    "unit_price": Decimal("1.00"),
                    "currency": usd,
                    "effective_date": date.today(),
                }
            ],
        )
        await rpc.execute("stock.move", "do", [move])
        return lambda e: (
            e.type == "inventory.level_changed" and getattr(e.payload, "sku", "") == sku
        )

    async def _sale(self, remote: Remote, sku: str) -> tuple[CanonicalEvent, dict[str, Any]]:
        event = order_event(sku=sku)
        await remote.connector().deliver(event, DeliveryContext())
        reference = f"{SOURCE}-{event.payload.external_id}"  # type: ignore[union-attr]
        (sale,) = await _rpc(remote).search_read(
            "sale.sale", [("reference", "=", reference)], ["shipments", "invoices"]
        )
        return event, sale

    async def _ship(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        rpc = _rpc(remote)
        order, sale = await self._sale(remote, "SKU-BLUE-L")
        (shipment,) = sale["shipments"]
        (carrier,) = await rpc.search("carrier", [])
        await rpc.write("stock.shipment.out", [shipment], {"carrier": carrier})
        for step in ("assign_try", "pick", "pack", "do"):
            await rpc.execute("stock.shipment.out", step, [shipment])
        return lambda e: (
            e.type.startswith("shipment.")
            and getattr(e.payload, "order_key", None) == order.entity_key
        )

    async def _credit(self, remote: Remote) -> Callable[[CanonicalEvent], bool]:
        rpc = _rpc(remote)
        order, sale = await self._sale(remote, "SKU-RED-M")
        (invoice,) = sale["invoices"]
        await rpc.execute("account.invoice", "post", [invoice])
        session, _, _ = await rpc.call("wizard.account.invoice.credit.create")
        where = {"active_id": invoice, "active_ids": [invoice], "active_model": "account.invoice"}
        answer = await rpc.call(
            "wizard.account.invoice.credit.execute",
            session,
            {"start": {"with_refund": False, "invoice_date": None}},
            "credit",
            context=where,
        )
        ((_, opened),) = answer["actions"]
        (credit,) = opened["res_id"]
        await rpc.execute("account.invoice", "post", [credit])
        return lambda e: (
            e.type == "credit_memo.created"
            and getattr(e.payload, "order_key", None) == order.entity_key
        )
