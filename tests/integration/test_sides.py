"""NetSuite is an ERP and Shopify a store, as their connector classes declare: the orders the
ERP books are tracked against stock, and each side writes only the customer fields it owns.
On the real connector classes (not fakes, which once hid NetSuite defaulting to "store")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from app.db import transaction
from app.flows import hooks
from app.flows.customers.rules import writable_fields
from app.flows.rules import effective_rules
from app.models import Delivery, OrderAllocation, utcnow
from connectors.netsuite.connector import NetSuiteConnector
from connectors.shopify.connector import ShopifyConnector
from kernel.canonical.customer import Customer
from kernel.canonical.events import make_event
from tests.integration.test_flow_pipeline import T0, deliveries, flow_rt, record
from tests.support.factories import make_order

__all__ = ["flow_rt"]


def test_the_connector_classes_declare_their_side() -> None:
    assert NetSuiteConnector.side == "erp" and ShopifyConnector.side == "store"


async def test_netsuite_customers_go_out_with_the_erps_fields_only(flow_rt: Any) -> None:
    rt = await flow_rt()
    assert rt.sides == {"shop": "store", "erp": "erp"}
    # flows_config routes customers shop → erp; add the way back for this test
    rt.config.routes.append(rt.config.routes[1].model_copy(update={"from_": "erp", "to": "shop"}))
    customer = Customer(source="erp", external_id="42", email="grace@example.com", updated_at=T0)
    await record(rt, "erp", make_event("customer.upserted", customer, T0))
    (out,) = await deliveries(rt, destination="shop", flow="customers")
    async with rt.sessions() as session:
        rules = (await effective_rules(session, rt.config.rules)).customers
    assert set((out.directives or {})["fields"]) == set(writable_fields("erp", rules))
    assert set(writable_fields("erp", rules)) != set(writable_fields("store", rules))


async def test_orders_netsuite_booked_are_tracked_against_stock(flow_rt: Any) -> None:
    rt = await flow_rt()
    order = make_order("9901", skus=("SKU-RED-M", "SKU-RED-M"))
    await record(rt, "shop", make_event("order.created", order, order.created_at))
    (delivery,) = await deliveries(rt, destination="erp", flow="orders")
    sent = utcnow() - timedelta(seconds=1)
    async with transaction(rt.sessions) as session:
        row = await session.get(Delivery, delivery.id)
        assert row is not None
        event = make_event("order.created", order, order.created_at)
        await hooks.after_delivered(session, rt, row, event, {}, answered_at=sent)
    async with rt.sessions() as session:
        booked = (await session.execute(sa.select(OrderAllocation))).scalars().all()
    assert [(b.store, b.erp, b.sku, int(b.quantity)) for b in booked] == [
        ("shop", "erp", "SKU-RED-M", 2)
    ]
    assert booked[0].booked_at == sent  # when it went out, not when the answer came back
