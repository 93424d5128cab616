"""Out-of-order updates: an older version of an order or customer never overwrites a newer.

Shopify does not promise order: an ``orders/updated`` sent before another can arrive after
it (a retry, a slow path). The newer version wins; the older is stored, marked superseded.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from kernel.canonical.customer import Customer
from kernel.canonical.events import make_event
from tests.integration.test_flow_pipeline import T0, deliveries, flow_rt, record
from tests.support.factories import make_order

__all__ = ["flow_rt"]  # the fixture, shared with the flow pipeline tests


def _order_version(quantity: str, minutes: int) -> object:
    order = make_order("8801", updated_at=T0 + timedelta(minutes=minutes))
    order.lines[0].quantity = Decimal(quantity)
    return make_event("order.updated", order, order.updated_at)


async def test_an_older_order_update_arriving_late_is_superseded(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()
    await record(rt, "shop", _order_version("5", minutes=10))  # v2 first
    await record(rt, "shop", _order_version("3", minutes=5))  # then the older v1
    v2, v1 = await deliveries(rt, destination="erp")
    assert v2.status == "pending"
    assert v1.status == "superseded" and v1.last_error_class == "superseded"
    assert "older than the version of" in (v1.last_error or "")


async def test_same_second_updates_both_go_in_arrival_order(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()
    await record(rt, "shop", _order_version("5", minutes=10))
    await record(rt, "shop", _order_version("6", minutes=10))  # cannot tell: keep both
    assert [d.status for d in await deliveries(rt, destination="erp")] == ["pending", "pending"]


async def test_a_cancel_is_never_superseded(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()
    await record(rt, "shop", _order_version("5", minutes=10))
    order = make_order("8801", updated_at=T0, status="cancelled", cancelled_at=T0)
    await record(rt, "shop", make_event("order.cancelled", order, T0))
    assert [d.status for d in await deliveries(rt, destination="erp")] == ["pending", "pending"]


async def test_an_older_customer_version_is_superseded(flow_rt) -> None:  # type: ignore[no-untyped-def]
    rt = await flow_rt()

    def version(name: str, minutes: int) -> object:
        when = T0 + timedelta(minutes=minutes)
        customer = Customer(
            source="shop",
            external_id="77",
            email="ada@example.com",
            first_name=name,
            updated_at=when,
        )
        return make_event("customer.upserted", customer, when)

    await record(rt, "shop", version("Ada", minutes=10))
    await record(rt, "shop", version("Adah", minutes=1))
    newer, older = await deliveries(rt, destination="erp", flow="customers")
    assert newer.status == "pending" and older.status == "superseded"


async def test_an_older_price_arriving_late_leaves_the_newer_held_cut_alone(flow_rt) -> None:  # type: ignore[no-untyped-def]
    # NetSuite's user-event posts run concurrently: the 19.99 of 09:00:01 can arrive after
    # the 90% cut of 09:00:02. It must not supersede the held cut nor go out itself.
    from tests.integration.test_flow_pipeline import price

    rt = await flow_rt()
    await record(rt, "erp", price("SKU-RED-M", "19.99", at=T0))
    first = (await deliveries(rt, flow="products"))[0]
    assert first.status == "pending"
    await record(rt, "erp", price("SKU-RED-M", "1.99", at=T0 + timedelta(seconds=2)))
    await record(rt, "erp", price("SKU-RED-M", "19.99", at=T0 + timedelta(seconds=1)))
    statuses = [d.status for d in await deliveries(rt, flow="products")]
    # the first stays on its way (a held cut replaces nothing until approved)
    assert statuses == ["pending", "held", "superseded"], statuses
