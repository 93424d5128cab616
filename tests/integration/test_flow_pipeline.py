"""The flow pipeline on a real database: what each event becomes for each route.

Events are recorded the way ingest, pollers and jobs record them (``record_events``); the
tests read the outbox and the findings. No worker runs, so nothing is sent: these tests are
about planning (rules, holds, supersession, dependencies), not delivery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from app.config import GatewayConfig, parse_config
from app.db import transaction
from app.flows.recorder import Recorded, record_events
from app.flows.rules import set_override
from app.main import start_runtime
from app.mappings.service import upsert_entries
from app.models import (
    CanonicalEventRow,
    Delivery,
    DeliveryStatus,
    EntityLink,
    Finding,
    InboundEvent,
)
from app.runtime import Runtime
from kernel.canonical.common import Address, Money
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.events import CanonicalEvent, make_event
from kernel.canonical.inventory import InventoryLevel
from kernel.canonical.product import Price, SalePrice
from kernel.canonical.returns import CreditMemo, MoneyLine, Refund, Return, ReturnLine
from kernel.canonical.shipment import Package, Shipment, ShipmentLine
from tests.conftest import NS_CREDS, SHOP_SECRET, make_settings
from tests.support.factories import make_order

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def flows_config(rules: str = "") -> GatewayConfig:
    creds = ", ".join(f"{k}: {v}" for k, v in NS_CREDS.items())
    return parse_config(
        f"""
connections:
  - id: shop
    type: shopify
    base_url: https://shop.myshopify.com
    credentials: {{webhook_secret: {SHOP_SECRET}, access_token: shpat_test}}
  - id: erp
    type: netsuite
    base_url: http://127.0.0.1:9/ns
    credentials: {{{creds}, webhook_secret: ns-webhook-test}}
routes:
  - {{flow: orders, from: shop, to: erp}}
  - {{flow: customers, from: shop, to: erp}}
  - {{flow: returns, from: shop, to: erp}}
  - {{flow: inventory, from: erp, to: shop}}
  - {{flow: products, from: erp, to: shop}}
  - {{flow: shipments, from: erp, to: shop}}
  - {{flow: returns, from: erp, to: shop}}
rules:
{rules or "  pricing: {guard_percent: 20}"}
""",
        "flows-config",
    )


Record = Callable[..., Awaitable[Recorded]]


@pytest.fixture
async def flow_rt(
    clean_db: str,
) -> AsyncIterator[Callable[[GatewayConfig | None], Awaitable[Runtime]]]:
    started: list[Runtime] = []

    async def start(config: GatewayConfig | None = None) -> Runtime:
        rt, _ = await start_runtime(
            make_settings(clean_db), config or flows_config(), with_worker=False
        )
        started.append(rt)
        return rt

    yield start
    for rt in started:
        await rt.close()


async def record(rt: Runtime, source: str, *events: CanonicalEvent, **kw: Any) -> Recorded:
    async with transaction(rt.sessions) as session:
        return await record_events(session, rt, source, list(events), **kw)


async def deliveries(rt: Runtime, **where: Any) -> list[Delivery]:
    async with rt.sessions() as session:
        stmt = sa.select(Delivery).order_by(Delivery.id)  # type: ignore[arg-type]
        for name, value in where.items():
            stmt = stmt.where(getattr(Delivery, name) == value)
        return list((await session.execute(stmt)).scalars())


async def findings(rt: Runtime, kind: str) -> list[Finding]:
    async with rt.sessions() as session:
        stmt = sa.select(Finding).where(Finding.kind == kind).order_by(Finding.id)  # type: ignore[arg-type]
        return list((await session.execute(stmt)).scalars())


def level(sku: str, location: str, on_hand: str, at: datetime, **kw: str) -> CanonicalEvent:
    values = {k: Decimal(v) for k, v in kw.items()}
    return make_event(
        "inventory.level_changed",
        InventoryLevel(
            source="erp", sku=sku, location=location, on_hand=Decimal(on_hand), as_of=at, **values
        ),
        at,
    )


def price(
    sku: str, base: str, at: datetime = T0, sale: SalePrice | None = None, **kw: Any
) -> CanonicalEvent:
    return make_event(
        "price.changed",
        Price(
            source="erp",
            sku=sku,
            currency="EUR",
            base=Decimal(base),
            sale=sale,
            effective_at=at,
            **kw,
        ),
        at,
    )


# --- inventory ------------------------------------------------------------------------------


async def test_store_gets_sellable_quantity_not_on_hand(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config("  inventory: {safety_stock: 2}"))
    await record(
        rt,
        "erp",
        level("SKU-1", "1", "50", T0, allocated="10", reserved="5", damaged="3", quarantined="2"),
    )
    (out,) = await deliveries(rt, destination="shop")
    assert out.event_type == "inventory.availability_changed"
    assert out.payload is not None
    assert Decimal(out.payload["available"]) == 50 - 10 - 5 - 3 - 2 - 2
    assert out.depends_on == "erp:product:SKU-1"  # the product goes before its stock


async def test_negative_erp_stock_becomes_zero_and_is_reported(flow_rt: Any) -> None:
    rt = await flow_rt()
    await record(rt, "erp", level("SKU-1", "1", "-3", T0))
    (out,) = await deliveries(rt, destination="shop")
    assert out.payload is not None and Decimal(out.payload["available"]) == 0
    assert out.payload["status"] == "out_of_stock"
    (finding,) = await findings(rt, "negative_stock")
    assert "-3" in finding.message


async def test_newer_level_supersedes_undelivered_older_and_older_is_ignored(flow_rt: Any) -> None:
    rt = await flow_rt()
    await record(rt, "erp", level("SKU-1", "1", "10", T0))
    await record(rt, "erp", level("SKU-1", "1", "7", T0 + timedelta(minutes=1)))
    stale = await record(rt, "erp", level("SKU-1", "1", "99", T0 - timedelta(minutes=5)))
    assert stale.delivery_ids == []  # an older level never reaches the store
    first, second = await deliveries(rt, destination="shop")
    assert first.status == DeliveryStatus.SUPERSEDED
    assert second.status == DeliveryStatus.PENDING
    assert second.payload is not None and Decimal(second.payload["available"]) == 7


async def test_per_location_sums_mapped_erp_locations(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config("  inventory: {mode: per_location}"))
    async with transaction(rt.sessions) as session:
        await upsert_entries(
            session, "location", "shop", {"1": "gid-A", "2": "gid-A", "3": "gid-B"}
        )
    await record(
        rt,
        "erp",
        level("SKU-1", "1", "4", T0),
        level("SKU-1", "2", "6", T0),
        level("SKU-1", "3", "1", T0),
    )
    latest = {
        d.payload["location"]: Decimal(d.payload["available"])
        for d in await deliveries(rt, destination="shop", status="pending")
        if d.payload
    }
    assert latest == {"gid-A": Decimal(10), "gid-B": Decimal(1)}


async def test_bundle_availability_follows_its_scarcest_component(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config('  inventory: {bundles: {"KIT": {"A": 2, "B": 1}}}'))
    await record(rt, "erp", level("A", "1", "9", T0), level("B", "1", "3", T0))
    kit = [
        d
        for d in await deliveries(rt, destination="shop", status="pending")
        if d.payload and d.payload["sku"] == "KIT"
    ]
    assert [Decimal(d.payload["available"]) for d in kit if d.payload] == [Decimal(3)]
    await record(rt, "erp", level("A", "1", "5", T0 + timedelta(minutes=1)))
    kit = [
        d
        for d in await deliveries(rt, destination="shop", status="pending")
        if d.payload and d.payload["sku"] == "KIT"
    ]
    assert [Decimal(d.payload["available"]) for d in kit if d.payload] == [Decimal(2)]


async def test_high_velocity_skus_go_first_and_others_wait_to_coalesce(flow_rt: Any) -> None:
    rt = await flow_rt(
        flows_config("  inventory: {high_velocity_skus: [HOT], normal_delay_seconds: 60}")
    )
    await record(rt, "erp", level("SLOW", "1", "5", T0), level("HOT", "1", "5", T0))
    by_sku = {d.payload["sku"]: d for d in await deliveries(rt, destination="shop") if d.payload}
    assert by_sku["HOT"].priority > by_sku["SLOW"].priority
    assert by_sku["SLOW"].next_attempt_at - by_sku["HOT"].next_attempt_at >= timedelta(seconds=59)


# --- prices ---------------------------------------------------------------------------------


async def test_price_cut_of_90_percent_is_held_and_small_change_is_not(flow_rt: Any) -> None:
    rt = await flow_rt()
    await record(rt, "erp", price("SKU-1", "100.00"))
    await record(rt, "erp", price("SKU-1", "10.00", T0 + timedelta(minutes=1)))
    first, second = await deliveries(rt, destination="shop")
    assert first.status == DeliveryStatus.PENDING  # the first price seen has nothing to compare
    assert second.status == DeliveryStatus.HELD
    assert (
        second.held_reason
        and "90" in second.held_reason
        and "/api/v1/approvals" in second.held_reason
    )
    await record(rt, "erp", price("SKU-2", "100.00"), price("SKU-2", "110.00"))
    assert [
        d.status for d in await deliveries(rt, destination="shop", entity_key="erp:price:SKU-2:EUR")
    ][-1] == "pending"


async def test_guard_percentage_changes_at_run_time(flow_rt: Any) -> None:
    rt = await flow_rt()
    await record(rt, "erp", price("SKU-1", "100.00"))
    async with transaction(rt.sessions) as session:
        await set_override(session, rt.config.rules, "pricing", {"guard_percent": "5"}, "test")
    await record(rt, "erp", price("SKU-1", "110.00", T0 + timedelta(minutes=1)))
    assert (await deliveries(rt, destination="shop"))[-1].status == DeliveryStatus.HELD


async def test_price_is_rounded_and_never_below_map(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config("  pricing: {rounding: {EUR: {mode: half_even, places: 2}}}"))
    sale = SalePrice(price=Decimal("7.50"), starts_at=T0 - timedelta(days=1))
    await record(rt, "erp", price("SKU-1", "10.125", sale=sale, map_price=Decimal("9.99")))
    (out,) = await deliveries(rt, destination="shop")
    assert out.payload is not None
    assert out.payload["base"] == "10.12"  # half-even
    assert Decimal(out.payload["sale"]["price"]) == Decimal("9.99")  # raised to MAP
    assert await findings(rt, "price_adjusted")


# --- orders and customers -------------------------------------------------------------------


async def test_order_waits_for_its_customer_and_carries_tax_rule(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config("  orders: {tax_source: erp}"))
    order = make_order()
    await record(rt, "shop", make_event("order.created", order, T0))
    (out,) = await deliveries(rt, destination="erp")
    assert out.depends_on == order.customer_key
    assert out.directives and out.directives["tax_source"] == "erp"


async def test_guest_order_rejected_by_rule_is_dead_with_the_reason(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config("  orders: {guest_strategy: reject}"))
    order = make_order()
    guest = order.model_copy(
        update={
            "customer": order.customer.model_copy(update={"external_id": None, "is_guest": True})
        }
    )
    await record(rt, "shop", make_event("order.created", guest, T0))
    (out,) = await deliveries(rt, destination="erp")
    assert out.status == DeliveryStatus.DEAD and out.last_error
    assert await findings(rt, "guest_rejected")


async def test_guest_order_booked_on_shared_account(flow_rt: Any) -> None:
    rt = await flow_rt(
        flows_config('  orders: {guest_strategy: shared_account, guest_account_id: "777"}')
    )
    order = make_order()
    guest = order.model_copy(
        update={
            "customer": order.customer.model_copy(update={"external_id": None, "is_guest": True})
        }
    )
    await record(rt, "shop", make_event("order.created", guest, T0))
    (out,) = await deliveries(rt, destination="erp")
    assert out.directives and out.directives["guest_customer_id"] == "777"


async def test_amendment_details_travel_with_the_update(flow_rt: Any) -> None:
    rt = await flow_rt()
    order = make_order(shipping_address=Address(city="Berlin", country_code="DE"))
    assert order.shipping_address is not None
    moved = order.model_copy(
        update={"shipping_address": order.shipping_address.model_copy(update={"city": "Hamburg"})}
    )
    await record(rt, "shop", make_event("order.created", order, T0))
    await record(rt, "shop", make_event("order.updated", moved, T0 + timedelta(minutes=5)))
    update = (await deliveries(rt, destination="erp"))[-1]
    assert update.directives and "shipping_address" in update.directives["amendment"]
    assert any("Hamburg" in d for d in update.directives["amendment_details"])


def customer(external_id: str, email: str, **kw: Any) -> Customer:
    return Customer(source="shop", external_id=external_id, email=email, updated_at=T0, **kw)


async def test_duplicate_customer_is_linked_not_created(flow_rt: Any) -> None:
    rt = await flow_rt()
    await record(rt, "shop", make_event("customer.upserted", customer("1", "jane@example.com"), T0))
    async with transaction(rt.sessions) as session:  # the first one reached the ERP as 501
        session.add(
            EntityLink(
                connection_id="erp",
                entity_type="customer",
                our_key="shop:customer:1",
                remote_id="501",
                updated_at=T0,
            )
        )
    await record(
        rt, "shop", make_event("customer.upserted", customer("2", "  Jane@Example.COM "), T0)
    )
    second = (await deliveries(rt, destination="erp"))[-1]
    assert second.directives and second.directives["link_to"] == "501"
    assert (await findings(rt, "duplicate_customer_linked"))[0].entity_key == "shop:customer:2"
    async with rt.sessions() as session:
        link = await session.scalar(
            sa.select(EntityLink.remote_id).where(EntityLink.our_key == "shop:customer:2")
        )  # type: ignore[arg-type]
    assert link == "501"


async def test_customer_fields_follow_the_system_of_record(flow_rt: Any) -> None:
    rt = await flow_rt()
    await record(rt, "shop", make_event("customer.upserted", customer("1", "a@example.com"), T0))
    (out,) = await deliveries(rt, destination="erp")
    assert out.directives is not None
    assert "email" in out.directives["fields"] and "credit_limit" not in out.directives["fields"]


async def test_erase_request_scrubs_stored_payloads_and_raw_bodies(flow_rt: Any) -> None:
    from app.erasure.job import run_erasures

    rt = await flow_rt()
    async with transaction(rt.sessions) as session:
        raw = InboundEvent(
            connection_id="shop",
            topic="customers/create",
            dedupe_key="x",
            received_at=T0,
            headers={},
            body=b'{"email": "erase.me@example.com", "note": "hi"}',
        )
        session.add(raw)
        await session.flush()
        raw_id = raw.id
    await record(
        rt,
        "shop",
        make_event(
            "customer.upserted",
            customer("9", "erase.me@example.com", first_name="Erika", last_name="Mustermann"),
            T0,
        ),
        inbound_event_id=raw_id,
    )
    await record(
        rt,
        "shop",
        make_event(
            "customer.erase_requested",
            ErasureRequest(
                source="shop",
                customer_external_id="9",
                email="erase.me@example.com",
                requested_at=T0,
            ),
            T0,
        ),
    )
    # recording the request only registers it; the erasure job scrubs
    await run_erasures(rt)
    async with rt.sessions() as session:
        bodies = [bytes(b) for b in (await session.execute(sa.select(InboundEvent.body))).scalars()]  # type: ignore[call-overload]
        payloads = [
            p
            for p in (
                await session.execute(
                    sa.select(CanonicalEventRow.payload).where(
                        CanonicalEventRow.event_type == "customer.upserted"
                    )
                )
            ).scalars()
        ]  # type: ignore[call-overload, arg-type]
    assert all(b"erase.me@example.com" not in b for b in bodies)
    assert all(
        "erase.me@example.com" not in str(p) and "Erika Mustermann" not in str(p) for p in payloads
    )
    assert await deliveries(rt, destination="erp", event_type="customer.erase_requested")


# --- shipments and returns ------------------------------------------------------------------


def shipment(
    external_id: str, order_key: str, packages: list[Package], status: str = "shipped"
) -> CanonicalEvent:
    return make_event(
        "shipment.created",
        Shipment(
            source="erp",
            external_id=external_id,
            order_key=order_key,
            status=status,
            packages=packages,
        ),  # type: ignore[arg-type]
        T0,
    )


async def test_partial_shipments_map_carriers_and_notify_per_trigger(flow_rt: Any) -> None:
    rt = await flow_rt(flows_config("  shipments: {notify_on: [shipped]}"))
    order = make_order()
    await record(rt, "shop", make_event("order.created", order, T0))
    async with transaction(rt.sessions) as session:
        await upsert_entries(session, "carrier", "shop", {"UPS Ground": "UPS"})
    line = order.lines[0]
    assert line.sku
    pkg = Package(
        tracking_number="1Z1",
        carrier="UPS Ground",
        lines=[ShipmentLine(sku=line.sku, quantity=Decimal(1))],
    )
    await record(rt, "erp", shipment("IF1", order.entity_key, [pkg]))
    await record(rt, "erp", shipment("IF2", order.entity_key, [pkg], status="packed"))
    first, second = await deliveries(rt, destination="shop")
    assert first.payload and first.payload["packages"][0]["carrier"] == "UPS"
    assert first.directives == {"notify_customer": True}
    assert second.directives == {"notify_customer": False}  # packed: not yet with the carrier


def two_stores_config() -> GatewayConfig:
    """flows_config plus a second store fed by the same ERP."""
    base = flows_config()
    second = base.connections[0].model_copy(update={"id": "shop-us"})
    routes = [
        *base.routes,
        *(r.model_copy(update={"to": "shop-us"}) for r in base.routes if r.to == "shop"),
    ]
    return base.model_copy(update={"connections": [*base.connections, second], "routes": routes})


async def test_a_store_hears_only_of_its_own_orders_shipments_and_money(flow_rt: Any) -> None:
    rt = await flow_rt(two_stores_config())
    order = make_order()  # an order of "shop"
    await record(rt, "shop", make_event("order.created", order, T0))
    pkg = Package(tracking_number="1Z9", lines=[ShipmentLine(sku="SKU-RED-M", quantity=1)])
    await record(rt, "erp", shipment("IF7", order.entity_key, [pkg]))
    # a phone order entered in NetSuite: no store has it
    await record(rt, "erp", shipment("IF8", "erp:order:5501", [pkg]))
    memo = CreditMemo(
        source="erp",
        external_id="CM7",
        order_key=order.entity_key,
        amount=Money(amount=Decimal("5.00"), currency="EUR"),
        created_at=T0,
    )
    await record(rt, "erp", make_event("credit_memo.created", memo, T0))
    to_shop = {d.event_type for d in await deliveries(rt, destination="shop")}
    assert {"shipment.created", "credit_memo.created"} <= to_shop
    assert [
        d.entity_key
        for d in await deliveries(rt, destination="shop", event_type="shipment.created")
    ] == ["erp:shipment:IF7"]
    assert await deliveries(rt, destination="shop-us", event_type="shipment.created") == []
    assert await deliveries(rt, destination="shop-us", event_type="credit_memo.created") == []


async def test_over_shipment_is_held_for_a_person(flow_rt: Any) -> None:
    rt = await flow_rt()
    order = make_order()
    await record(rt, "shop", make_event("order.created", order, T0))
    line = order.lines[0]
    assert line.sku
    too_many = Package(
        tracking_number="1Z9", lines=[ShipmentLine(sku=line.sku, quantity=line.quantity + 5)]
    )
    await record(rt, "erp", shipment("IF9", order.entity_key, [too_many]))
    (out,) = await deliveries(rt, destination="shop")
    assert out.status == DeliveryStatus.HELD and out.held_reason and line.sku in out.held_reason


async def test_over_return_is_held_and_partial_return_goes(flow_rt: Any) -> None:
    rt = await flow_rt()
    order = make_order()
    await record(rt, "shop", make_event("order.created", order, T0))
    line = order.lines[0]
    assert line.sku

    def ret(rid: str, qty: Decimal) -> CanonicalEvent:
        return make_event(
            "return.requested",
            Return(
                source="shop",
                external_id=rid,
                order_key=order.entity_key,
                lines=[ReturnLine(sku=line.sku or "", quantity=qty)],
                requested_at=T0,
            ),
            T0,
        )

    await record(rt, "shop", ret("R1", Decimal(1)), ret("R2", line.quantity + 1))
    partial, over = await deliveries(rt, destination="erp", flow="returns")
    assert partial.status == DeliveryStatus.PENDING and partial.depends_on == order.entity_key
    assert over.status == DeliveryStatus.HELD


async def test_refund_and_credit_memo_mismatch_is_reported_and_restock_frees_stock(
    flow_rt: Any,
) -> None:
    rt = await flow_rt()
    order = make_order()
    order_key = order.entity_key
    await record(rt, "erp", level("SKU-RED-M", "1", "0", T0))
    await record(
        rt,
        "shop",
        make_event(
            "refund.created",
            Refund(
                source="shop",
                external_id="RF1",
                order_key=order_key,
                amount=Money(amount=Decimal("20.00"), currency="EUR"),
                created_at=T0,
            ),
            T0,
        ),
    )
    memo = CreditMemo(
        source="erp",
        external_id="CM1",
        order_key=order_key,
        amount=Money(amount=Decimal("25.00"), currency="EUR"),
        lines=[
            MoneyLine(
                sku="SKU-RED-M",
                quantity=Decimal(2),
                amount=Money(amount=Decimal("25.00"), currency="EUR"),
            )
        ],
        restock=[
            ReturnLine(sku="SKU-RED-M", quantity=Decimal(1), disposition="restock"),
            ReturnLine(sku="SKU-RED-M", quantity=Decimal(1), disposition="damaged"),
        ],
        created_at=T0 + timedelta(minutes=1),
    )
    await record(rt, "erp", make_event("credit_memo.created", memo, T0 + timedelta(minutes=1)))
    (mismatch,) = await findings(rt, "refund_mismatch")
    assert "20.00" in mismatch.message and "25.00" in mismatch.message
    stock = [
        d
        for d in await deliveries(
            rt, destination="shop", event_type="inventory.availability_changed", status="pending"
        )
    ]
    assert (
        stock and stock[-1].payload and Decimal(stock[-1].payload["available"]) == 1
    )  # damaged one stays unsellable


async def test_a_store_refund_makes_no_delivery_the_erp_would_refuse(flow_rt: Any) -> None:
    # the returns route shop → erp carries RMAs; NetSuite books no store refund (its credit
    # memos come from the RMA), so a delivery of one could only die in the dead letters
    rt = await flow_rt()
    refund = Refund(
        source="shop",
        external_id="RF9",
        order_key=make_order().entity_key,
        amount=Money(amount=Decimal("5.00"), currency="EUR"),
        created_at=T0,
    )
    recorded = await record(rt, "shop", make_event("refund.created", refund, T0))
    assert recorded.event_ids and recorded.delivery_ids == []
    assert await deliveries(rt, destination="erp", event_type="refund.created") == []


async def test_orders_not_yet_in_the_erp_are_not_offered_again(flow_rt: Any) -> None:
    rt = await flow_rt()
    await record(
        rt,
        "shop",
        make_event("order.created", make_order("1", skus=("SKU-RED-M", "SKU-RED-M")), T0),
    )
    await record(rt, "shop", make_event("order.created", make_order("2", skus=("SKU-RED-M",)), T0))
    await record(rt, "erp", level("SKU-RED-M", "1", "10", T0))
    stock = (await deliveries(rt, destination="shop"))[-1]
    assert stock.payload is not None and Decimal(stock.payload["available"]) == 7
    async with transaction(rt.sessions) as session:  # the ERP has the orders now
        await session.execute(
            sa.update(Delivery).where(Delivery.flow == "orders").values(status="delivered")
        )  # type: ignore[arg-type]
    await record(rt, "erp", level("SKU-RED-M", "1", "7", T0 + timedelta(minutes=1), allocated="0"))
    stock = (await deliveries(rt, destination="shop"))[-1]
    assert stock.payload is not None and Decimal(stock.payload["available"]) == 7


async def test_required_payment_mapping_is_asked_for_by_the_rules(flow_rt: Any) -> None:
    from app.delivery.lookup import rule_needs
    from kernel.canonical.order import Payment

    rt = await flow_rt(flows_config("  orders: {required_mappings: [payment_method]}"))
    order = make_order(payments=[Payment(gateway="paypal")])
    await record(rt, "shop", make_event("order.created", order, T0))
    (out,) = await deliveries(rt, destination="erp")
    assert [(n.kind, n.key) for n in rule_needs(out.directives)] == [("payment_method", "paypal")]


async def test_customer_echo_without_owned_changes_is_not_sent_back(flow_rt: Any) -> None:
    rt = await flow_rt()
    await record(rt, "shop", make_event("customer.upserted", customer("1", "a@example.com"), T0))
    # the store's webhook after the ERP wrote its own fields (group) back: nothing of the store's
    echo = customer("1", "a@example.com", group="wholesale")
    echo = echo.model_copy(update={"updated_at": T0 + timedelta(minutes=1)})
    assert (await record(rt, "shop", make_event("customer.upserted", echo, T0))).delivery_ids == []
    moved = customer("1", "new@example.com")
    assert (await record(rt, "shop", make_event("customer.upserted", moved, T0))).delivery_ids


async def test_credit_memo_is_not_paid_out_again_when_the_store_refunded(flow_rt: Any) -> None:
    rt = await flow_rt()
    key = make_order().entity_key
    eur = "EUR"
    memo = CreditMemo(
        source="erp",
        external_id="CM7",
        order_key=key,
        amount=Money(amount=Decimal("10.00"), currency=eur),
        created_at=T0,
    )
    await record(rt, "erp", make_event("credit_memo.created", memo, T0))
    assert len(await deliveries(rt, destination="shop", event_type="credit_memo.created")) == 1
    other = make_order("2").entity_key
    await record(
        rt,
        "shop",
        make_event(
            "refund.created",
            Refund(
                source="shop",
                external_id="RF9",
                order_key=other,
                amount=Money(amount=Decimal("10.00"), currency=eur),
                created_at=T0,
            ),
            T0,
        ),
    )
    memo2 = memo.model_copy(update={"external_id": "CM8", "order_key": other})
    await record(rt, "erp", make_event("credit_memo.created", memo2, T0))
    assert len(await deliveries(rt, destination="shop", event_type="credit_memo.created")) == 1
    assert not await findings(rt, "refund_mismatch")  # 10.00 refunded, 10.00 credited


async def test_of_two_levels_stamped_the_same_second_the_lower_wins(flow_rt: Any) -> None:
    rt = await flow_rt()
    await record(rt, "erp", level("SKU-1", "1", "10", T0, allocated="3"))
    await record(rt, "erp", level("SKU-1", "1", "10", T0, allocated="2"))  # arrived late
    (latest,) = await deliveries(rt, destination="shop", status="pending")
    assert latest.payload is not None and Decimal(latest.payload["available"]) == 7


async def test_findings_are_counted_in_metrics(flow_rt: Any) -> None:
    from app.observability import metrics

    before = metrics.FINDINGS.labels("negative_stock")._value.get()
    rt = await flow_rt()
    await record(rt, "erp", level("SKU-9", "1", "-2", T0))
    assert metrics.FINDINGS.labels("negative_stock")._value.get() == before + 1
